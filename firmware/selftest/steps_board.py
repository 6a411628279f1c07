# Steps that look at the board itself: config (the lint, loaded for this step only), runtime,
# Wi-Fi, clock. Functions of the Probe state `p`; probe.py loads this module and drops it after.
from selftest.probe import FAIL, LOW_HEAP, PASS, SKIP, WARN, short

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_CONFIG_OK = const(100)
_CONFIG_CA_INVALID = const(114)
_CONFIG_UNREADABLE = const(116)
_RUNTIME_OK = const(200)
_RUNTIME_NO_ALPN = const(201)
_RUNTIME_LOW_MEMORY = const(202)
_WIFI_OK = const(300)
_CLOCK_OK = const(400)
_CLOCK_UNSET = const(401)
_CLOCK_NTP_FAILED = const(402)


def s_config(p):
    if p.w.config_problem:
        p.blocked = "config unreadable"
        return _CONFIG_UNREADABLE, FAIL, {"problems": [{"code": _CONFIG_UNREADABLE, "status": FAIL,
                                                        "field": "", "msg": p.w.config_problem}]}
    problems = p.w.problems
    if problems is None:
        from selftest import memory

        problems = memory.lint(p.cfg)
    if p.w.ca_problem:
        problems.append((_CONFIG_CA_INVALID, FAIL, "endpoint.ca", p.w.ca_problem))
    code, status = _verdict(problems)
    d = {}
    if problems:
        d["problems"] = [{"code": x[0], "status": x[1], "field": x[2], "msg": x[3]} for x in problems]
    d["ca"] = [label for label, _ in p.w.cas]
    if status == FAIL:
        p.blocked = "config invalid"
    return code, status, d


def s_runtime(p):
    w = p.w
    heap = w.heap_free() if w.heap_free else None
    d = {"runtime": w.runtime, "version": w.version, "alpn": w.alpn, "heap_free": heap,
         "uid": w.uid, "reset": w.reset}
    if p.transport == "mqtt" and not w.alpn:
        d["why"] = "transport mqtt needs ALPN 'mqtt' on default endpoints; this runtime cannot send it"
        return _RUNTIME_NO_ALPN, WARN, d
    if heap is not None and heap < LOW_HEAP:
        return _RUNTIME_LOW_MEMORY, WARN, d
    return _RUNTIME_OK, PASS, d


def s_wifi(p):
    if p.w.radio is None:
        return _WIFI_OK, SKIP, {"why": "no Wi-Fi radio on this runtime (host network)"}
    ssid = p.ssid
    if not ssid:
        return _WIFI_OK, SKIP, {"why": "no wifi.ssid configured; assuming the board is already online"}
    code, d = p.w.radio.join(ssid, p.wifi_password, p.wifi_timeout_ms, p.w.clock)
    if code != _WIFI_OK:
        p.blocked = "wifi failed"
        return code, FAIL, d
    return code, PASS, d


def s_clock(p):
    clk = p.w.clock
    d = {"source": clk.source}
    if not clk.valid():
        host = p.ntp_host
        try:
            synced = clk.sync(host)
        except Exception as e:  # noqa: BLE001
            d.update({"ntp_host": host, "error": short(e)})
            p.no_tls = "clock unset (NTP failed): certificates cannot be judged"
            return _CLOCK_NTP_FAILED, FAIL, d
        if not synced or not clk.valid():
            p.no_tls = "clock unset: certificates cannot be judged"
            d["year"] = clk.now()[0]
            return _CLOCK_UNSET, FAIL, d
        d["source"] = clk.source
    d["utc"] = clk.utc()
    return _CLOCK_OK, PASS, d


def _verdict(problems):
    for x in problems:
        if x[1] == FAIL:
            return x[0], FAIL
    for x in problems:
        if x[1] == WARN:
            return x[0], WARN
    return _CONFIG_OK, PASS
