# Runs inside the real MicroPython interpreter of a virtual board. The host side (board.py) owns the
# pty and the REPL state machine; this agent only executes what it is sent, in one persistent global
# namespace, and frames the output so the host can add the raw REPL's \x04 markers at the right place.
#
# host -> agent (stdin):  "X <nbytes> <mode> <filename>\n" + source   (mode: exec | single)
# agent -> host (stdout): program output, then MARK+"OUT"+END, error text, MARK+"ERR"+END
#                         (MARK+"EXIT"+END instead of ERR after SystemExit: a board soft-resets)
import io
import os
import sys

import vfs

MARK = "\x00\x1bVB:"
END = "\x00"
AGENT_FILE = "agent.py"


def send(word):
    sys.stdout.write(MARK + word + END)


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk:
            raise SystemExit(0)
        data += chunk
    return data


def read_line():
    line = b""
    while not line.endswith(b"\n"):
        ch = sys.stdin.buffer.read(1)
        if not ch:
            raise SystemExit(0)
        line += ch
    return line.decode()


def error_text(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    # Drop the agent's own frames so a traceback reads exactly as on a board.
    lines = [ln for ln in buf.getvalue().split("\n") if AGENT_FILE + '"' not in ln]
    return "\n".join(lines)


def execute(source, mode, filename, namespace):
    exited = False
    err = ""
    try:
        code = compile(source, filename, mode)
        exec(code, namespace)
    except SystemExit:
        exited = True
    except BaseException as exc:  # noqa: B036 - the board prints every exception, KeyboardInterrupt too
        err = error_text(exc)
    send("OUT")
    sys.stdout.write(err)
    send("EXIT" if exited else "ERR")


class SettingsOs:
    """CircuitPython's os: getenv() answers from settings.toml (strings and integers) first."""


def use_settings(text):
    import json

    values = json.loads(text)
    shim = SettingsOs()
    for name in dir(os):
        if not name.startswith("__"):
            setattr(shim, name, getattr(os, name))

    def getenv(key, default=None):
        if key in values:
            return values[key]
        return os.getenv(key, default)

    shim.getenv = getenv
    sys.modules["os"] = shim


def mount_flash(flash, readonly):
    # The board's flash is a host folder; mounted at / so every path looks like a board's. (A
    # Python subclass of VfsPosix could add the file sizes `os.ilistdir` leaves out, but the import
    # machinery then no longer finds modules under /lib, so `mpremote fs ls` shows size 0.)
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(flash), "/", readonly=readonly)
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]


def main():
    shims = sys.argv[1]
    flash = sys.argv[2]
    # A board has no command line: programs that look at sys.argv must see what they see there.
    del sys.argv[:]
    # The board's own modules (ESP32: machine, network; CircuitPython: microcontroller, board) must
    # be loaded before the host file system disappears; the others stay unimportable, as on a board.
    sys.path.insert(0, shims)
    for name in (os.getenv("AUTHPROBE_VB_PRELOAD") or "machine,network").split(","):
        __import__(name)
    sys.path.remove(shims)
    settings = os.getenv("AUTHPROBE_VB_SETTINGS")
    if settings:
        use_settings(settings)
    mount_flash(flash, os.getenv("AUTHPROBE_VB_READONLY") == "1")
    namespace = {"__name__": "__main__"}
    send("READY " + sys.version)
    while True:
        try:
            header = read_line().split(" ", 3)
            if header[0] != "X":
                continue
            source = read_exact(int(header[1])).decode()
            execute(source, header[2], header[3].strip(), namespace)
        except KeyboardInterrupt:
            # An interrupt that arrived between two programs; the host restarts the interpreter if
            # it cut a frame short.
            pass


main()
