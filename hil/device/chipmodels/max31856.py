"""MAX31856 model: the register file, burst reads and writes, conversions and status.

Registers 00h-0Fh at their power-on values. The first byte of a transaction is the
address, bit 7 set for a write; the address then increments with every byte and wraps
from 0Fh to 00h. SDO floats (reads 0xFF here) during the address byte and during writes.
Writes to the read-only registers (0Ch-0Fh) are ignored, and to CJTH/CJTL unless the
cold-junction sensor is disabled (CR0 bit 3).

Conversions run only in automatic mode (CR0 bit 7: one every chips.conversion_ms for the
averaging and filter in CR1/CR0, the first one that long after the mode is entered) or
as a one-shot (CR0 bit 6, cleared when done). A conversion latches the cold junction
(plus the CJTO offset), the linearized thermocouple and the status (SR); until the first
one the data registers read zero. In comparator mode (CR0 bit 2 clear) SR shows the last
conversion; in interrupt mode the bits latch until CR0 FAULTCLR (bit 1, reads back 0).
The FAULT output (fault_output()) follows the SR bits that MASK leaves unmasked.

SR: 80h cold junction outside the chip's -55..125 C, 40h thermocouple outside the type's
range, 20h/10h cold junction above CJHF / below CJLF, 08h/04h thermocouple above LTHFT /
below LTLFT, 02h over/under-voltage, 01h open (only with open detection on, CR0 bits 5-4).

How faults look where the datasheet leaves it open: an open input floats high and the
conversion saturates at +2048 C (TC range and high bits follow); a short to supply is
over-voltage with the same saturation high; a short to ground is under-voltage with the
conversion saturated at -2048 C. Without open detection an open input just saturates.
"""

from tgfw import chips

from chipmodels import ChipModel, round_half_up, ticks_add, ticks_diff

# Power-on values: CR0 00h (conversions off), CR1 03h (type K, no averaging), MASK FFh,
# CJHF 7Fh, CJLF C0h, LTHFT 7FFFh, LTLFT 8000h, CJTO 00h, data and status 00h.
_DEFAULTS = (0x00, 0x03, 0xFF, 0x7F, 0xC0, 0x7F, 0xFF, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0)
_TYPES = "BEJKNRST"  # CR1 type codes 0..7
_TC_MAX = 0x3FFFF  # 19-bit linearized thermocouple, 1/128 C
_TC_MIN = -0x40000

CR0, CR1, MASK, CJHF, CJLF, LTHFTH, LTHFTL, LTLFTH, LTLFTL, CJTO, CJTH, CJTL = range(12)
LTCBH, LTCBM, LTCBL, SR = 12, 13, 14, 15


def _s8(v):
    return v - 256 if v & 0x80 else v


def _s16(v):
    return v - 65536 if v & 0x8000 else v


