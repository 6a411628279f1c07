"""What Lambda writes to a function's log group, as AWS documents it: the lines that tell of a
failure and the REPORT line with the invocation's duration. The Logs Insights query, the join and
the diagnosis all read function logs with these, so they cannot disagree."""

from __future__ import annotations

import re

# Lines of the authorizer function that tell about a failure, whoever the client was.
FAILURE_PATTERN = r"(?i)(task timed out|\[error\]|errorMessage|traceback|exception|runtime exited)"
# A function's REPORT line; one this long was cut off at IoT's 5 s limit.
REPORT_DURATION = re.compile(r"Duration:\s*([0-9.]+)\s*ms")
SLOW_REPORT_MS = 4900
