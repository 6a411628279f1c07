"""A warm Lambda execution environment for one Python handler: run as a script (not imported from the
package, so the user's handler starts in a clean interpreter without authprobe loaded).

Protocol: one JSON request per line on stdin ({"requestId", "event", "deadline", "function"...}),
one JSON reply per line on the original stdout. The handler's own print()/logging output is captured
per invocation and returned with the reply, because on Lambda it lands in the function's log group."""

import importlib.util
import io
import json
import logging
import os
import resource
import sys
import time
import traceback


def _reply_channel():
    # Keep fd 1 for the replies only; anything written to fd 1 by C code afterwards goes to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    return channel


class _Capture(io.StringIO):
    pass


class _Context:
    """The attributes and method of the Lambda Python context object."""

    def __init__(self, request):
        fn = request["function"]
        self.function_name = fn["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn["arn"]
        self.memory_limit_in_mb = str(fn.get("memory_mb", 128))
        self.aws_request_id = request["requestId"]
        self.log_group_name = "/aws/lambda/" + fn["name"]
        self.log_stream_name = fn.get("log_stream", "local")
        self.identity = None
        self.client_context = None
        self._deadline = request["deadline"]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc, prefix=None):
    kind = prefix or type(exc).__name__
    frames = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    return {"errorMessage": str(exc), "errorType": kind, "stackTrace": [f.rstrip("\n") for f in frames]}


def _load(path, function):
    directory, filename = os.path.split(os.path.abspath(path))
    module_name = filename[:-3]
    sys.path.insert(0, directory)  # the task root is importable on Lambda too
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:  # an import failure is reported on every invocation, as Lambda does
        err = _error(exc, "Runtime.ImportModuleError")
        err["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        return None, err
    handler = getattr(module, function, None)
    if not callable(handler):
        return None, {"errorMessage": f"Handler '{function}' missing on module '{module_name}'",
                      "errorType": "Runtime.HandlerNotFound", "stackTrace": []}
    return handler, None


def main():
    path, function = sys.argv[1], sys.argv[2]
    channel = _reply_channel()
    capture_holder = [_Capture()]

    class _ToCapture(io.TextIOBase):
        def write(self, s):
            return capture_holder[0].write(s)

    sys.stdout = _ToCapture()
    sys.stderr = _ToCapture()
    current = {"id": ""}

    json_format = len(sys.argv) > 3 and sys.argv[3] == "JSON"

    class _LambdaFormat(logging.Formatter):
        # The Lambda Python runtime's formats. Text: [LEVEL] <ISO time>Z <request id> <message>;
        # JSON (LogFormat JSON): one object with timestamp, level, message, logger and requestId.
        def format(self, record):
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
            if json_format:
                return json.dumps({"timestamp": when, "level": record.levelname, "message": record.getMessage(),
                                   "logger": record.name, "requestId": current["id"]})
            return f"[{record.levelname}]\t{when}\t{current['id']}\t{record.getMessage()}"

    root = logging.getLogger()
    handler_out = logging.StreamHandler(sys.stdout)
    handler_out.setFormatter(_LambdaFormat())
    root.addHandler(handler_out)
    root.setLevel(logging.INFO)
    started = time.time()
    handler, init_error = _load(path, function)
    init_ms = (time.time() - started) * 1000
    channel.write(json.dumps({"ready": True, "initMs": init_ms, "output": capture_holder[0].getvalue()}) + "\n")
    capture_holder[0] = _Capture()
    for line in sys.stdin:
        request = json.loads(line)
        capture_holder[0] = _Capture()
        reply = {"requestId": request["requestId"]}
        current["id"] = request["requestId"]
        t0 = time.time()
        if init_error is not None:
            reply["error"] = init_error
        else:
            try:
                result = handler(request["event"], _Context(request))
                try:
                    reply["result"] = json.loads(json.dumps(result))
                except (TypeError, ValueError) as exc:
                    reply["error"] = {"errorMessage": f"Unable to marshal response: {exc}",
                                      "errorType": "Runtime.MarshalError", "stackTrace": []}
            except Exception as exc:
                reply["error"] = _error(exc)
        reply["durationMs"] = (time.time() - t0) * 1000
        reply["output"] = capture_holder[0].getvalue()
        reply["maxMemoryMb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        channel.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
