"""Fault drills and the demo: a stand-in and virtual boards with one mistake injected at a time,
each checked against the diagnosis authprobe makes of it."""
