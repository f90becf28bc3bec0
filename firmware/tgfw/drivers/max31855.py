"""MAX31855 thermocouple amplifier: one 32-bit frame per read, NIST-corrected.

Frame (datasheet table 2): D31-18 thermocouple 14-bit signed, 0.25 C; D17 reserved (0);
D16 fault (any of D2-0); D15-4 cold junction 12-bit signed, 0.0625 C; D3 reserved (0);
D2 short to VCC, D1 short to GND, D0 open. The chip converts with one straight line, so
the thermocouple value is corrected to NIST ITS-90 with the cold junction of the same
frame (one transaction: both come from one conversion).

A thermocouple at exactly 0.00 C with the chip at exactly 0.0000 C gives the all-zeros
frame of a MISO stuck low, and is reported as F_ZEROS. The chip is read-only, so a chip
that freezes cannot be asked; `repeats` counts the consecutive bit-identical frames for
the guard's frozen-signal check.
"""

from tgfw import chips
from tgfw.codes import (
    F_ABSENT,
    F_IMPLAUSIBLE,
    F_ONES,
    F_OPEN,
    F_RANGE,
    F_SHORT_GND,
    F_SHORT_VCC,
    F_ZEROS,
)
from tgfw.drivers import nist

_MODE = (1000000, 0, 0)  # SPI mode 0, within the chip's 5 MHz
_CJ_LO = chips.CJ_MIN_C * 16  # cold-junction range in 1/16 C
_CJ_HI = chips.CJ_MAX_C * 16


class Driver:
    def __init__(self, bus, cs_pin, tc_type="K", averaging=1, filter_hz=60):
        if tc_type not in chips.TC_TYPES[chips.MAX31855]:
            raise ValueError(f"MAX31855 type {tc_type} not supported")
        self.tc_type = tc_type
        self._bus = bus
        self._cs = cs_pin
        self._lin = nist.get(tc_type)
        self._buf = bytearray(4)
        self._hi = -1  # previous frame, two halves (a whole 32-bit word is no small int)
        self._lo = -1
        self.tc = None  # Q10 C, NIST-corrected; None unless the last read was healthy
        self.cj = None  # Q10 C
        self.chip_tc = None  # Q10 C, the chip's own straight-line value (diagnostics)
        self.fault = 0
        self.frames = 0
        self.repeats = 0
        cs_pin.value(1)

    def configure(self):
        """Nothing to configure on a read-only chip."""
        return 0

    def read(self):
        """Read one frame; returns its fault code (0: healthy, tc and cj set)."""
        self.frames += 1
        try:
            self._bus.read(self._cs, _MODE, None, self._buf)
        except Exception:  # noqa: BLE001 - any bus error means the chip did not answer
            # The last frame and the count of repeats stand: a frozen chip that also drops
            # reads must not look fresh each time it answers.
            return self._fail(F_ABSENT)
        return self._decode()

    def _fail(self, code):
        self.tc = None
        self.cj = None
        self.chip_tc = None
        self.fault = code
        return code

    def _decode(self):
        # Few locals on purpose: a frame of more than 11 words would go on the heap.
        b = self._buf
        hi = (b[0] << 8) | b[1]
        lo = (b[2] << 8) | b[3]
        if hi == self._hi and lo == self._lo:
            self.repeats += 1
        else:
            self.repeats = 0
            self._hi = hi
            self._lo = lo
        if hi == 0 and lo == 0:
            return self._fail(F_ZEROS)
        if hi == 0xFFFF and lo == 0xFFFF:
            return self._fail(F_ONES)
        if hi & 0x0002 or lo & 0x0008:  # D17, D3 always read 0
            return self._fail(F_IMPLAUSIBLE)
        c = lo & 7  # fault causes
        if hi & 1:
            if c & 1:
                return self._fail(F_OPEN)
            if c & 2:
                return self._fail(F_SHORT_GND)
            if c & 4:
                return self._fail(F_SHORT_VCC)
            return self._fail(F_IMPLAUSIBLE)  # fault without a cause
        if c:
            return self._fail(F_IMPLAUSIBLE)  # a cause without the fault bit
        lo >>= 4  # cold junction, 1/16 C
        if lo & 0x800:
            lo -= 0x1000
        if lo < _CJ_LO or lo > _CJ_HI:
            return self._fail(F_RANGE)
        hi >>= 2  # thermocouple, 1/4 C
        if hi & 0x2000:
            hi -= 0x4000
        self.chip_tc = hi << 8
        hi = self._lin.correct(hi, lo)
        if hi is None:
            return self._fail(F_RANGE)
        self.tc = hi
        self.cj = lo << 6
        self.fault = 0
        return 0
