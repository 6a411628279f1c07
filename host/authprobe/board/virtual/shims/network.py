# ESP32-like `network` for the virtual board: a station interface whose association the host can make
# fail (no AP, wrong password, timeout, other failure) so Wi-Fi faults can be drilled without radio.
# Status codes are the ESP32 port's (ESP-IDF wifi reason codes for failures).
import json
import os
import time

import machine

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_CONNECT_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

# The host passes the simulated radio as JSON: {"fault": null | "no-ap" | "wrong-password" |
# "timeout" | "fail", "networks": {ssid: password} | null (any network answers), "delay_ms": int}
_radio = json.loads(os.getenv("AUTHPROBE_VB_WIFI") or "{}")
_FAULTS = {"no-ap": STAT_NO_AP_FOUND, "wrong-password": STAT_WRONG_PASSWORD, "fail": STAT_CONNECT_FAIL}
_hostname = "esp32"


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    return "01" if code is None else None


class WLAN:
    IF_STA = STA_IF
    IF_AP = AP_IF
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    _instances = {}

    def __new__(cls, interface=STA_IF):
        # The ESP32 port hands out one object per interface.
        if interface not in cls._instances:
            obj = object.__new__(cls)
            obj._init(interface)
            cls._instances[interface] = obj
        return cls._instances[interface]

    def __init__(self, interface=STA_IF):
        pass

    def _init(self, interface):
        self._if = interface
        self._active = False
        self._ssid = None
        self._outcome = STAT_IDLE
        self._ready_at = None

    def active(self, state=None):
        if state is None:
            return self._active
        self._active = bool(state)
        if not self._active:
            self._outcome = STAT_IDLE
            self._ready_at = None

    def connect(self, ssid=None, key=None, *, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        self._ssid = ssid
        self._ready_at = time.ticks_add(time.ticks_ms(), int(_radio.get("delay_ms", 200)))
        fault = _radio.get("fault")
        networks = _radio.get("networks")
        if fault == "timeout":
            self._outcome = STAT_CONNECTING
        elif fault in _FAULTS:
            self._outcome = _FAULTS[fault]
        elif networks is not None and ssid not in networks:
            self._outcome = STAT_NO_AP_FOUND
        elif networks is not None and networks[ssid] != (key or ""):
            self._outcome = STAT_WRONG_PASSWORD
        else:
            self._outcome = STAT_GOT_IP

    def disconnect(self):
        self._outcome = STAT_IDLE
        self._ready_at = None

    def status(self, param=None):
        if param is None:
            if self._ready_at is None:
                return STAT_IDLE
            if time.ticks_diff(time.ticks_ms(), self._ready_at) < 0:
                return STAT_CONNECTING
            return self._outcome
        if param == "rssi":
            if not self.isconnected():
                raise OSError("STA is not connected")
            return int(_radio.get("rssi", -58))
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def ifconfig(self, config=None):
        if config is not None:
            return None
        if self.isconnected():
            return ("192.168.4.23", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kwargs):
        if kwargs:
            return None
        key = args[0] if args else None
        if key == "mac":
            uid = machine.unique_id()
            return bytes(uid[:6]) if len(uid) >= 6 else bytes(6)
        if key in ("ssid", "essid"):
            return self._ssid or ""
        if key == "hostname" or key == "dhcp_hostname":
            return _hostname
        if key == "channel":
            return 6
        if key == "txpower":
            return 20
        raise ValueError("unknown config param")

    def scan(self):
        networks = _radio.get("networks") or {}
        if _radio.get("fault") == "no-ap":
            return []
        return [(ssid.encode(), b"\x02\x00\x00\x00\x00\x01", 6, -58, 3, False) for ssid in networks]
