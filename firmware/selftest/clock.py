# Time for the probe: a monotonic millisecond counter for step timings, and UTC for the report and
# for judging certificates. Boards boot with the clock at their epoch (2000 or 1970), so any year
# before MIN_YEAR means "unset", and certificates cannot be judged.
MIN_YEAR = 2024


class Clock:
    """Built from a runtime's `time` module; `ntp(host)` sets the clock (None where the OS does)."""

    def __init__(self, time_mod, ntp=None, source="system"):
        self.t = time_mod
        self.ntp = ntp
        self.source = source
        self._ticks = getattr(time_mod, "ticks_ms", None)

    def ms(self):
        if self._ticks is not None:
            return self._ticks()
        return int(self.t.monotonic() * 1000)

    def since(self, t0):
        if self._ticks is not None:
            return self.t.ticks_diff(self._ticks(), t0)
        return self.ms() - t0

    def sleep_ms(self, ms):
        s = getattr(self.t, "sleep_ms", None)
        if s is not None:
            s(ms)
        else:
            self.t.sleep(ms / 1000)

    def now(self):
        """gmtime tuple of the current UTC time."""
        # CircuitPython's time has no gmtime; its localtime is UTC (boards keep no time zone).
        conv = getattr(self.t, "gmtime", None) or self.t.localtime
        return conv(int(self.t.time()))

    def valid(self):
        return self.now()[0] >= MIN_YEAR

    def utc(self):
        """ISO-8601 UTC with Z, or None while the clock is unset."""
        g = self.now()
        if g[0] < MIN_YEAR:
            return None
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % tuple(g[:6])

    def sync(self, host):
        """Set the clock over NTP; raises on failure. False when this runtime has no NTP here."""
        if self.ntp is None:
            return False
        self.ntp(host)
        self.source = "ntp"
        return True
