"""The run report: the JSON contract (authprobe.report/1), the pure run-log logic that builds it
from serial lines, its diagnosis, and its renderings (terminal, JUnit, HTML, the reference page)."""
