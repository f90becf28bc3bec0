"""Per-channel checks of one safety cycle: fault, stale, frozen, implausible jump, limits,
rate of rise, thermal dose and warnings.

`update` takes what a driver read this cycle and leaves, for channel i:
  fault[i]   the fault code (codes.F_*), 0 when the reading can be used
  usable[i]  1 when temp[i] holds a trusted temperature (fault is 0)
  temp[i]    the last trusted reading, Q10 (meaningless while usable is 0)
  active[i]  the trip conditions present now (codes.C_* bits)
  warn[i]    the pre-alarm conditions present now
No allocation: everything lives in preallocated arrays.
"""

from array import array

import micropython

from tgfw.codes import (
    C_DOSE,
    C_FAULT,
    C_HIGH,
    C_LOW,
    C_RATE,
    F_ABSENT,
    F_IMPLAUSIBLE,
    F_NONE,
    F_STALE,
    F_STUCK,
    MISSING,
    RATE_UNKNOWN,
)
from tgfw.dose import Dose
from tgfw.rate import RateWindow

MS_MASK = 0x3FFFFFFF  # millisecond clock modulo 2**30: a 32-bit port's tick period


def elapsed_ms(now, then):
    return (now - then) & MS_MASK


class Channels:
    def __init__(self, settings, now_ms):
        n = settings.n
        self.s = settings
        self.n = n
        self.temp = array("i", [0] * n)
        self.cj = array("i", [0] * n)
        self.fault = array("i", [F_STALE] * n)
        self.usable = array("b", [0] * n)
        self.active = array("i", [C_FAULT] * n)
        self.warn = array("i", [0] * n)
        self.rate = array("i", [RATE_UNKNOWN] * n)
        self.last_fresh_ms = array("i", [now_ms & MS_MASK] * n)
        self.absent = array("b", [0] * n)  # the chip stopped answering since its last reading
        self.rates = RateWindow(n, settings.window)
        self.dose = Dose(n)

    @micropython.native
    def update(self, i, code, tc, cj, repeats, now_ms, dt_us):
        """Take channel i's read result (driver fault code, Q10 temperature and cold
        junction, count of identical frames) at now_ms, dt_us after the last cycle."""
        s = self.s
        was_usable = self.usable[i]
        fault = code
        if code == F_NONE:
            if repeats >= s.frozen_reads:
                fault = F_STUCK
            elif was_usable and (tc - self.temp[i] > s.jump[i] or self.temp[i] - tc > s.jump[i]):
                fault = F_IMPLAUSIBLE
            else:
                self.temp[i] = tc
                self.cj[i] = cj if cj is not None else MISSING
                self.last_fresh_ms[i] = now_ms & MS_MASK
                self.absent[i] = 0
        elif code == F_ABSENT:
            # A bus error is tolerated while the last reading is younger than stale_ms.
            self.absent[i] = 1
            fault = F_NONE if was_usable else F_ABSENT
        if fault == F_NONE and elapsed_ms(now_ms, self.last_fresh_ms[i]) > s.stale_ms:
            fault = F_ABSENT if self.absent[i] else F_STALE
        self.fault[i] = fault
        if fault != F_NONE:
            self.usable[i] = 0
            self.active[i] = C_FAULT
            self.warn[i] = 0
            self.rate[i] = RATE_UNKNOWN
            self.rates.clear(i)
            return
        self.usable[i] = 1
        t = self.temp[i]
        active = 0
        warn = 0
        if t >= s.high[i]:
            active = C_HIGH
        if t >= s.warn_high[i]:
            warn = C_HIGH
        if s.has_low[i]:
            if t <= s.low[i]:
                active |= C_LOW
            if t <= s.warn_low[i]:
                warn |= C_LOW
        if self.rates.push(i, t):
            rise = self.rates.rise(i)
            self.rate[i] = self.rates.rate_q10(i, s.sample_hz)
            if s.has_rate[i]:
                if rise >= s.rate_sum[i]:
                    active |= C_RATE
                if rise >= s.warn_rate_sum[i]:
                    warn |= C_RATE
        if was_usable:
            self.dose.add(i, t, dt_us)
        if s.has_dose[i]:
            hi = self.dose.hi[i]
            if hi >= s.dose_hi[i]:
                active |= C_DOSE
            if hi >= s.warn_dose_hi[i]:
                warn |= C_DOSE
        self.active[i] = active
        self.warn[i] = warn

    @micropython.native
    def any_active(self):
        for i in range(self.n):
            if self.active[i]:
                return True
        return False
