"""``dockline console``: a web page over a local data dir (Starlette + uvicorn).

- ``source``: opens the data dir, read-only per request, for writing only for an action;
- ``data``: the page's read queries (status, charts, failed files, dead letters,
  deliveries, the ledger browser), as JSON-ready dicts;
- ``actions``: the two buttons, redrive and redeliver, as the CLI does them;
- ``access``: who may ask (a token off loopback; loopback Host names only; a header
  every POST must carry);
- ``app``: the routes and the app factory;
- ``static/``: the page, its script and style, and Chart.js (vendored, see its LICENSE).
"""
