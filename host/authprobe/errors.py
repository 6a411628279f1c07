"""One exception type for errors the user (or the device, or AWS) caused, and the exit codes.

"Fatal" here means "caused by your input, your device or your account, not by authprobe": the message
says what is wrong and what to do next. Anything else escaping is a bug and exits with EXIT_TOOL."""

from __future__ import annotations

EXIT_OK = 0           # verdict pass
EXIT_FAIL = 1         # the device (or cloud check) found a failure
EXIT_USAGE = 2        # bad usage or a bad config file
EXIT_INCOMPLETE = 3   # a run ended before its end record (board vanished, timeout, reset loop)
EXIT_TOOL = 4         # authprobe itself failed
EXIT_CLOUD = 5        # AWS (or the local stand-in) could not be read


class AuthprobeError(Exception):
    """An error to show the user as `authprobe: message` with a distinct exit code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(AuthprobeError):
    """A config file is missing, unreadable or invalid; the message names every problem."""

    exit_code = EXIT_USAGE


class CloudError(AuthprobeError):
    """AWS (or the stand-in's state) could not answer: no credentials, access denied, throttled..."""

    exit_code = EXIT_CLOUD
