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


class BoardOs:
    """The board's `os`: the unix port's, plus what a board's has and the unix port lacks. ilistdir()
    carries file sizes (LittleFS/FAT on a board do, and `mpremote fs ls` shows them), uname() answers
    like the firmware, and on CircuitPython getenv() reads settings.toml (strings and integers).
    Installed in sys.modules, so every later `import os` gets it."""


def install_os(settings, machine_name):
    import json

    values = json.loads(settings) if settings else None
    real = os
    board_os = BoardOs()
    for name in dir(real):
        if not name.startswith("__"):
            setattr(board_os, name, getattr(real, name))

    def ilistdir(path=""):
        base = path.rstrip("/")
        for entry in real.ilistdir(path):
            size = 0
            if entry[1] == 0x8000:
                try:
                    size = real.stat(base + "/" + entry[0] if base else entry[0])[6]
                except OSError:
                    pass
            yield (entry[0], entry[1], 0, size)

    def uname():
        version = sys.implementation.version
        release = ".".join(str(v) for v in version[:3])
        return ("esp32", "esp32", release, "v" + release + " on " + sys.version.rsplit(" on ", 1)[-1],
                machine_name)

    def getenv(key, default=None):
        if values is not None and key in values:
            return values[key]
        return real.getenv(key, default)

    board_os.ilistdir = ilistdir
    board_os.uname = uname
    board_os.getenv = getenv
    sys.modules["os"] = board_os


def mount_flash(flash, readonly):
    # The board's flash is a host folder; mounted at / so every path looks like a board's. (A
    # Python subclass of VfsPosix would lose the import machinery's fast path and with it /lib, so
    # sizes are added in BoardOs.ilistdir instead.)
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
    install_os(os.getenv("AUTHPROBE_VB_SETTINGS"), os.getenv("AUTHPROBE_VB_MACHINE") or "ESP32 module with ESP32")
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
