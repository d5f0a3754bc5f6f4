"""The shop's own code for dockline: see pipeline.py."""
