# Writes the serial report: a begin record, one step record per step, an end record, each through
# record.encode so the host can pick them out of boot noise. Counts and the verdict are kept here.
import gc

from selftest import record
from selftest.codes import STEPS, name_of


class Reporter:
    def __init__(self, write, run_id, clock):
        self.write = write
        self.run = run_id
        self.clock = clock
        self.seq = 0
        self.counts = {"pass": 0, "warn": 0, "fail": 0, "skip": 0}
        self.t0 = clock.ms()

    def emit(self, rec):
        # A record must come out even when the heap is nearly full: collect and retry, and at worst
        # send it without its details rather than lose the step.
        try:
            line = record.encode(rec)
        except MemoryError:
            gc.collect()
            try:
                line = record.encode(rec)
            except MemoryError:
                if "d" in rec:
                    rec["d"] = {"oom": True}
                gc.collect()
                line = record.encode(rec)
        self.write(line)

    def begin(self, fields):
        rec = {"k": "begin", "run": self.run}
        rec.update(fields)
        self.emit(rec)

    def step(self, code, status, ms, d=None):
        self.seq += 1
        self.counts[status] += 1
        i = code // 100 - 1
        rec = {"k": "step", "run": self.run, "seq": self.seq, "step": STEPS[i] if 0 <= i < len(STEPS) else "probe",
               "code": code, "name": name_of(code), "status": status, "ms": ms, "d": d or {}}
        utc = self.clock.utc()
        if utc:
            rec["t"] = utc
        self.emit(rec)

    def end(self):
        verdict = "fail" if self.counts["fail"] else "pass"
        self.emit({"k": "end", "run": self.run, "verdict": verdict, "counts": self.counts,
                   "ms": self.clock.since(self.t0)})
        return verdict
