# CircuitPython-like `wifi` for the virtual board (docs.circuitpython.org, wifi.Radio): connect()
# raises ConnectionError with the texts CircuitPython uses, so Wi-Fi faults can be drilled the same
# way as on the ESP32 flavour (the host's radio settings, AUTHPROBE_VB_WIFI).
import json
import os
import time

_cfg = json.loads(os.getenv("AUTHPROBE_VB_WIFI") or "{}")


class _ApInfo:
    def __init__(self, ssid, rssi):
        self.ssid = ssid
        self.rssi = rssi
        self.channel = 6
        self.bssid = b"\x02\x00\x00\x00\x00\x01"


class Radio:
    def __init__(self):
        self.enabled = True
        self.hostname = "espressif"
        self.ipv4_address = None
        self.ap_info = None
        uid = os.getenv("AUTHPROBE_VB_UID") or "a4cf12000001"
        self.mac_address = bytes(int(uid[i:i + 2], 16) for i in range(0, len(uid), 2))

    @property
    def connected(self):
        return self.ipv4_address is not None

    def connect(self, ssid, password="", *, channel=0, bssid=None, timeout=None):
        fault = _cfg.get("fault")
        networks = _cfg.get("networks")
        time.sleep_ms(int(_cfg.get("delay_ms", 200)))
        if fault == "no-ap" or (networks is not None and ssid not in networks):
            raise ConnectionError("No network with that ssid")
        if fault == "wrong-password" or (networks is not None and networks[ssid] != (password or "")):
            raise ConnectionError("Authentication failure")
        if fault == "timeout":
            time.sleep_ms(int((timeout or 8) * 1000))
            raise ConnectionError("Timed out")
        if fault == "fail":
            raise ConnectionError("Unknown failure 205")
        self.ipv4_address = "192.168.4.23"
        self.ap_info = _ApInfo(ssid, int(_cfg.get("rssi", -58)))

    def stop_station(self):
        self.ipv4_address = None
        self.ap_info = None


radio = Radio()
