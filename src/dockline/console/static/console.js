// The dockline console's page: fetches the JSON API and shows it.
// Every value from the data dir (keys, reasons, payloads, subjects) is set as text
// (textContent), never as HTML: a key like <script>x</script> is shown, not run.
"use strict";

const STATUS_EVERY_MS = 5000;  // the status walks the bucket: see app._Shared
const LISTS_EVERY_MS = 5000;
const STATES = ["pending", "processing", "processed", "failed", "duplicate", "conflict", "superseded"];
const COLOURS = {
  processed: "#16a34a", failed: "#dc2626", duplicate: "#0891b2", conflict: "#ca8a04", superseded: "#2563eb",
};

// A key folds only after a "/", never mid-name (issue 10): each part is kept whole, with
// a break opportunity after each slash. The parts are text nodes like everything else.
function keyParts(value) {
  const parts = String(value == null ? "" : value).split(/(?<=\/)/);
  return parts.flatMap((part, i) => {
    const span = document.createElement("span");
    span.className = "part";
    span.textContent = part;
    return i < parts.length - 1 ? [span, document.createElement("wbr")] : [span];
  });
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "text") node.textContent = value == null ? "" : String(value);
    else if (name === "key") node.replaceChildren(...keyParts(value));
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...(options || {}) });
  let body = null;
  try { body = await response.json(); } catch (_e) { body = { error: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status}`);
  return body;
}

function post(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Dockline-Console": "1" },
    body: JSON.stringify(body || {}),
  });
}

function problem(text) {
  const banner = document.getElementById("problem");
  banner.hidden = !text;
  banner.textContent = text || "";
}

function said(text) {
  const banner = document.getElementById("action-result");
  banner.hidden = !text;
  banner.textContent = text || "";
}

function counts(table, entries) {
  table.replaceChildren(...entries.map(([name, value, id]) =>
    el("tr", {}, el("td", { text: name, class: `state-${name}` }), el("td", { text: value, class: "n", id }))));
}

function showStatus(s) {
  counts(document.getElementById("files-by-state"), STATES.map((st) => [st, s.files[st] ?? 0, `files-${st}`]));
  document.getElementById("backlog-files").textContent = s.backlog.files;
  document.getElementById("backlog-oldest").textContent = s.backlog.oldest_key == null
    ? "none" : `${s.backlog.oldest_key} (${Math.round(s.backlog.oldest_age_seconds)} s)`;
  document.getElementById("dead-letters-count").textContent = s.dead_letters;
  const windows = Object.keys(s.throughput).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));  // 1m 5m 15m
  counts(document.getElementById("throughput"), windows.flatMap((window) => [
    [`${window} files/s`, s.throughput[window].files_per_second, `rate-${window}-files`],
    [`${window} records/s`, s.throughput[window].records_per_second, `rate-${window}-records`],
  ]));
  const flight = document.getElementById("in-flight");
  flight.replaceChildren(...(s.in_flight.length ? s.in_flight.map((f) =>
    el("li", { class: "key", text: `${f.key}: ${f.records} records` })) : [el("li", { class: "muted", text: "none" })]));
  counts(document.getElementById("deliveries-by-state"),
    Object.entries(s.deliveries).map(([st, n]) => [st, n, `deliveries-${st}`]));
  document.getElementById("last-error").textContent = s.last_error
    ? `${s.last_error.key}: ${s.last_error.reason} (${s.last_error.at})` : "none";
  document.getElementById("refreshed").textContent = `as of ${s.at}`;
}

let throughputChart = null;
let outcomesChart = null;

function showCharts(c) {
  if (typeof Chart === "undefined") return;
  if (throughputChart === null) {
    throughputChart = new Chart(document.getElementById("throughput-chart"), {
      type: "line",
      data: { labels: [], datasets: [
        { label: "files/s", data: [], borderColor: "#2563eb", backgroundColor: "#2563eb", yAxisID: "files", tension: 0.2 },
        { label: "records/s", data: [], borderColor: "#16a34a", backgroundColor: "#16a34a", yAxisID: "records", tension: 0.2 },
      ] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          files: { position: "left", beginAtZero: true, title: { display: true, text: "files/s" } },
          records: { position: "right", beginAtZero: true, title: { display: true, text: "records/s" },
            grid: { drawOnChartArea: false } },
        },
      },
    });
    outcomesChart = new Chart(document.getElementById("outcomes-chart"), {
      type: "bar",
      data: { labels: [], datasets: Object.keys(COLOURS).map((st) =>
        ({ label: st, data: [], backgroundColor: COLOURS[st] })) },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "files" } } },
      },
    });
  }
  throughputChart.data.labels = c.minutes;
  throughputChart.data.datasets[0].data = c.files_per_second;
  throughputChart.data.datasets[1].data = c.records_per_second;
  throughputChart.update("none");
  outcomesChart.data.labels = c.minutes;
  for (const dataset of outcomesChart.data.datasets) dataset.data = c.outcomes[dataset.label] || [];
  outcomesChart.update("none");
}

function rows(tableId, list, build) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...list.map(build));
}

function showDeadLetters(d) {
  rows("dead-letters", d.rows, (letter) => el("tr", { "data-id": letter.id },
    el("td", { class: "key", key: letter.key }),
    el("td", { class: "key", key: letter.short_id }),
    el("td", { text: letter.attempts }),
    el("td", { text: letter.failed_at }),
    el("td", { class: "reason", text: letter.reason }),
    el("td", {}, el("button", { type: "button", class: "redrive", text: "Redrive", onclick: () => act(
      () => post("/api/dead-letters/redrive", { id: letter.id }),
      (r) => r.redriven.map((x) => x.line).join("; ")) }))));
  document.getElementById("dead-letters-more").textContent =
    d.total > d.rows.length ? `${d.total - d.rows.length} more (dockline dlq list)` : (d.total ? "" : "none");
}

function showFailed(f) {
  rows("failed-files", f.rows, (file) => el("tr", {},
    el("td", { class: "key", key: file.key }),
    el("td", { text: file.attempts }),
    el("td", { text: file.at }),
    el("td", { class: "reason", text: file.error })));
  document.getElementById("failed-more").textContent =
    f.more ? "only the newest are shown (dockline files list --status failed)" : (f.rows.length ? "" : "none");
}

// "webhook:https://h/p: retrying (2 attempts): answered HTTP 500", as `notifications list` says it.
function deliveryLine(x) {
  let line = `${x.subscription}: ${x.status} (${x.attempts} attempt${x.attempts === 1 ? "" : "s"})`;
  if (x.status === "retrying" && x.next_attempt_at) line += `, next at ${x.next_attempt_at}`;
  if (x.error && x.status !== "delivered") {
    const prefix = `${x.subscription}: `;  // reasons start with the name: say it once
    line += ": " + (x.error.startsWith(prefix) ? x.error.slice(prefix.length) : x.error);
  }
  return line;
}

function showDeliveries(d) {
  document.getElementById("redeliver-failed").disabled = d.subscriptions.length === 0;
  rows("deliveries", d.rows, (n) => {
    const pending = n.deliveries.some((x) => x.status !== "delivered");
    return el("tr", { "data-id": n.id },
      el("td", { text: n.id }),
      el("td", { text: n.published_at }),
      el("td", { text: `${n.subject}: ${n.message}` }),
      el("td", {}, ...n.deliveries.map((x) => el("div", { class: `delivery state-${x.status}`, text: deliveryLine(x) }))),
      el("td", {}, n.deliveries.length ? el("button", { type: "button", class: "redeliver",
        text: pending ? "Redeliver" : "Send again", onclick: () => act(
          () => post(`/api/notifications/${n.id}/redeliver`), (r) => r.line) }) : ""));
  });
}

async function act(call, describe) {
  said("working…");
  try { said(describe(await call())); } catch (e) { said(`error: ${e.message}`); }
  await Promise.all([refreshStatus(), refreshLists()]);
}

async function refreshStatus() {
  try { showStatus(await api("/api/status")); problem(""); } catch (e) { problem(e.message); }
}

// What each list last showed: a list is redrawn only when its data changed, so a button
// is not replaced under the pointer every few seconds.
const shown = {};

async function refreshLists() {
  const parts = [["/api/charts", showCharts], ["/api/dead-letters", showDeadLetters],
    ["/api/failed", showFailed], ["/api/deliveries", showDeliveries]];
  await Promise.all(parts.map(async ([path, show]) => {
    try {
      const body = await api(path);
      const text = JSON.stringify(body);
      if (shown[path] !== text) { shown[path] = text; show(body); }
    } catch (e) { problem(e.message); }
  }));
}

const COLUMNS = {
  items: ["pk", "key", "processed_at", "payload"],
  files: ["key", "status", "records", "received_at", "updated_at", "error"],
};

async function browse(event) {
  if (event) event.preventDefault();
  const form = new FormData(document.getElementById("browse"));
  const what = form.get("what");
  const query = new URLSearchParams();
  for (const name of ["pk", "key", "since", "status", "route"]) if (form.get(name)) query.set(name, form.get(name));
  const table = document.getElementById("browse-results");
  try {
    const page = await api(`/api/browse/${what}?${query}`);
    table.tHead.replaceChildren(el("tr", {}, ...COLUMNS[what].map((c) => el("th", { text: c }))));
    rows("browse-results", page.rows, (r) => el("tr", {}, ...COLUMNS[what].map((c) => (c === "key" || c === "pk")
      ? el("td", { class: "key", key: r[c] })
      : el("td", { class: c === "payload" ? "code" : (c === "error" ? "reason" : ""),
        text: c === "payload" && r.payload == null && r.payload_ref ? `(too big to store: ${r.payload_ref})` : r[c] }))));
    document.getElementById("browse-more").textContent = page.more
      ? `the newest ${page.rows.length}; there are more: narrow the search` : `${page.rows.length} ${what}`;
  } catch (e) {
    document.getElementById("browse-more").textContent = `error: ${e.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("browse").addEventListener("submit", browse);
  document.getElementById("redeliver-failed").addEventListener("click", () => act(
    () => post("/api/notifications/redeliver-failed"), (r) => r.line));
  refreshStatus();
  refreshLists();
  browse();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  setInterval(refreshLists, LISTS_EVERY_MS);
});
