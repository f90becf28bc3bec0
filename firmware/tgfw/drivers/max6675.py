"""MAX6675 type-K amplifier: one 16-bit frame per read.

Frame (datasheet): D15 dummy (0); D14-3 temperature 12 bits, 0.25 C, 0 to 1023.75 C;
D2 open thermocouple; D1 device id (0); D0 three-state (ignored). The chip reports no
cold junction, so its straight-line reading cannot be corrected to NIST (cj is None), and
it cannot see a thermocouple shorted to ground: that reads as the chip's own temperature.

Driving CS low stops a conversion and CS high starts one (220 ms): read no faster than
chips.conversion_ms. A frame of exactly 0.00 C equals the all-zeros frame of a MISO stuck
low and is reported as F_ZEROS. The chip is read-only, so `repeats` counts consecutive
bit-identical frames for the guard's frozen-signal check.
"""

from tgfw import chips
from tgfw.codes import F_ABSENT, F_IMPLAUSIBLE, F_ONES, F_OPEN, F_ZEROS

_MODE = (1000000, 0, 1)  # SPI mode 1 (Linux binding: spi-cpha), within 4.3 MHz


class Driver:
    def __init__(self, bus, cs_pin, tc_type="K", averaging=1, filter_hz=60):
        if tc_type not in chips.TC_TYPES[chips.MAX6675]:
            raise ValueError(f"MAX6675 type {tc_type} not supported")
        self.tc_type = tc_type
        self._bus = bus
        self._cs = cs_pin
        self._buf = bytearray(2)
        self._prev = -1
        self.tc = None  # Q10 C, the chip's straight-line reading
        self.cj = None  # the MAX6675 has no cold-junction output
        self.fault = 0
        self.frames = 0
        self.repeats = 0
        cs_pin.value(1)

    def configure(self):
        """Nothing to configure on a read-only chip."""
        return 0

    def read(self):
        """Read one frame; returns its fault code (0: healthy, tc set)."""
        self.frames += 1
        try:
            self._bus.read(self._cs, _MODE, None, self._buf)
        except Exception:  # noqa: BLE001 - any bus error means the chip did not answer
            # The last frame and the count of repeats stand: a frozen chip that also drops
            # reads must not look fresh each time it answers.
            return self._fail(F_ABSENT)
        return self._decode()

    def _decode(self):
        w = (self._buf[0] << 8) | self._buf[1]
        if w == self._prev:
            self.repeats += 1
        else:
            self.repeats = 0
            self._prev = w
        if w == 0:
            return self._fail(F_ZEROS)
        if w == 0xFFFF:
            return self._fail(F_ONES)
        if w & 0x8002:  # dummy bit and device id always read 0
            return self._fail(F_IMPLAUSIBLE)
        if w & 0x0004:
            return self._fail(F_OPEN)
        # 0 to 1023.75 C: always inside type K's NIST range, so no range check here.
        self.tc = (w >> 3) << 8
        self.fault = 0
        return 0

    def _fail(self, code):
        self.tc = None
        self.fault = code
        return code
