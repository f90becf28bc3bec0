"""Every intermediate of the drivers' decode and NIST code stays a small int on a 32-bit port.

A 32-bit MicroPython port holds integers in -2**30 .. 2**30 - 1 without allocating; beyond
that it makes a bigint (an allocation, in the read path). The Unix port is 64-bit and would
hide it, so the same firmware source runs here on CPython with its inputs (frame bytes,
table entries, constants taken from the instance) wrapped in an int that checks the result
of every arithmetic operation and passes the check on to what it computes.
"""

import itertools
import random

import pytest
from tgfw.drivers import max6675, max31855, max31856, nist

LO, HI = -(2**30), 2**30 - 1


class Small(int):
    """An int whose every arithmetic result is checked against the small-int range."""

    seen = [0]  # largest magnitude met, for the report

    def __new__(cls, value):
        value = int(value)
        if not LO <= value <= HI:
            raise OverflowError(f"{value} leaves the 32-bit small-int range")
        if abs(value) > cls.seen[0]:
            cls.seen[0] = abs(value)
        return super().__new__(cls, value)


def _checked(name):
    op = getattr(int, name)

    def method(self, *args):
        result = op(int(self), *(int(a) for a in args))
        if result is NotImplemented:
            return result
        return Small(result)

    method.__name__ = name
    return method


for _name in (
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__floordiv__", "__rfloordiv__",
    "__mod__", "__rmod__", "__lshift__", "__rlshift__", "__rshift__", "__rrshift__", "__and__", "__rand__",
    "__or__", "__ror__", "__xor__", "__rxor__", "__neg__", "__pos__", "__abs__", "__invert__",
):
    setattr(Small, _name, _checked(_name))


class Table:
    """A table whose entries come out as checked ints."""

    def __init__(self, data):
        self.data = list(data)

    def __getitem__(self, i):
        return Small(self.data[int(i)])

    def __len__(self):
        return len(self.data)


def checked_linearizer(tc_type):
    lin = nist.Linearizer(*nist._TABLES[tc_type])
    for name in ("f", "d2", "d3"):
        setattr(lin, name, Table(getattr(lin, name)))
    for name in ("lo", "hi", "e_lo", "e_hi", "t0", "k_hi", "s_hi", "s_lo"):
        setattr(lin, name, Small(getattr(lin, name)))
    return lin


class FrameBus:
    """Hands the driver's buffer checked bytes: the frame under test."""

    def __init__(self):
        self.frame = ()
        self.token = Small(1)

    def read(self, cs, mode, cmd, buf):
        for i, b in enumerate(self.frame):
            buf[i] = Small(b)

    def write(self, cs, mode, buf):
        pass


class NoPin:
    def value(self, v=None):
        return 1


def checked_driver(module, tc_type):
    bus = FrameBus()
    drv = module.Driver(bus, NoPin(), tc_type)
    drv._buf = [Small(0)] * len(drv._buf)  # a list: bytearray would strip the wrapper
    if module is max31855:
        drv._lin = checked_linearizer(tc_type)
        drv._hi = drv._lo = Small(-1)
    elif module is max6675:
        drv._prev = Small(-1)
    else:
        drv._lo, drv._hi = Small(drv._lo), Small(drv._hi)
        drv._token = drv._token_alt = Small(drv._token)
    return bus, drv


def read(bus, drv, frame):
    bus.frame = frame
    return drv.read()


def max31855_frame(tc, cj, low=0, d16=0, d17=0):
    word = ((tc & 0x3FFF) << 18) | (d17 << 17) | (d16 << 16) | ((cj & 0xFFF) << 4) | low
    return tuple((word >> s) & 0xFF for s in (24, 16, 8, 0))


@pytest.mark.req("SR-DRV-07")
@pytest.mark.parametrize("tc_type", ("K", "J", "T"))
def test_max31855_every_thermocouple_code_at_the_cold_junction_extremes(tc_type):
    bus, drv = checked_driver(max31855, tc_type)
    healthy = 0
    for cj in (-2048, -321, -320, 0, 400, 1360, 1361, 2047):  # 1/16 C: chip and accepted extremes
        for tc in range(-8192, 8192, 1 if cj in (-320, 1360) else 37):
            if read(bus, drv, max31855_frame(tc, cj)) == 0:
                healthy += 1
    assert healthy > 1000  # the sweep did reach the NIST code, not only early exits


