"""MAX6675 model: a read-only 16-bit frame, type K, 0 to 1023.75 C.

Like the MAX31855 the chip converts with a straight line (41.276 uV/C) and adds its own
temperature; it outputs only the result, in 0.25 C steps, clamped to 0..1023.75 C.
Frame: D15 0, D14-3 temperature, D2 open, D1 device id 0, D0 three-state (reads 1 here:
MISO idles high on the emulated bus).

Conversion (datasheet): driving CS low stops a conversion under way; CS high starts a new
one, which ends conversion_ms (220) later. Reading faster than that never lets one end,
so the chip keeps showing its last result; before the first one it shows zero.

Faults the datasheet does not spell out, modelled as the circuit suggests (T- must be
grounded for the open-thermocouple detector, which sees T+ pulled high):
- open: D2 set, the input floats high, temperature bits at full scale;
- short_vcc: T+ at supply looks like an open input: D2 set, full scale;
- short_gnd: T+ at ground with T- grounded is zero emf: the chip reads its own
  temperature and sets no bit; the driver cannot see it.
"""

from tgfw import chips

from chipmodels import ChipModel, nist_emf_mv, round_half_up, ticks_diff

_SENSITIVITY_UV = 41.276


def temperature_code(tc_c, cj_c):
    """The chip's 12-bit temperature code (0.25 C) for a true temperature."""
    uv = (nist_emf_mv("K", min(max(tc_c, -270.0), 1372.0)) - nist_emf_mv("K", cj_c)) * 1000.0
    code = round_half_up((uv / _SENSITIVITY_UV + cj_c) * 4)
    return min(max(code, 0), 4095)


class MAX6675(ChipModel):
    mode_mask = 0b0011  # SPI mode 0 or 1: at these clocks data is valid on either edge
    max_hz = chips.MAX_SPI_HZ[chips.MAX6675]

    def __init__(self, tc_type="K", clock=None, tc_c=25.0, cj_c=25.0, conversion_ms=None):
        ChipModel.__init__(self, clock)
        if tc_type != "K":
            raise ValueError("the MAX6675 is type K only")
        self.tc_type = tc_type
        self.conversion_ms = conversion_ms or chips.conversion_ms(chips.MAX6675)
        self._started = self.now()  # powered up with CS high: a conversion is under way
        self._converting = True
        self._frame = bytearray(2)
        self._next = bytearray(2)
        self.tc_c = tc_c
        self.cj_c = cj_c
        self._prepare()

    def set_temperature(self, tc_c, cj_c=None):
        self.tc_c = tc_c
        if cj_c is not None:
            self.cj_c = cj_c
        self._prepare()

    def frame(self):
        return (self._next[0] << 8) | self._next[1]

    def _prepare(self):
        fault = self.chip_fault
        if fault == "open" or fault == "short_vcc":
            word = (4095 << 3) | 0x04
        elif fault == "short_gnd":
            word = temperature_code(self.cj_c, self.cj_c) << 3
        else:
            word = temperature_code(self.tc_c, self.cj_c) << 3
        word |= 0x01  # D0 three-state, pulled high
        self._next[0] = word >> 8
        self._next[1] = word & 0xFF

    def _tick(self, now):
        # CS falls: a conversion that has run its full time is done, any other stops.
        if self._converting and ticks_diff(now, self._started) >= self.conversion_ms:
            self._frame[0] = self._next[0]
            self._frame[1] = self._next[1]
            if self.dither and not self._next[1] & 0x04:
                self._flip ^= 0x08
                self._frame[1] ^= self._flip  # the temperature's last bit (D3)
        self._converting = False

    def deselect(self):
        ChipModel.deselect(self)
        if self.fault != "stuck":
            self._started = self.now()  # CS high starts a new conversion
            self._converting = True

    def _out(self, pos, mosi):
        return self._frame[pos] if pos < 2 else 0x00

