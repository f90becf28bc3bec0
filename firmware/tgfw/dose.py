"""Thermal dose in CEM43, accumulated per channel in integer fixed point.

CEM43 = sum(dt_minutes * R ** (43 - T)), R = 0.5 at or above 43 C and 0.25 below
(Sapareto and Dewey 1984). R ** (43 - T) is 2 ** e with e = T - 43 above 43 C and
e = 2 * (T - 43) below; 2 ** e = 2 ** n * 2 ** f is a shift and a table lookup.

Each reading adds the dose of the interval since the channel's previous valid reading
at the new reading's temperature. The dose is held in two words so that every
intermediate stays within a 32-bit port's small ints (+-2**30):
  hi: units of 2**-10 CEM43 (up to about a million CEM43, saturating),
  lo: units of 2**-30 CEM43, always below 2**20,
  fr: units of 2**-40 CEM43, always below 2**10.
The host recomputes the dose from the log in floating point and agrees within 0.1 %.
"""

from array import array

import micropython

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):  # type: ignore[misc]
        return x

Q = const(1024)  # temperatures are Q10: 1/1024 C
T43 = const(43 * 1024)
LO_BITS = const(20)
LO_MASK = const(0xFFFFF)
HI_MAX = const(0x3FFFFFFF)
# 2**30 / 60000: one millisecond in units of 2**-30 minute (error 1.7e-5).
MS_UNITS = const(17896)
DT_MAX_MS = const(10000)

# 2 ** (i / 32) in Q14 for i = 0..32; linear interpolation between entries is good to
# 6e-5 of the value.
EXP2_Q14 = array("i", (
    16384, 16743, 17109, 17484, 17867, 18258, 18658, 19066, 19484, 19911, 20347,
    20792, 21247, 21713, 22188, 22674, 23170, 23678, 24196, 24726, 25268, 25821,
    26386, 26964, 27554, 28158, 28774, 29405, 30048, 30706, 31379, 32066, 32768,
))


class Dose:
    """CEM43 per channel: `hi[i]` and `lo[i]` as described above."""

    def __init__(self, n):
        self.hi = array("i", [0] * n)
        self.lo = array("i", [0] * n)
        self.fr = array("i", [0] * n)  # below lo: units of 2**-40 CEM43, < 2**10
        self.rem_us = array("i", [0] * n)  # microseconds not yet counted as whole ms

    def clear(self, i):
        self.hi[i] = 0
        self.lo[i] = 0
        self.fr[i] = 0
        self.rem_us[i] = 0

    @micropython.native
    def add(self, i, temp_q10, dt_us):
        """Add the dose of dt_us microseconds at temp_q10 to channel i."""
        us = self.rem_us[i] + dt_us
        ms = us // 1000
        self.rem_us[i] = us - ms * 1000
        if ms <= 0:
            return
        if ms > DT_MAX_MS:
            ms = DT_MAX_MS
        e = temp_q10 - T43
        if e < 0:
            e += e
        n = e >> 10  # whole part of the exponent (floor)
        f = e & 1023
        k = f >> 5
        lo_entry = EXP2_Q14[k]
        m = lo_entry + (((EXP2_Q14[k + 1] - lo_entry) * (f & 31)) >> 5)  # 2**frac in Q14, < 2**15
        c = ms * MS_UNITS  # < 2**28: the interval in 2**-30 minutes
        # c * m * 2**(n - 14), split so no product reaches 2**30.
        self._add(i, (c >> 15) * m, n + 1)
        self._add(i, (c & 0x7FFF) * m, n - 14)

    @micropython.native
    def _add(self, i, x, s):
        """Add x * 2**s units of 2**-30 CEM43 to channel i (0 <= x < 2**30)."""
        if s >= LO_BITS:
            shift = s - LO_BITS
            if shift >= 30 or (x >> (30 - shift)):  # x << shift would reach 2**30
                self.hi[i] = HI_MAX
                return
            self._add_hi(i, x << shift)
            return
        if s >= 0:
            self._add_hi(i, x >> (LO_BITS - s))
            lo = self.lo[i] + ((x & ((1 << (LO_BITS - s)) - 1)) << s)
        else:
            # Bits shifted out below 2**-30 go to fr (2**-40 units) so that long runs of
            # small increments (body temperature) keep their sum to 1e-5.
            y = x >> -s if s > -30 else 0
            lost = x - (y << -s) if s > -30 else x
            fr = self.fr[i] + (lost >> (-s - 10) if s <= -10 else lost << (10 + s))
            self._add_hi(i, y >> LO_BITS)
            lo = self.lo[i] + (y & LO_MASK) + (fr >> 10)
            self.fr[i] = fr & 1023
        if lo > LO_MASK:  # lo stays below 2**21 here
            self._add_hi(i, lo >> LO_BITS)
            lo &= LO_MASK
        self.lo[i] = lo

    @micropython.native
    def _add_hi(self, i, add):
        """Saturating add, compared before adding so no sum passes 2**30."""
        hi = self.hi[i]
        self.hi[i] = HI_MAX if add > HI_MAX - hi else hi + add


def cem43_hi(cem43):
    """A dose limit in the units of `hi` (1/1024 CEM43), rounded down so that the
    trip comes at the limit or up to 1/1024 CEM43 before it, never after."""
    return int(cem43 * 1024 + 1e-6)
