"""The virtual board: a pty that the unmodified mpremote cannot tell from an ESP32 running MicroPython.
See board.py; `authprobe virtual-board` serves one from the command line."""

from authprobe.board.virtual.board import WIFI_FAULTS, VirtualBoard, micropython_path

__all__ = ["WIFI_FAULTS", "VirtualBoard", "micropython_path"]
