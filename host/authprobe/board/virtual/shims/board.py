# CircuitPython-like `board` for the virtual board: just its identity.
board_id = "authprobe_virtual_esp32s3"
