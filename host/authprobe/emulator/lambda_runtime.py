"""Runs an authorizer function as Lambda would: in separate, warm worker processes, with the timeout,
writing the function's log group (START / END / REPORT, error traces, "Task timed out after 5.00
seconds") and the AWS/Lambda metrics Invocations, Errors, Duration and Throttles.

Lambda keeps an execution environment warm between invocations and starts another one when all are
busy; a timed-out environment is discarded. The pool mirrors that."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from authprobe.aws import lambda_logs
from authprobe.emulator.cloud_records import CloudRecords, iso
from authprobe.emulator.config import EmulatorConfig, FunctionConfig

# Run as a script in each worker process, so the handler starts without authprobe loaded.
WORKER_SCRIPT = Path(str(resources.files("authprobe.emulator") / "lambda_worker.py"))
# Processes started per function at most; further invocations wait for a free one. Lambda would
# scale further, but a laptop with two cores does not.
MAX_ENVIRONMENTS = 8


@dataclass
class Invocation:
    request_id: str
    # "ok", "error" (handler raised or init failed), "timeout", "throttled", or "abandoned": the caller
    # stopped waiting (AWS IoT after 5 s) while the function, whose own timeout is longer, ran on.
    status: str
    payload: object = None
    error: dict | None = None
    duration_ms: float = 0.0


class _Environment:
    def __init__(self, fn: FunctionConfig):
        self.fn = fn
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(WORKER_SCRIPT), str(fn.handler_file), fn.handler_function, fn.log_format],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=str(fn.handler_file.parent), env={**os.environ, "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                                                  "PYTHONDONTWRITEBYTECODE": "1"})
        self._buffer = b""
        self.init_ms: float | None = None  # reported once, on the first REPORT (cold start)
        self.init_output = ""
        # One log stream per execution environment, named the way Lambda names them.
        self.log_stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{uuid.uuid4().hex}"

    def read_line(self, deadline: float) -> dict | None:
        """The next reply, or None at the deadline or when the process died (or was stopped: the
        stand-in closing while a function runs on past IoT's wait closes its pipe under us)."""
        assert self.proc.stdout is not None
        try:
            fd = self.proc.stdout.fileno()
        except ValueError:  # the pipe is closed already
            return None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                ready, _, _ = select.select([fd], [], [], left)
                chunk = os.read(fd, 65536) if ready else b""
            except (OSError, ValueError):
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def start(self, deadline: float) -> bool:
        hello = self.read_line(deadline)
        if hello is None:
            return False
        self.init_ms = hello.get("initMs", 0.0)
        self.init_output = hello.get("output", "")
        return True

    def send(self, request: dict) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass


class FunctionRuntime:
    """The warm pool and the log group of one function."""

    def __init__(self, config: EmulatorConfig, fn: FunctionConfig, records: CloudRecords):
        self.config, self.fn, self.records = config, fn, records
        self._idle: list[_Environment] = []
        self._all: set[_Environment] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._in_flight = 0

    def _acquire(self) -> _Environment | None:
        with self._cond:
            while not self._idle and len(self._all) >= MAX_ENVIRONMENTS and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return None
            if self._idle:
                return self._idle.pop()
            env = _Environment(self.fn)
            self._all.add(env)
            return env

    def _release(self, env: _Environment, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(env)
            else:
                self._all.discard(env)
            self._cond.notify()
        if not healthy or self._closed:
            env.kill()

    def _log(self, message: str, when: float | None = None, env: _Environment | None = None) -> None:
        self.records.lambda_log(self.fn.name, message, when, env.log_stream if env is not None else None)

    def invoke(self, event: dict, wait_s: float | None = None) -> Invocation:
        """Run the function on `event`. `wait_s` is how long the caller waits (AWS IoT: 5 s): when
        the function's own timeout is longer and it has not answered by then, the caller gets an
        "abandoned" Invocation and the function runs on to its end, logging and counting as Lambda
        does (no timeout line, no error: it did not time out)."""
        request_id = str(uuid.uuid4())
        reserved = self.fn.reserved_concurrency
        with self._cond:
            throttled = reserved is not None and self._in_flight >= reserved
            if not throttled:
                self._in_flight += 1
        if throttled:
            # A throttled call never runs: no log lines, no Invocations, only Throttles
            # (Lambda monitoring-functions-metrics: Invocations excludes throttled requests).
            self.records.metric(self.fn.name, "Throttles", 1, "Count")
            return Invocation(request_id, "throttled", error={
                "errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."})
        if wait_s is None or wait_s >= self.fn.timeout_s:
            try:
                return self._invoke(request_id, event)
            finally:
                self._done()
        answers: list[Invocation] = []

        def run() -> None:
            try:
                answers.append(self._invoke(request_id, event))
            finally:
                self._done()

        worker = threading.Thread(target=run, name=f"lambda-{self.fn.name}", daemon=True)
        worker.start()
        worker.join(wait_s)
        if answers:
            return answers[0]
        return Invocation(request_id, "abandoned", duration_ms=wait_s * 1000)

    def _done(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no invocation of this function is running (its log lines are all written)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def _invoke(self, request_id: str, event: dict) -> Invocation:
        env = self._acquire()
        if env is None:
            return Invocation(request_id, "error", error={"errorType": "ServiceUnavailable",
                                                          "errorMessage": "stand-in is stopping"})
        cold = env.init_ms is None
        started = time.time()
        deadline = time.monotonic() + self.fn.timeout_s
        # Lambda counts init time against the first invocation's timeout only partly; a
        # generous separate allowance keeps the 5 s budget for the handler itself.
        if cold and not env.start(time.monotonic() + 10):
            self._release(env, healthy=False)
            return self._finish(request_id, started, Invocation(request_id, "error", error={
                "errorType": "Runtime.ExitError", "errorMessage": "Runtime exited during init"}), cold=False)
        fmt = self.fn.log_format
        if cold:
            self._log(lambda_logs.init_line(fmt, iso(started), "python:3.11 (authprobe stand-in)", self.fn.name),
                      started, env)
            for line in env.init_output.splitlines():
                self._log(line, env=env)
            started = time.time()
            deadline = time.monotonic() + self.fn.timeout_s
        self._log(lambda_logs.start_line(fmt, iso(started), request_id), started, env)
        request = {"requestId": request_id, "event": event, "deadline": time.time() + self.fn.timeout_s,
                   "function": {"name": self.fn.name, "arn": self.config.function_arn(self.fn.name),
                                "memory_mb": self.fn.memory_mb, "log_stream": env.log_stream}}
        reply = env.read_line(deadline) if env.send(request) else None
        if reply is None:
            timed_out = env.proc.poll() is None and not self._closed  # (the stand-in stopping is no timeout)
            self._release(env, healthy=False)
            if self._closed:
                return Invocation(request_id, "error", error={"errorType": "ServiceUnavailable",
                                                              "errorMessage": "stand-in is stopping"})
            if timed_out:
                result = Invocation(request_id, "timeout", error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {self.fn.timeout_s:.2f} seconds"},
                    duration_ms=self.fn.timeout_s * 1000)
                line = lambda_logs.timeout_line(fmt, iso(time.time()), request_id, self.fn.timeout_s)
                if line is not None:
                    self._log(line, env=env)
            else:
                result = Invocation(request_id, "error", error={
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                                    f"exit status {env.proc.returncode}"}, duration_ms=(time.time() - started) * 1000)
                self._log(result.error["errorMessage"], env=env)
            return self._finish(request_id, started, result, cold, env.init_ms, env=env)
        for line in reply.get("output", "").splitlines():
            self._log(line, env=env)
        duration = float(reply.get("durationMs", 0.0))
        if "error" in reply:
            err = reply["error"]
            self._log(lambda_logs.error_line(fmt, iso(time.time()), request_id, err), env=env)
            result = Invocation(request_id, "error", error=err, duration_ms=duration)
        else:
            result = Invocation(request_id, "ok", payload=reply.get("result"), duration_ms=duration)
        # END and REPORT are written before the environment serves another invocation: its log
        # stream reads START .. END per invocation, as Lambda's does.
        finished = self._finish(request_id, started, result, cold, env.init_ms, reply.get("maxMemoryMb"), env)
        self._release(env, healthy=True)
        return finished

    def _finish(self, request_id: str, started: float, result: Invocation, cold: bool,
                init_ms: float | None = None, max_memory: int | None = None,
                env: _Environment | None = None) -> Invocation:
        fmt = self.fn.log_format
        end = lambda_logs.end_line(fmt, request_id)
        if end is not None:
            self._log(end, env=env)
        status = {"ok": "success", "timeout": "timeout"}.get(result.status, "error")
        error_type = (result.error or {}).get("errorType") if status != "success" else None
        self._log(lambda_logs.report_line(fmt, iso(time.time()), request_id, duration_ms=result.duration_ms,
                                          memory_mb=self.fn.memory_mb, max_memory_mb=max_memory or 0,
                                          init_ms=init_ms if cold else None, status=status, error_type=error_type),
                  env=env)
        self.records.metric(self.fn.name, "Invocations", 1, "Count")
        self.records.metric(self.fn.name, "Errors", 0 if result.status == "ok" else 1, "Count")
        self.records.metric(self.fn.name, "Duration", round(result.duration_ms, 2), "Milliseconds")
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            envs = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for env in envs:
            env.kill()


class LambdaService:
    """All functions of the configuration, started lazily."""

    def __init__(self, config: EmulatorConfig, records: CloudRecords):
        self.config, self.records = config, records
        self._runtimes: dict[str, FunctionRuntime] = {}
        self._lock = threading.Lock()

    def runtime(self, name: str) -> FunctionRuntime | None:
        fn = self.config.functions.get(name)
        if fn is None:
            return None
        with self._lock:
            if name not in self._runtimes:
                self._runtimes[name] = FunctionRuntime(self.config, fn, self.records)
            return self._runtimes[name]

    def close(self) -> None:
        with self._lock:
            runtimes = list(self._runtimes.values())
            self._runtimes.clear()
        for r in runtimes:
            r.close()
