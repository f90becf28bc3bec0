"""Shared test fixtures for the firmware tests (MicroPython)."""
import json

from tgfw import config
from tgfw.channels import Channels
from tgfw.settings import Settings

EXAMPLE = {
    "sample_hz": 10,
    "stale_ms": 300,
    "host_timeout_s": 5,
    "channels": [
        {"name": "tip", "chip": "max31856", "cs": 17, "tc_type": "K", "role": "ablation",
         "high_c": 95.0, "low_c": 15.0, "rate_c_per_s": 10.0},
        {"name": "foramen", "chip": "max31855", "cs": 13, "tc_type": "K", "role": "protective",
         "high_c": 45.0, "low_c": 10.0, "rate_c_per_s": 2.0, "dose_cem43": 40.0},
    ],
}
TIP = 0
FORAMEN = 1
PERIOD_US = 100000


def example(**top):
    doc = json.loads(json.dumps(EXAMPLE))
    doc.update(top)
    return doc


def settings(doc=None):
    cfg = config.validate(doc or example())
    return Settings(cfg, config.config_hash(cfg))


def q(c):
    return int(c * 1024 + (0.5 if c >= 0 else -0.5))


class Pin:
    """An output pin that remembers every level it was driven to."""

    def __init__(self, level=1):
        self.level = level
        self.history = []

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.history.append(v)


class Feed:
    """Drives Channels cycle by cycle with given readings: (fault code, celsius)."""

    def __init__(self, s=None):
        self.s = s or settings()
        self.now = 1000
        self.ch = Channels(self.s, self.now)

    def cycle(self, *readings, repeats=0):
        self.now += PERIOD_US // 1000
        for i, (code, c) in enumerate(readings):
            tc = q(c) if c is not None else None
            self.ch.update(i, code, tc, q(25.0), repeats, self.now, PERIOD_US)
        return self.ch
