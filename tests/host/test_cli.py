"""The CLI table: help lists every command without importing command modules."""

import sys

from authprobe import cli


def test_help_lists_every_command_without_importing_them(capsys):
    before = {m for m in sys.modules if m.startswith("authprobe.commands.")}
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert {m for m in sys.modules if m.startswith("authprobe.commands.")} == before


def test_every_command_module_is_named_once():
    modules = [module for module, _ in cli.COMMANDS.values()]
    assert len(modules) == len(set(modules))


def test_a_closed_pipe_is_not_an_internal_error():
    """`authprobe drill --list | head -1` style: the reader leaves before the output is written."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "authprobe.cli", "drill", "--list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # nobody reads: the first write raises BrokenPipeError
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 0
    assert "internal error" not in err


def test_demo_and_init_are_commands_with_their_options():
    # `make demo` runs `authprobe demo`; `authprobe init` writes starter files (tests/host/test_init.py).
    assert cli.build_parser("demo").parse_args(["demo", "--keep", "d", "--html", "p.html"]).keep == "d"
    args = cli.build_parser("init").parse_args(["init", "somewhere", "--standin", "--force"])
    assert (args.dir, args.standin, args.force) == ("somewhere", True, True)
    assert cli.build_parser("init").parse_args(["init"]).dir == "."
