# Heap housekeeping for boards without PSRAM, where the probe's own code is the biggest heap user:
# modules are loaded when a step needs them and forgotten after (see probe._PLAN).
import gc
import sys


def load(name):
    full = "selftest." + name
    __import__(full)
    return sys.modules[full]


def unload(name):
    """Forget a selftest module so its code can be collected (boards only: on CPython the host
    keeps its own references to shared modules such as the catalogue)."""
    if sys.implementation.name == "cpython":
        return
    sys.modules.pop("selftest." + name, None)
    pkg = sys.modules.get("selftest")
    if pkg is not None and name in pkg.__dict__:
        delattr(pkg, name)
    gc.collect()


def lint(cfg):
    """The config lint's problems, with the lint's code (the biggest module) loaded only meanwhile:
    run first, while little else is on the heap."""
    config = load("config")
    problems = config.lint(cfg)
    del config
    unload("config")
    unload("settings")
    return problems


class Lazy:
    """A function of a selftest module, imported only when first called (e.g. the library check,
    whose module and client library would otherwise sit on the heap through every step)."""

    def __init__(self, module, function):
        self.module = module
        self.function = function

    def __call__(self, *args):
        return getattr(load(self.module), self.function)(*args)


def heap_free():
    try:
        gc.collect()
        return gc.mem_free()  # type: ignore[attr-defined]
    except AttributeError:
        return None