@pytest.mark.req("SR-DRV-07")
def test_max31855_fault_and_odd_frames():
    bus, drv = checked_driver(max31855, "K")
    frames = [(0, 0, 0, 0), (0xFF, 0xFF, 0xFF, 0xFF)]
    for tc, cj in itertools.product((-8192, 8191, 0, 180), (-2048, 2047, 400)):
        for low, d16, d17 in itertools.product((0, 1, 2, 4, 7, 8, 15), (0, 1), (0, 1)):
            frames.append(max31855_frame(tc, cj, low, d16, d17))
    rng = random.Random(31855)
    frames += [tuple(rng.randrange(256) for _ in range(4)) for _ in range(5000)]
    for frame in frames:
        read(bus, drv, frame)


@pytest.mark.req("SR-DRV-07")
@pytest.mark.parametrize("tc_type", ("K", "J", "T"))
def test_nist_over_the_whole_emf_and_cold_junction_span(tc_type):
    lin = checked_linearizer(tc_type)
    for t in range(-20 * 1024, 85 * 1024 + 1, 97):
        lin.emf_nv(Small(t))
    e_lo, e_hi = int(lin.e_lo), int(lin.e_hi)
    for e in list(range(e_lo, e_hi, 997)) + [e_lo, e_lo + 1, e_hi - 1, e_hi, e_lo - 1, e_hi + 1]:
        lin.temperature(Small(e))


@pytest.mark.req("SR-DRV-07")
def test_max6675_every_frame():
    bus, drv = checked_driver(max6675, "K")
    for word in range(0x10000):
        read(bus, drv, (word >> 8, word & 0xFF))


def max31856_frame(token, tc19, cj14, sr, cjto=0):
    tc = (tc19 << 5) & 0xFFFFFF
    cj = (cj14 << 2) & 0xFFFF
    return (token, cjto, cj >> 8, cj & 0xFF, tc >> 16, (tc >> 8) & 0xFF, tc & 0xFF, sr)


@pytest.mark.req("SR-DRV-07")
@pytest.mark.parametrize("tc_type", ("K", "B", "T"))
def test_max31856_extreme_and_fault_frames(tc_type):
    bus, drv = checked_driver(max31856, tc_type)
    token = int(drv._token)
    tcs = (-0x40000, -0x3FFFF, -270 * 128, -1, 0, 1, 45 * 128, 1372 * 128, 0x3FFFF)
    cjs = (-0x2000, -20 * 64 - 1, -20 * 64, 0, 85 * 64, 85 * 64 + 1, 0x1FFF)
    srs = (0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF)
    for tc, cj, sr in itertools.product(tcs, cjs, srs):
        for tok in (token, token ^ 0x55):
            read(bus, drv, max31856_frame(tok, tc, cj, sr))
            drv._token = drv._token_alt = Small(token)  # hold the token still for the sweep
    for byte in (0x00, 0x7F, 0x80, 0xFF):
        read(bus, drv, (byte,) * 8)
        drv._token = drv._token_alt = Small(token)
    rng = random.Random(31856)
    for _ in range(5000):
        frame = [rng.randrange(256) for _ in range(8)]
        frame[0] = token
        read(bus, drv, tuple(frame))
        drv._token = drv._token_alt = Small(token)


def test_the_check_itself_trips():
    with pytest.raises(OverflowError):
        Small(2**29) * 2
    with pytest.raises(OverflowError):
        _ = 4 << Small(29)
    assert Small(2**29) + (2**29 - 1) == HI


@pytest.mark.req("SR-DRV-07")
@pytest.mark.parametrize("tc_type", ("K", "J", "T"))
def test_largest_product_is_bounded_by_the_table(tc_type):
    # The largest intermediate is a segment's rise (d1) times an offset of at most one
    # segment (4096, clamped): bounded by the table itself, whatever the input.
    f = nist.get(tc_type).f
    rise = max(f[k + 1] - f[k] for k in range(len(f) - 1))
    assert rise * 4096 <= HI, (rise, rise * 4096 / 2**30)
