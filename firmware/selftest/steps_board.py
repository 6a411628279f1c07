# Steps that look at the board itself: config (the lint, loaded for this step only), runtime,
# Wi-Fi, clock. Functions of the Probe state `p`; probe.py loads this module and drops it after.
from selftest.probe import FAIL, LOW_HEAP, PASS, SKIP, WARN, short


def s_config(p):
    if p.w.config_problem:
        p.blocked = "config unreadable"
        return 116, FAIL, {"problems": [{"code": 116, "status": FAIL, "field": "",
                                         "msg": p.w.config_problem}]}
    problems = p.w.problems
    if problems is None:
        from selftest import memory

        problems = memory.lint(p.cfg)
    if p.w.ca_problem:
        problems.append((114, FAIL, "endpoint.ca", p.w.ca_problem))
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
        return 201, WARN, d
    if heap is not None and heap < LOW_HEAP:
        return 202, WARN, d
    return 200, PASS, d


def s_wifi(p):
    if p.w.radio is None:
        return 300, SKIP, {"why": "no Wi-Fi radio on this runtime (host network)"}
    ssid = p.ssid
    if not ssid:
        return 300, SKIP, {"why": "no wifi.ssid configured; assuming the board is already online"}
    code, d = p.w.radio.join(ssid, p.wifi_password, p.wifi_timeout_ms, p.w.clock)
    if code != 300:
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
            return 402, FAIL, d
        if not synced or not clk.valid():
            p.no_tls = "clock unset: certificates cannot be judged"
            d["year"] = clk.now()[0]
            return 401, FAIL, d
        d["source"] = clk.source
    d["utc"] = clk.utc()
    return 400, PASS, d


def _verdict(problems):
    for x in problems:
        if x[1] == FAIL:
            return x[0], FAIL
    for x in problems:
        if x[1] == WARN:
            return x[0], WARN
    return 100, PASS
