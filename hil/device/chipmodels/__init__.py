"""Chip models of the virtual board: thermocouple amplifiers that answer SPI byte for byte.

A model hangs on a chip-select pin of the emulated machine module (machine.attach_chip).
The bus calls select() on the falling edge of chip select, exchange(mosi) -> miso for
every byte, deselect() on the rising edge. set_temperature() and set_fault() compute what
the chip will show (floats are fine there); select/exchange/deselect only copy prepared
bytes and compare integers, so the emulated bus allocates nothing.

Fault words (DESIGN.md scenarios): None or "" healthy; "open", "short_gnd", "short_vcc"
are seen by the chip at its next conversion; "zeros" (MISO stuck low), "ones" (MISO stuck
high), "stuck" (the chip repeats its last frame) and "absent" (no answer: the transfer
raises OSError, like a bus error) act on the bus at once.

This module also holds an independent floating-point NIST ITS-90 reference function for
types K, J and T (NIST Monograph 175 coefficients), for the chips that compute with it.
"""

import math
import time

try:
    ticks_ms = time.ticks_ms
    ticks_add = time.ticks_add
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython, for host-side checks

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_add(a, b):
        return a + b

    def ticks_diff(a, b):
        return a - b


CHIP_FAULTS = ("open", "short_gnd", "short_vcc")
BUS_FAULTS = ("zeros", "ones", "stuck", "absent")

# NIST ITS-90 reference functions, emf in mV: (t_max C, coefficients c0..cn) per range,
# plus type K's exponential term (a0, a1, a2) above 0 C.
_NIST = {
    "K": (
        (-270.0, 0.0, (
            0.0, 0.394501280250e-01, 0.236223735980e-04, -0.328589067840e-06,
            -0.499048287770e-08, -0.675090591730e-10, -0.574103274280e-12,
            -0.310888728940e-14, -0.104516093650e-16, -0.198892668780e-19,
            -0.163226974860e-22)),
        (0.0, 1372.0, (
            -0.176004136860e-01, 0.389212049750e-01, 0.185587700320e-04,
            -0.994575928740e-07, 0.318409457190e-09, -0.560728448890e-12,
            0.560750590590e-15, -0.320207200030e-18, 0.971511471520e-22,
            -0.121047212750e-25)),
    ),
    "J": (
        (-210.0, 760.0, (
            0.0, 0.503811878150e-01, 0.304758369300e-04, -0.856810657200e-07,
            0.132281952950e-09, -0.170529583370e-12, 0.209480906970e-15,
            -0.125383953360e-18, 0.156317256970e-22)),
        (760.0, 1200.0, (
            0.296456256810e03, -0.149761277860e01, 0.317871039240e-02,
            -0.318476867010e-05, 0.157208190040e-08, -0.306913690560e-12)),
    ),
    "T": (
        (-270.0, 0.0, (
            0.0, 0.387481063640e-01, 0.441944343470e-04, 0.118443231050e-06,
            0.200329735540e-07, 0.901380195590e-09, 0.226511565930e-10,
            0.360711542050e-12, 0.384939398830e-14, 0.282135219250e-16,
            0.142515947790e-18, 0.487686622860e-21, 0.107955392700e-23,
            0.139450270620e-26, 0.797951539270e-30)),
        (0.0, 400.0, (
            0.0, 0.387481063640e-01, 0.332922278800e-04, 0.206182434040e-06,
            -0.218822568460e-08, 0.109968809280e-10, -0.308157587720e-13,
            0.454791352900e-16, -0.275129016730e-19)),
    ),
}
_K_EXP = (0.118597600000e00, -0.118343200000e-03, 0.126968600000e03)


def nist_emf_mv(tc_type, t):
    """NIST emf (mV, 0 C reference) of a type K, J or T thermocouple at t C.

    Outside the type's range the nearest range's polynomial is extended (models only).
    """
    ranges = _NIST[tc_type]
    lo, hi, coeffs = ranges[0] if t < ranges[1][0] else ranges[1]
    e = 0.0
    for c in reversed(coeffs):
        e = e * t + c
    if tc_type == "K" and t >= 0.0:
        a0, a1, a2 = _K_EXP
        e += a0 * math.exp(a1 * (t - a2) * (t - a2))
    return e


