"""The safety cycle's own arithmetic (dose, rate window, channel checks) stays within a
32-bit port's small ints (+-2**30) for every temperature a chip can report, the longest
intervals and saturated doses. Same method as test_small_int_range.py: the firmware
source runs on CPython with its inputs and stored values as checked ints."""

import sys
import types

import pytest
from test_small_int_range import Small

# The cycle modules use MicroPython's code emitters; on CPython they are plain functions.
_mp = types.ModuleType("micropython")
_mp.native = _mp.viper = lambda f: f
_mp.const = lambda x: x
sys.modules.setdefault("micropython", _mp)

from tgfw import config  # noqa: E402
from tgfw.channels import Channels  # noqa: E402
from tgfw.dose import Dose  # noqa: E402
from tgfw.rate import RateWindow  # noqa: E402
from tgfw.settings import Settings  # noqa: E402

T_MIN = -210 * 1024  # the lowest any supported chip reports (MAX31856, type J/K/T ranges)
T_MAX = 1800 * 1024  # the highest (MAX31856, types B/R/S)
TEMPS = [T_MIN, -1, 0, 1, 36 * 1024, 43 * 1024, 43 * 1024 + 1, 45 * 1024, 60 * 1024, 73 * 1024, 100 * 1024, T_MAX]


class Checked:
    """An array('i') stand-in whose reads are checked ints and whose writes must fit."""

    def __init__(self, values):
        self.data = [int(v) for v in values]

    def __getitem__(self, i):
        return Small(self.data[int(i)])

    def __setitem__(self, i, v):
        self.data[int(i)] = int(Small(v))

    def __len__(self):
        return len(self.data)


def checked(obj, *names):
    for name in names:
        setattr(obj, name, Checked(getattr(obj, name)))
    return obj


@pytest.mark.req("SR-DRV-07", "SR-CHK-03")
@pytest.mark.parametrize("temp", TEMPS)
@pytest.mark.parametrize("dt_us", [1, 999, 100000, 250000, 10_000_000, 60_000_000])
def test_dose_arithmetic_stays_small(temp, dt_us):
    d = checked(Dose(1), "hi", "lo", "fr", "rem_us")
    for _ in range(50):
        d.add(Small(0), Small(temp), Small(dt_us))
    assert 0 <= d.hi.data[0] <= 2**30 - 1
    assert 0 <= d.lo.data[0] < 2**20 and 0 <= d.fr.data[0] < 2**10


@pytest.mark.req("SR-DRV-07", "SR-CHK-02")
@pytest.mark.parametrize("window", [2, 20, 64])
def test_rate_window_sums_stay_small(window):
    r = checked(RateWindow(1, window), "buf", "pos", "count", "sum_new", "sum_old")
    for k in range(3 * window):
        value = T_MAX if (k // (window // 2)) % 2 else T_MIN
        if r.push(Small(0), Small(value)):
            r.rise(Small(0))
            r.rate_q10(Small(0), Small(20))


def extreme_settings():
    chans = [{"name": "a", "chip": "max31856", "cs": 1, "role": "ablation", "high_c": 105.0, "low_c": 0.0,
              "rate_c_per_s": 20.0, "dose_cem43": 100000.0, "jump_c": 50.0}]
    cfg = config.validate({"sample_hz": 10, "stale_ms": 2000, "host_timeout_s": 60, "rate_window_s": 6.4,
                           "channels": chans})
    return Settings(cfg, 0)


def check_settings(s):
    for name in ("high", "low", "warn_high", "warn_low", "jump", "rate_sum", "warn_rate_sum", "dose_hi",
                 "warn_dose_hi", "has_low", "has_rate", "has_dose"):
        setattr(s, name, Checked(getattr(s, name)))
    for name in ("sample_hz", "stale_ms", "frozen_reads", "window"):
        setattr(s, name, Small(getattr(s, name)))


@pytest.mark.req("SR-DRV-07", "SR-TIM-02")
def test_channel_checks_stay_small_across_the_whole_range():
    s = extreme_settings()
    ch = Channels(s, 0)
    check_settings(s)
    checked(ch, "temp", "cj", "fault", "usable", "active", "warn", "rate", "last_fresh_ms", "absent")
    checked(ch.dose, "hi", "lo", "fr", "rem_us")
    checked(ch.rates, "buf", "pos", "count", "sum_new", "sum_old")
    now = 2**30 - 5000  # the millisecond clock wraps during the run
    t = T_MIN
    for k in range(4000):
        now = (now + 100) & 0x3FFFFFFF
        t = min(T_MAX, t + 40 * 1024)  # 40 C per sample: the largest allowed jump is 50 C
        if k % 200 == 199:
            t = T_MIN
        ch.update(Small(0), Small(0), Small(t), Small(25 * 1024), Small(0), Small(now), Small(100000))
    assert ch.dose.hi.data[0] == 2**30 - 1  # saturated, not overflowed