class MAX31856(ChipModel):
    mode_mask = 0b1010  # SPI mode 1 or 3
    max_hz = chips.MAX_SPI_HZ[chips.MAX31856]

    def __init__(self, tc_type="K", clock=None, tc_c=25.0, cj_c=25.0):
        ChipModel.__init__(self, clock)
        self.regs = bytearray(_DEFAULTS)
        self._addr = 0
        self._write = False
        self._due = 0  # end of the conversion under way (valid while _running)
        self._running = False
        self._tc = 0  # what the next conversion measures: thermocouple, 1/128 C
        self._cj = 0  # cold junction, 1/64 C
        self._saturate = 0  # +1 / -1 when a fault drives the input to a rail
        self._ovuv = False
        self._open = False
        if tc_type not in _TYPES:
            raise ValueError(f"MAX31856 type {tc_type} unknown")
        self.tc_type = tc_type  # the thermocouple wired; the model assumes CR1 names it
        self.tc_c = tc_c
        self.cj_c = cj_c
        self._prepare()

    def power_on(self):
        """Power cycle: registers back to their power-on values, conversions off."""
        self.regs[:] = bytearray(_DEFAULTS)
        self._running = False

    def set_temperature(self, tc_c, cj_c=None):
        self.tc_c = tc_c
        if cj_c is not None:
            self.cj_c = cj_c
        self._prepare()

    def fault_output(self):
        """Whether the FAULT pin is asserted (active low on the chip)."""
        r = self.regs
        return bool(r[SR] & ~r[MASK] & 0x3F) or bool(r[SR] & 0xC0)

    def conversion_ms(self):
        cr0, cr1 = self.regs[CR0], self.regs[CR1]
        avg = (1, 2, 4, 8, 16, 16, 16, 16)[(cr1 >> 4) & 7]
        return chips.conversion_ms(chips.MAX31856, avg, 50 if cr0 & 0x01 else 60)

    def _prepare(self):
        f = self.chip_fault
        self._tc = min(max(round_half_up(self.tc_c * 128), _TC_MIN), _TC_MAX)
        self._cj = min(max(round_half_up(self.cj_c * 64), -0x2000), 0x1FFF)
        self._saturate = -1 if f == "short_gnd" else 1 if f in ("open", "short_vcc") else 0
        self._ovuv = f in ("short_gnd", "short_vcc")
        self._open = f == "open"

    # The bus side: integers only from here on.

    def _tick(self, now):
        if self._running and ticks_diff(now, self._due) >= 0:
            self._convert()
            r = self.regs
            if r[CR0] & 0x80:
                self._due = ticks_add(now, self.conversion_ms())
            else:
                self._running = False
                r[CR0] &= ~0x40  # one-shot done

    def _begin(self):
        self._write = False

    def _is_frame(self):
        return not self._write  # a stuck chip repeats its last read

    def _out(self, pos, mosi):
        if pos == 0:
            self._addr = mosi & 0x0F
            self._write = bool(mosi & 0x80)
            return 0xFF
        a = self._addr
        self._addr = (a + 1) & 0x0F
        if self._write:
            self._store(a, mosi)
            return 0xFF
        return self.regs[a]

    def _store(self, a, v):
        r = self.regs
        if a >= LTCBH or ((a == CJTH or a == CJTL) and not r[CR0] & 0x08):
            return
        if a == CR0:
            was = r[CR0]
            if was & v & 0x80:  # the filter cannot change during automatic conversion
                v = (v & ~0x01) | (was & 0x01)
            if v & 0x02:  # FAULTCLR: clear latched status, the bit does not stay set
                r[SR] = 0
                v &= ~0x02
            r[CR0] = v
            now = self.now()
            if v & 0x80 and not was & 0x80:
                self._running = True
                self._due = ticks_add(now, self.conversion_ms())
            elif v & 0x40 and not v & 0x80:
                self._running = True
                self._due = ticks_add(now, self.conversion_ms())
            elif not v & 0xC0:
                self._running = False
            return
        r[a] = v

    # A conversion, in pieces small enough that their frames stay off the heap.

    def _convert(self):
        r = self.regs
        cj = self._convert_cj(r)
        tc = self._convert_tc(r)
        sr = self._status_cj(r, cj) | self._status_tc(r, tc)
        if self._ovuv:
            sr |= 0x02
        if self._open and r[CR0] & 0x30:
            sr |= 0x01
        if r[CR0] & 0x04:  # interrupt mode: bits latch until FAULTCLR
            sr |= r[SR]
        r[SR] = sr

    def _convert_cj(self, r):
        if r[CR0] & 0x08:  # sensor off: the host wrote the cold junction
            return _s16((r[CJTH] << 8) | r[CJTL]) >> 2
        cj = min(max(self._cj + _s8(r[CJTO]) * 4, -0x2000), 0x1FFF)  # CJTO is 1/16 C
        if self.dither:  # a real cold-junction sensor flickers by its last bit
            self._flip ^= 1
            cj ^= self._flip
        r[CJTH] = ((cj << 2) & 0xFFFF) >> 8
        r[CJTL] = (cj << 2) & 0xFC
        return cj

    def _convert_tc(self, r):
        sat = self._saturate
        if self._open and not r[CR0] & 0x30:
            sat = 1  # open input without detection: it just floats high
        if sat > 0:
            tc = _TC_MAX
        elif sat < 0:
            tc = _TC_MIN
        else:
            tc = min(max(self._tc + _s8(r[CJTO]) * 8, _TC_MIN), _TC_MAX)
        sat = (tc << 5) & 0xFFFFFF
        r[LTCBH] = sat >> 16
        r[LTCBM] = (sat >> 8) & 0xFF
        r[LTCBL] = sat & 0xE0
        return tc

    def _status_cj(self, r, cj):
        sr = 0x80 if cj < -55 * 64 or cj > 125 * 64 else 0
        if cj > _s8(r[CJHF]) * 64:
            sr |= 0x20
        if cj < _s8(r[CJLF]) * 64:
            sr |= 0x10
        return sr

    def _status_tc(self, r, tc):
        lo, hi = chips.TC_RANGE_C[_TYPES[r[CR1] & 7]] if r[CR1] & 0x08 == 0 else (-2048, 2048)
        sr = 0x40 if self._saturate or tc < lo * 128 or tc > hi * 128 else 0
        if tc > _s16((r[LTHFTH] << 8) | r[LTHFTL]) * 8:
            sr |= 0x08
        if tc < _s16((r[LTLFTH] << 8) | r[LTLFTL]) * 8:
            sr |= 0x04
        return sr