def nist_range(tc_type):
    ranges = _NIST[tc_type]
    return ranges[0][0], ranges[-1][1]


def round_half_up(x):
    return int(math.floor(x + 0.5))


class ChipModel:
    """What every chip shares: the bus faults, the last frame for "stuck", timing."""

    mode_mask = 1  # SPI modes the chip answers correctly, bit n for mode n
    max_hz = 5000000

    def __init__(self, clock=None):
        self._clock = clock if clock is not None else ticks_ms
        self.selected = False  # kept by the emulated bus
        self.selects = 0  # transactions so far
        self.fault = None  # the fault word in force
        self.chip_fault = None  # "open" / "short_gnd" / "short_vcc" or None
        self._bus = 0  # 0, or one of the _ZEROS.._ABSENT below
        self._pos = 0  # byte position in the transaction
        self._rec = bytearray(16)  # MISO of the transaction under way
        self._last = bytearray(16)  # MISO of the last complete frame, replayed when stuck
        self._last_len = 0
        self._error = OSError(5)  # EIO, made once: an absent chip raises without allocating
        # Real chips flicker in their last bit; a noiseless model at a steady temperature
        # repeats its frame exactly, which a frozen-signal check rightly flags. With
        # dither on, every other conversion flips the last bit of a value.
        self.dither = False
        self._flip = 0

    def now(self):
        return self._clock()

    def set_fault(self, word):
        if word not in (None, "") and word not in CHIP_FAULTS and word not in BUS_FAULTS:
            raise ValueError(f"unknown fault word {word!r}")
        self.fault = word or None
        self.chip_fault = word if word in CHIP_FAULTS else None
        self._bus = _BUS_CODE.get(word, 0) if word else 0
        self._prepare()

    def select(self):
        self.selects += 1
        self._pos = 0
        if self._bus == _STUCK:
            return
        self._tick(self._clock())
        self._begin()

    def deselect(self):
        if self._bus or self._pos == 0 or not self._is_frame():
            return  # a bus fault is no frame of the chip's; a stuck chip keeps its last
        # Keep this frame for a later "stuck": swap buffers instead of copying.
        self._last, self._rec = self._rec, self._last
        self._last_len = self._pos

    def exchange(self, mosi):
        bus = self._bus
        pos = self._pos
        self._pos = pos + 1
        if bus:
            if bus == _ZEROS:
                return 0x00
            if bus == _ONES:
                return 0xFF
            if bus == _ABSENT:
                raise self._error
            # stuck: replay the last frame; past its end MISO floats high
            return self._last[pos] if pos < self._last_len else 0xFF
        miso = self._out(pos, mosi)
        if pos < 16:
            self._rec[pos] = miso
        return miso

    # For the chips to fill in.
    def _prepare(self):
        """Recompute the prepared output after a temperature or fault change."""

    def _tick(self, now):
        """Advance conversions to time now (ms); no allocation."""

    def _begin(self):
        """A transaction starts."""

    def _is_frame(self):
        """Whether the finished transaction is one a stuck chip would repeat."""
        return True

    def _out(self, pos, mosi):
        return 0xFF


_ZEROS = 1
_ONES = 2
_STUCK = 3
_ABSENT = 4
_BUS_CODE = {"zeros": _ZEROS, "ones": _ONES, "stuck": _STUCK, "absent": _ABSENT}


class Conversions:
    """A free-running converter: a new result every period_ms, latched at its end."""

    def __init__(self, period_ms, now):
        self.period = period_ms
        self.due = ticks_add(now, period_ms)

    def restart(self, now):
        self.due = ticks_add(now, self.period)

    def due_now(self, now):
        """Whether a conversion ended by now; the next one then ends a period later."""
        if ticks_diff(now, self.due) < 0:
            return False
        self.due = ticks_add(now, self.period)
        return True


class ManualClock:
    """A millisecond clock that moves only when told (tests, stepped simulation)."""

    def __init__(self, ms=0):
        self.ms = ms

    def __call__(self):
        return self.ms

    def advance(self, ms):
        self.ms += ms
