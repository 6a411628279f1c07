# Wi-Fi association for the wifi step, written against the ESP32 `network.WLAN` API (MicroPython)
# and CircuitPython's `wifi.radio`. Each join() returns (code, details): 300 or a 30x failure.

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_WIFI_OK = const(300)
_WIFI_NO_AP = const(301)
_WIFI_WRONG_PASSWORD = const(302)
_WIFI_TIMEOUT = const(303)
_WIFI_FAILED = const(304)


class Esp32Radio:
    def __init__(self, network_mod):
        self.n = network_mod

    def join(self, ssid, password, timeout_ms, clock):
        n = self.n
        wlan = n.WLAN(n.STA_IF)
        wlan.active(True)
        if not wlan.isconnected():
            wlan.connect(ssid, password or "")
        t0 = clock.ms()
        status = wlan.status()
        while not wlan.isconnected():
            status = wlan.status()
            code = self._failure(status)
            if code:
                return code, {"ssid": ssid, "status": self._status_name(status)}
            if clock.since(t0) > timeout_ms:
                return _WIFI_TIMEOUT, {"ssid": ssid, "status": self._status_name(status),
                                       "timeout_ms": timeout_ms}
            clock.sleep_ms(50)
        d = {"ssid": ssid, "status": "got_ip"}
        try:
            d["ip"] = wlan.ifconfig()[0]
        except (OSError, AttributeError, IndexError):
            pass
        try:
            d["rssi"] = wlan.status("rssi")
        except (OSError, ValueError, TypeError):
            pass
        return _WIFI_OK, d

    def _failure(self, status):
        n = self.n
        if status == getattr(n, "STAT_NO_AP_FOUND", None):
            return _WIFI_NO_AP
        if status == getattr(n, "STAT_WRONG_PASSWORD", None):
            return _WIFI_WRONG_PASSWORD
        if status in (getattr(n, "STAT_HANDSHAKE_TIMEOUT", None), getattr(n, "STAT_BEACON_TIMEOUT", None)):
            return _WIFI_TIMEOUT if status is not None else 0
        if status in (getattr(n, "STAT_CONNECT_FAIL", None), getattr(n, "STAT_ASSOC_FAIL", None)):
            return _WIFI_FAILED if status is not None else 0
        return 0

    def _status_name(self, status):
        for name in dir(self.n):
            if name.startswith("STAT_") and getattr(self.n, name) == status:
                return name[5:].lower()
        return str(status)


class CircuitPythonRadio:
    """wifi.radio.connect raises ConnectionError with a text per cause."""

    def __init__(self, wifi_mod):
        self.w = wifi_mod

    def join(self, ssid, password, timeout_ms, clock):
        radio = self.w.radio
        try:
            if password:
                radio.connect(ssid, password, timeout=timeout_ms / 1000)
            else:
                radio.connect(ssid, timeout=timeout_ms / 1000)
        except Exception as e:  # noqa: BLE001 - ConnectionError on boards, others on odd ports
            text = str(e)
            low = text.lower()
            if "no network" in low or "not found" in low:
                code = _WIFI_NO_AP
            elif "auth" in low or "password" in low:
                code = _WIFI_WRONG_PASSWORD
            elif "timeout" in low or "timed out" in low:
                code = _WIFI_TIMEOUT
            else:
                code = _WIFI_FAILED
            return code, {"ssid": ssid, "error": text[:80]}
        d = {"ssid": ssid, "status": "got_ip", "ip": str(radio.ipv4_address)}
        info = getattr(radio, "ap_info", None)
        if info is not None:
            d["rssi"] = info.rssi
        return _WIFI_OK, d
