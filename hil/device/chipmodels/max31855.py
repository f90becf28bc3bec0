"""MAX31855 model: a read-only 32-bit frame from a free-running converter.

The chip's thermocouple value is its own straight line, not NIST: the thermocouple emf
NIST(T) - NIST(cj) divided by the type's sensitivity (datasheet table 1), plus the cold
junction, in 0.25 C steps (14 bits signed); the cold junction in 0.0625 C steps (12 bits
signed). A conversion ends every conversion_ms; a read before the next one ends returns
the previous conversion, and before the first one the output register is zero.

Faults set D16 and one cause bit (D0 open, D1 short to GND, D2 short to VCC). What the
temperature bits hold then is not in the datasheet; the model keeps the value the
thermocouple would give, so a reader that ignores the fault bits sees a plausible
temperature (the worst case for a driver under test).
"""

from tgfw import chips

from chipmodels import ChipModel, Conversions, nist_emf_mv, nist_range, round_half_up

SENSITIVITY_UV = {"K": 41.276, "J": 57.953, "T": 52.18}
_CAUSE = {"open": 0x01, "short_gnd": 0x02, "short_vcc": 0x04}


def linear_code(tc_type, tc_c, cj_c):
    """The chip's 14-bit thermocouple code (0.25 C) for a true temperature."""
    lo, hi = nist_range(tc_type)
    tc_c = min(max(tc_c, lo), hi)
    uv = (nist_emf_mv(tc_type, tc_c) - nist_emf_mv(tc_type, cj_c)) * 1000.0
    code = round_half_up((uv / SENSITIVITY_UV[tc_type] + cj_c) * 4)
    return min(max(code, -8192), 8191)


def cj_code(cj_c):
    """The chip's 12-bit cold-junction code (0.0625 C)."""
    return min(max(round_half_up(cj_c * 16), -2048), 2047)


class MAX31855(ChipModel):
    mode_mask = 0b0001  # SPI mode 0
    max_hz = chips.MAX_SPI_HZ[chips.MAX31855]

    def __init__(self, tc_type="K", clock=None, tc_c=25.0, cj_c=25.0, conversion_ms=None):
        ChipModel.__init__(self, clock)
        if tc_type not in SENSITIVITY_UV:
            raise ValueError(f"MAX31855 type {tc_type} not modelled")
        self.tc_type = tc_type
        self._conv = Conversions(conversion_ms or chips.conversion_ms(chips.MAX31855), self.now())
        self._frame = bytearray(4)  # the output register, zero until the first conversion
        self._next = bytearray(4)  # what the conversion under way will give
        self.tc_c = tc_c
        self.cj_c = cj_c
        self._prepare()

    def set_temperature(self, tc_c, cj_c=None):
        self.tc_c = tc_c
        if cj_c is not None:
            self.cj_c = cj_c
        self._prepare()

    def frame(self):
        """The frame the next conversion will latch, as a 32-bit int (for tests)."""
        n = self._next
        return (n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3]

    def _prepare(self):
        tc = linear_code(self.tc_type, self.tc_c, self.cj_c) & 0x3FFF
        cj = cj_code(self.cj_c) & 0xFFF
        cause = _CAUSE.get(self.chip_fault, 0)
        word = (tc << 18) | (0x10000 if cause else 0) | (cj << 4) | cause
        n = self._next
        n[0] = (word >> 24) & 0xFF
        n[1] = (word >> 16) & 0xFF
        n[2] = (word >> 8) & 0xFF
        n[3] = word & 0xFF

    def _tick(self, now):
        if self._conv.due_now(now):
            f, n = self._frame, self._next
            for i in range(4):
                f[i] = n[i]
            if self.dither:
                self._flip ^= 0x10
                f[3] ^= self._flip  # the cold junction's last bit (D4)

    def _out(self, pos, mosi):
        return self._frame[pos] if pos < 4 else 0x00  # past D0 the chip shifts out zeros
