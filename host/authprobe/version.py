"""The version, one place: the package metadata (pyproject) and `authprobe --version` read it."""

__version__ = "0.1.0"
