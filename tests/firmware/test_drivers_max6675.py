"""MAX6675 driver against frames in the datasheet's format and against the chip model."""

import machine
import micropython
from chipmodels import ManualClock
from chipmodels.max6675 import MAX6675, temperature_code
from fwtest import raises, req
from tgfw.bus import Bus
from tgfw.codes import F_ABSENT, F_IMPLAUSIBLE, F_ONES, F_OPEN, F_ZEROS
from tgfw.drivers import max6675

CS = 9
CONV_MS = 220


def rig(tc_c=25.0, cj_c=25.0):
    """A fresh emulated board with one MAX6675 on chip select 9; first conversion done."""
    machine.clear_registry()
    clock = ManualClock(1000)
    chip = MAX6675("K", clock=clock, tc_c=tc_c, cj_c=cj_c)
    machine.attach_chip(CS, chip)
    drv = max6675.Driver(Bus(machine.SPI(0)), machine.Pin(CS, machine.Pin.OUT, value=1))
    clock.advance(CONV_MS)
    return clock, chip, drv


def fresh(clock, drv):
    """Read after a full conversion time with CS high."""
    clock.advance(CONV_MS)
    return drv.read()


class FrameBus:
    def __init__(self, word):
        self.word = word

    def read(self, cs, mode, cmd, buf):
        buf[0] = self.word >> 8
        buf[1] = self.word & 0xFF


class NoPin:
    def value(self, v=None):
        return 1


def decode(word):
    drv = max6675.Driver(FrameBus(word), NoPin())
    return drv.read(), drv


@req("SR-DRV-01")
def test_frames_in_the_datasheet_format_decode():
    # D15 0, D14-3 temperature (0.25 C, MSB 512 C), D2 open, D1 id 0, D0 three-state.
    for code12, celsius in ((0, 0.0), (1, 0.25), (100, 25.0), (403, 100.75), (4000, 1000.0), (4095, 1023.75)):
        for d0 in (0, 1):
            word = (code12 << 3) | d0
            if word == 0:
                continue  # indistinguishable from MISO stuck low: see the zeros test
            code, drv = decode(word)
            assert code == 0, (code12, d0, code)
            assert drv.tc == int(celsius * 1024)
            assert drv.cj is None  # the chip has no cold-junction output


@req("SR-DRV-03")
def test_rail_frames_and_reserved_bits():
    assert decode(0x0000)[0] == F_ZEROS
    assert decode(0xFFFF)[0] == F_ONES
    good = (100 << 3) | 1
    assert decode(good)[0] == 0
    assert decode(good | 0x8000)[0] == F_IMPLAUSIBLE  # D15 reads 0
    assert decode(good | 0x0002)[0] == F_IMPLAUSIBLE  # D1, the device id, reads 0
    assert decode(good | 0x0004)[0] == F_OPEN
    for word in (0x0000, 0xFFFF, good | 0x8000, good | 0x0002, good | 0x0004):
        assert decode(word)[1].tc is None


@req("SR-DRV-06")
def test_healthy_readings_are_the_chips_straight_line():
    clock, chip, drv = rig()
    for t in (1.0, 20.0, 37.0, 45.0, 95.0, 250.0, 800.0):
        chip.set_temperature(t, 25.0)
        assert fresh(clock, drv) == 0, (t, drv.fault)
        assert drv.tc == temperature_code(t, 25.0) << 8
        assert abs(drv.tc / 1024 - t) < 1.0 + 0.01 * t  # uncorrected: no cold junction to use


@req("SR-DRV-01", "SR-DRV-02")
def test_fault_words():
    # The MAX6675 sees an open input, and a short to supply looks the same to it; a short
    # to ground (T- is grounded) reads the chip's own temperature and is invisible here.
    for word, want in (("open", F_OPEN), ("short_vcc", F_OPEN), ("zeros", F_ZEROS), ("ones", F_ONES),
                       ("absent", F_ABSENT)):
        clock, chip, drv = rig(tc_c=45.0)
        assert fresh(clock, drv) == 0
        chip.set_fault(word)
        assert fresh(clock, drv) == want, (word, drv.fault)
        assert drv.tc is None and drv.fault == want
    clock, chip, drv = rig(tc_c=45.0, cj_c=30.0)
    chip.set_fault("short_gnd")
    assert fresh(clock, drv) == 0
    assert drv.tc == temperature_code(30.0, 30.0) << 8


@req("SR-DRV-05")
def test_reading_faster_than_the_conversion_never_updates():
    clock, chip, drv = rig(tc_c=40.0)
    assert fresh(clock, drv) == 0
    old = drv.tc
    chip.set_temperature(60.0)
    for _ in range(10):  # every 100 ms: CS low stops each conversion before it ends
        clock.advance(100)
        assert drv.read() == 0 and drv.tc == old
    assert drv.repeats == 10  # which the frozen-signal check sees
    clock.advance(CONV_MS)
    assert drv.read() == 0 and drv.tc == temperature_code(60.0, 25.0) << 8


@req("SR-DRV-05")
def test_one_transaction_per_read():
    clock, chip, drv = rig()
    before = chip.selects
    drv.read()
    drv.read()
    assert chip.selects == before + 2


@req("SR-DRV-08")
def test_repeats_count_identical_frames():
    clock, chip, drv = rig(tc_c=45.0)
    assert fresh(clock, drv) == 0 and drv.repeats == 0
    chip.set_fault("stuck")
    for n in range(1, 4):
        chip.set_temperature(45.0 + 5 * n)
        assert fresh(clock, drv) == 0 and drv.repeats == n
    chip.set_fault(None)
    assert fresh(clock, drv) == 0 and drv.repeats == 0


@req("SR-DRV-01")
def test_only_type_k():
    raises(ValueError, max6675.Driver, FrameBus(0), NoPin(), "J")


@req("SR-TIM-02")
def test_read_does_not_allocate():
    clock, chip, drv = rig(tc_c=45.0)
    fresh(clock, drv)
    micropython.heap_lock()
    try:
        for _ in range(100):
            clock.ms += CONV_MS
            drv.read()
    finally:
        micropython.heap_unlock()
    assert drv.fault == 0
    clock.ms += CONV_MS
    total = micropython.mem_total()
    drv.read()
    assert micropython.mem_total() == total
