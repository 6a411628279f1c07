# Wi-Fi association for the wifi step, written against the ESP32 `network.WLAN` API (MicroPython)
# and CircuitPython's `wifi.radio`. Each join() returns (code, details): 300 or a 30x failure.


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
                return 303, {"ssid": ssid, "status": self._status_name(status), "timeout_ms": timeout_ms}
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
        return 300, d

    def _failure(self, status):
        n = self.n
        if status == getattr(n, "STAT_NO_AP_FOUND", None):
            return 301
        if status == getattr(n, "STAT_WRONG_PASSWORD", None):
            return 302
        if status in (getattr(n, "STAT_HANDSHAKE_TIMEOUT", None), getattr(n, "STAT_BEACON_TIMEOUT", None)):
            return 303 if status is not None else 0
        if status in (getattr(n, "STAT_CONNECT_FAIL", None), getattr(n, "STAT_ASSOC_FAIL", None)):
            return 304 if status is not None else 0
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
                code = 301
            elif "auth" in low or "password" in low:
                code = 302
            elif "timeout" in low or "timed out" in low:
                code = 303
            else:
                code = 304
            return code, {"ssid": ssid, "error": text[:80]}
        d = {"ssid": ssid, "status": "got_ip", "ip": str(radio.ipv4_address)}
        info = getattr(radio, "ap_info", None)
        if info is not None:
            d["rssi"] = info.rssi
        return 300, d
