"""Boards: their definitions (boards/*.toml), the serial reader, flashing, collecting runs, the
self-test run on this host, and the virtual board that stands in for real hardware."""
