"""MAX31856 thermocouple converter: configured from the channel, checked every read.

Registers 00h-0Fh, written at address | 80h, read and written in bursts with automatic
address increment. configure() stops conversions, writes the whole configuration in one
burst (CR0: automatic conversion, open-circuit detection, comparator fault mode, fault
clear, filter; CR1: averaging and type; MASK 0; cold-junction fault thresholds at the
accepted cold-junction range; thermocouple thresholds wide open), reads it back and
compares.

A read is one burst from LTLFTL (08h) to SR (0Fh): the stuck-check token, the
cold-junction offset, cold junction, linearized thermocouple and status of one
conversion. After it, a new token goes to LTLFTL, the low byte of the thermocouple
low-fault threshold, which stays between -2048 C and -2032 C, where no thermocouple
reads. A chip that stops answering with fresh registers echoes a stale token: F_STUCK.

Status bits: OPEN -> F_OPEN; OVUV (an input below ground or above supply) -> a short,
to ground when the thermocouple reads below 0 C (the input is pulled down), otherwise to
supply; any range or threshold bit -> F_RANGE.
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
    F_STUCK,
    F_ZEROS,
)

try:
    from micropython import const
except ImportError:  # CPython, for host-side checks

    def const(x):  # type: ignore[misc]
        return x


_MODE = (1000000, 0, 1)  # SPI mode 1, within the chip's 5 MHz
_WRITE = const(0x80)
_LTLFTL = const(0x08)

_CR0_AUTO = const(0x80)  # automatic conversion about every 100 ms
_CR0_OC = const(0x10)  # open-circuit detection, source resistance below 5 kOhm
_CR0_FAULTCLR = const(0x02)  # self-clearing: masked out of the readback
_CR0_50HZ = const(0x01)

_SR_OVUV = const(0x02)
_SR_OPEN = const(0x01)

_CJ_LO = chips.CJ_MIN_C << 10  # accepted cold-junction range, Q10
_CJ_HI = chips.CJ_MAX_C << 10


class Driver:
    def __init__(self, bus, cs_pin, tc_type="K", averaging=1, filter_hz=60):
        if tc_type not in chips.TC_TYPES[chips.MAX31856]:
            raise ValueError(f"MAX31856 type {tc_type} not supported")
        if averaging not in chips.MAX31856_AVERAGING:
            raise ValueError(f"MAX31856 averaging {averaging} not supported")
        if filter_hz not in chips.MAX31856_FILTERS:
            raise ValueError(f"MAX31856 filter {filter_hz} Hz not supported")
        self.tc_type = tc_type
        self._bus = bus
        self._cs = cs_pin
        lo, hi = chips.TC_RANGE_C[tc_type]
        self._lo = lo << 10
        self._hi = hi << 10
        cr0 = _CR0_AUTO | _CR0_OC | _CR0_FAULTCLR | (_CR0_50HZ if filter_hz == 50 else 0)
        cr1 = (chips.MAX31856_AVERAGING.index(averaging) << 4) | chips.MAX31856_TYPE_CODE[tc_type]
        # Burst write from CR0: CR0, CR1, MASK, CJHF, CJLF, LTHFTH, LTHFTL, LTLFTH,
        # LTLFTL (the first token), CJTO.
        self._config = bytearray(
            (_WRITE, cr0, cr1, 0x00, chips.CJ_MAX_C & 0xFF, chips.CJ_MIN_C & 0xFF, 0x7F, 0xFF, 0x80, 1, 0x00)
        )
        self._stop = bytearray((_WRITE, 0x00))  # filter may change only with conversions off
        self._back_cmd = bytearray((0x00,))
        self._back = bytearray(10)
        self._read_cmd = bytearray((_LTLFTL,))
        self._buf = bytearray(8)
        self._token_buf = bytearray((_WRITE | _LTLFTL, 1))
        self._token = 1  # the token the next burst must echo
        self._token_alt = 1  # also accepted after a token write that may not have landed
        self.tc = None  # Q10 C, linearized by the chip
        self.cj = None  # Q10 C
        self.fault = 0
        self.frames = 0
        # Always 0: a stuck MAX31856 is caught by its token on the first stale read, so
        # the guard's count of identical frames (for read-only chips) has nothing to add.
        self.repeats = 0  # consecutive reads with identical cold-junction and thermocouple data
        self._pa = -1
        self._pb = -1
        cs_pin.value(1)

    def configure(self):
        """Write and verify the configuration; returns a fault code (0: configured)."""
        bus, cs, back = self._bus, self._cs, self._back
        self._token = self._token_alt = self._config[9]
        try:
            bus.write(cs, _MODE, self._stop)
            bus.write(cs, _MODE, self._config)
            bus.read(cs, _MODE, self._back_cmd, back)
        except Exception:  # noqa: BLE001 - any bus error means the chip did not answer
            return self._fail(F_ABSENT)
        if back == b"\x00" * 10:
            return self._fail(F_ZEROS)
        if back == b"\xff" * 10:
            return self._fail(F_ONES)
        want = self._config
        # Reserved and self-clearing bits are left out: CR0 FAULTCLR, CR1 D7, MASK D7-6.
        for i in range(10):
            m = 0xFF
            if i == 0:
                m = 0xFF ^ _CR0_FAULTCLR
            elif i == 1:
                m = 0x7F
            elif i == 2:
                m = 0x3F
            if (back[i] ^ want[i + 1]) & m:
                return self._fail(F_IMPLAUSIBLE)
        self.fault = 0
        return 0

    def read(self):
        """Read one conversion; returns its fault code (0: healthy, tc and cj set)."""
        self.frames += 1
        try:
            self._bus.read(self._cs, _MODE, self._read_cmd, self._buf)
        except Exception:  # noqa: BLE001 - any bus error means the chip did not answer
            return self._fail(F_ABSENT)
        code = self._decode()
        self._next_token()
        return code

    def _next_token(self):
        # Next token, 1..254: never a rail value, so a stuck MISO cannot echo it.
        t = self._token + 1
        if t > 254:
            t = 1
        self._token_buf[1] = t
        self._token_alt = self._token  # until the write is known to have happened
        self._token = t
        try:
            self._bus.write(self._cs, _MODE, self._token_buf)
        except Exception:  # noqa: BLE001 - the reading stands; the next read reports the bus
            return
        self._token_alt = t

    def _fail(self, code):
        self.tc = None
        self.cj = None
        self.fault = code
        return code

    def _decode(self):
        # Few locals on purpose: a frame of more than 11 words would go on the heap.
        b = self._buf  # LTLFTL (token), CJTO, CJTH, CJTL, LTCBH, LTCBM, LTCBL, SR
        if b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7] == 0:
            return self._fail(F_ZEROS)
        if b[0] & b[1] & b[2] & b[3] & b[4] & b[5] & b[6] & b[7] == 0xFF:
            return self._fail(F_ONES)
        if b[0] != self._token and b[0] != self._token_alt:
            return self._fail(F_STUCK)
        if b[1] != 0:  # CJTO was written 0: anything else is a chip that lost its setup
            return self._fail(F_IMPLAUSIBLE)
        if b[2] | b[3] | b[4] | b[5] | b[6] | b[7] == 0:
            # Data registers at their power-on zero: no conversion since power-up.
            return self._fail(F_ZEROS)
        # The token proves the link, not the converter: count frames whose data do not
        # change, for the guard's frozen-signal check (a chip that stopped converting).
        t = (b[2] << 16) | (b[3] << 8) | b[4]
        if t == self._pa and ((b[5] << 8) | b[6]) == self._pb:
            self.repeats += 1
        else:
            self.repeats = 0
            self._pa = t
            self._pb = (b[5] << 8) | b[6]
        t = (b[4] << 11) | (b[5] << 3) | (b[6] >> 5)  # thermocouple, 19 bits, 1/128 C
        if t & 0x40000:
            t -= 0x80000
        if b[7] & _SR_OPEN:
            return self._fail(F_OPEN)
        if b[7] & _SR_OVUV:
            return self._fail(F_SHORT_GND if t < 0 else F_SHORT_VCC)
        if b[7]:
            return self._fail(F_RANGE)
        t <<= 3  # Q10
        if t < self._lo or t > self._hi:
            return self._fail(F_RANGE)
        self.tc = t
        t = (b[2] << 6) | (b[3] >> 2)  # cold junction, 14 bits, 1/64 C
        if t & 0x2000:
            t -= 0x4000
        t <<= 4  # Q10
        if t < _CJ_LO or t > _CJ_HI:
            return self._fail(F_RANGE)
        self.cj = t
        self.fault = 0
        return 0
