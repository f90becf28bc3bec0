"""A validated configuration turned into the integers the safety cycle compares with.

Everything here is computed once, when a configuration is applied: the cycle only reads
these arrays. Temperatures are Q10 (1/1024 C); a limit that is not set is NO_LIMIT
with its `has_*` flag cleared.
"""

from array import array

from tgfw.config import rate_window_samples
from tgfw.dose import cem43_hi

Q = 1024


def q10(c):
    """Degrees C to Q10, rounded to nearest."""
    return int(c * Q + (0.5 if c >= 0 else -0.5))


class Settings:
    def __init__(self, cfg, config_hash):
        self.cfg = cfg
        self.hash = config_hash
        self.sample_hz = cfg["sample_hz"]
        self.period_us = 1000000 // self.sample_hz
        self.stale_ms = cfg["stale_ms"]
        self.host_timeout_ms = int(cfg["host_timeout_s"] * 1000)
        self.frozen_reads = (cfg["frozen_ms"] * self.sample_hz + 999) // 1000
        self.max_overruns = cfg["max_overruns"]
        self.window = rate_window_samples(self.sample_hz, cfg["rate_window_s"])
        half = self.window // 2
        ratio = cfg["warn_ratio"]
        chans = cfg["channels"]
        n = self.n = len(chans)
        self.names = [c["name"] for c in chans]
        self.high = array("i", [q10(c["high_c"]) for c in chans])
        self.has_low = array("b", [1 if "low_c" in c else 0 for c in chans])
        self.low = array("i", [q10(c.get("low_c", 0)) for c in chans])
        margin = [q10(c["warn_margin_c"]) for c in chans]
        self.warn_high = array("i", [self.high[i] - margin[i] for i in range(n)])
        self.warn_low = array("i", [self.low[i] + margin[i] for i in range(n)])
        self.jump = array("i", [q10(c["jump_c"]) for c in chans])
        # Rate: the rise between the averages of the window's two halves, compared as a
        # difference of sums: sum_new - sum_old >= rate * half * half / sample_hz.
        self.has_rate = array("b", [1 if "rate_c_per_s" in c else 0 for c in chans])
        rate_sum = []
        for c in chans:
            r = q10(c.get("rate_c_per_s", 0))
            rate_sum.append((r * half * half + self.sample_hz - 1) // self.sample_hz)
        self.rate_sum = array("i", rate_sum)
        self.warn_rate_sum = array("i", [int(v * ratio) for v in rate_sum])
        self.has_dose = array("b", [1 if "dose_cem43" in c else 0 for c in chans])
        self.dose_hi = array("i", [cem43_hi(c.get("dose_cem43", 0)) for c in chans])
        self.warn_dose_hi = array("i", [int(v * ratio) for v in self.dose_hi])
