"""MAX31855 driver against datasheet frames and against the chip model on the emulated bus."""

import machine
import micropython
from chipmodels import ManualClock, nist_emf_mv
from chipmodels.max31855 import MAX31855, SENSITIVITY_UV
from fwtest import req
from tgfw.bus import Bus
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
from tgfw.drivers import max31855

CS = 13
CONV_MS = 100


def rig(tc_type="K", tc_c=25.0, cj_c=25.0):
    """A fresh emulated board with one MAX31855 on chip select 13; first conversion done."""
    machine.clear_registry()
    clock = ManualClock(1000)
    chip = MAX31855(tc_type, clock=clock, tc_c=tc_c, cj_c=cj_c)
    machine.attach_chip(CS, chip)
    bus = Bus(machine.SPI(0))
    drv = max31855.Driver(bus, machine.Pin(CS, machine.Pin.OUT, value=1), tc_type)
    clock.advance(CONV_MS)
    return clock, chip, drv


def fresh(clock, drv):
    """Read after a full conversion time."""
    clock.advance(CONV_MS)
    return drv.read()


class FrameBus:
    """Stands in for the bus: every read returns the frame it holds."""

    def __init__(self, word=0):
        self.word = word
        self.reads = 0

    def read(self, cs, mode, cmd, buf):
        self.reads += 1
        w = self.word
        buf[0] = (w >> 24) & 0xFF
        buf[1] = (w >> 16) & 0xFF
        buf[2] = (w >> 8) & 0xFF
        buf[3] = w & 0xFF


class NoPin:
    def value(self, v=None):
        return 1


def frame(tc_bits, cj_bits, low=0, d17=0):
    """A 32-bit frame from the datasheet's bit strings (table 4: D31-18, table 5: D15-4)."""
    tc = int(tc_bits.replace(" ", ""), 2)
    cj = int(cj_bits.replace(" ", ""), 2)
    return (tc << 18) | (d17 << 17) | (cj << 4) | low


def decode(word, tc_type="K"):
    drv = max31855.Driver(FrameBus(word), NoPin(), tc_type)
    return drv.read(), drv


CJ_25 = "0001 1001 0000"


@req("SR-DRV-01", "SR-DRV-06")
def test_datasheet_thermocouple_examples_decode():
    # MAX31855 datasheet table 4, each with the cold junction at +25 C (table 5).
    examples = (
        ("0011 1110 1000 00", 1000.0),
        ("0000 0110 0100 11", 100.75),
        ("0000 0001 1001 00", 25.0),
        ("0000 0000 0000 00", 0.0),
        ("1111 1111 1111 11", -0.25),
        ("1111 1111 1111 00", -1.0),
    )
    for bits, celsius in examples:
        code, drv = decode(frame(bits, CJ_25))
        assert code == 0, (bits, code)
        assert drv.chip_tc == int(celsius * 1024), (bits, drv.chip_tc)
        assert drv.cj == 25 * 1024
    # +1600 C and -250 C in the chip's straight line are outside type K's NIST range.
    for bits in ("0110 0100 0000 00", "1111 0000 0110 00"):
        code, drv = decode(frame(bits, CJ_25))
        assert code == F_RANGE and drv.tc is None and drv.chip_tc is None


@req("SR-DRV-04")
def test_datasheet_cold_junction_examples_decode_or_fault():
    # MAX31855 datasheet table 5, thermocouple at +25 C. Inside -20..85 C: a reading.
    inside = (("0001 1001 0000", 25.0), ("0000 0000 0000", 0.0), ("1111 1111 1111", -0.0625),
              ("1111 1111 0000", -1.0), ("1110 1100 0000", -20.0))
    for bits, celsius in inside:
        code, drv = decode(frame("0000 0001 1001 00", bits))
        assert code == 0, (bits, code)
        assert drv.cj == int(celsius * 1024), (bits, drv.cj)
    # +127, +100.5625 and -55 C are outside the accepted cold-junction range.
    for bits in ("0111 1111 0000", "0110 0100 1001", "1100 1001 0000"):
        code, drv = decode(frame("0000 0001 1001 00", bits))
        assert code == F_RANGE, (bits, code)
        assert drv.tc is None and drv.cj is None


@req("SR-DRV-06")
def test_nist_correction_matches_its90_reference_values():
    # (type, tc code 1/4 C, cj code 1/16 C, NIST ITS-90 temperature from thermocouple-its90)
    cases = (
        ("K", 180, 400, 45.2099),
        ("K", 403, 400, 100.74147),
        ("K", 4000, 400, 999.19806),
        ("K", -400, 0, -119.62033),
        ("K", 180, 1360, 45.14973),
        ("K", 180, -320, 47.14473),
        ("J", 180, 400, 47.17823),
        ("J", 2000, -160, 529.55713),
        ("T", 180, 400, 49.99663),
        ("T", 1400, 1120, 345.01538),
    )
    for tc_type, tc, cj, want in cases:
        word = ((tc & 0x3FFF) << 18) | ((cj & 0xFFF) << 4)
        code, drv = decode(word, tc_type)
        assert code == 0, (tc_type, tc, cj, code)
        assert abs(drv.tc / 1024 - want) <= 0.01, (tc_type, tc, cj, drv.tc / 1024, want)


def seebeck_uv(tc_type, t):
    return (nist_emf_mv(tc_type, t + 0.05) - nist_emf_mv(tc_type, t - 0.05)) * 10000.0


@req("SR-DRV-06")
def test_healthy_readings_across_the_range_through_the_chip_model():
    points = {
        "K": (-200.0, -50.0, 0.0, 10.0, 37.0, 45.0, 50.0, 95.0, 250.0, 700.0, 1000.0, 1350.0),
        "J": (-200.0, 0.0, 45.0, 500.0, 1150.0),
        "T": (-200.0, 0.0, 45.0, 120.0, 390.0),
    }
    for tc_type, temps in points.items():
        for cj_c in (-10.0, 25.0, 70.0):
            clock, chip, drv = rig(tc_type, cj_c=cj_c)
            for t in temps:
                chip.set_temperature(t, cj_c)
                assert fresh(clock, drv) == 0, (tc_type, t, cj_c, drv.fault)
                # The chip's 0.25 C step in its straight line, seen through the NIST slope.
                bound = 0.125 * SENSITIVITY_UV[tc_type] / seebeck_uv(tc_type, t) + 0.02
                got = drv.tc / 1024
                assert abs(got - t) <= bound, (tc_type, t, cj_c, got, bound)
                assert abs(drv.cj / 1024 - cj_c) <= 1 / 32


@req("SR-DRV-01", "SR-DRV-02")
def test_every_chip_fault_is_named_and_carries_no_temperature():
    for word, want in (("open", F_OPEN), ("short_gnd", F_SHORT_GND), ("short_vcc", F_SHORT_VCC)):
        clock, chip, drv = rig(tc_c=45.0)
        assert fresh(clock, drv) == 0 and drv.tc is not None
        chip.set_fault(word)
        assert fresh(clock, drv) == want, (word, drv.fault)
        assert drv.tc is None and drv.cj is None and drv.fault == want
        chip.set_fault(None)
        assert fresh(clock, drv) == 0 and drv.tc is not None


@req("SR-DRV-02", "SR-DRV-03")
def test_bus_faults_zeros_ones_absent():
    for word, want in (("zeros", F_ZEROS), ("ones", F_ONES), ("absent", F_ABSENT)):
        clock, chip, drv = rig(tc_c=45.0)
        assert fresh(clock, drv) == 0
        chip.set_fault(word)
        assert fresh(clock, drv) == want, (word, drv.fault)  # no exception escapes read()
        assert drv.tc is None and drv.cj is None


@req("SR-DRV-03")
def test_rail_frames_reserved_bits_and_inconsistent_fault_bits():
    good = frame("0000 0001 1001 00", CJ_25)
    assert decode(good)[0] == 0
    assert decode(0x00000000)[0] == F_ZEROS
    assert decode(0xFFFFFFFF)[0] == F_ONES
    assert decode(good | (1 << 17))[0] == F_IMPLAUSIBLE  # D17 reserved
    assert decode(good | (1 << 3))[0] == F_IMPLAUSIBLE  # D3 reserved
    assert decode(good | (1 << 16))[0] == F_IMPLAUSIBLE  # fault bit without a cause
    for cause in (1, 2, 4):
        assert decode(good | cause)[0] == F_IMPLAUSIBLE  # a cause without the fault bit
    assert decode(good | (1 << 16) | 1)[0] == F_OPEN
    assert decode(good | (1 << 16) | 2)[0] == F_SHORT_GND
    assert decode(good | (1 << 16) | 4)[0] == F_SHORT_VCC
    for word in (0x00000000, 0xFFFFFFFF, good | (1 << 17), good | (1 << 16)):
        assert decode(word)[1].tc is None


@req("SR-DRV-04")
def test_cold_junction_out_of_range_is_a_fault():
    cases = ((-20.0, 0), (85.0, 0), (-20.5, F_RANGE), (85.5, F_RANGE), (-40.0, F_RANGE), (100.0, F_RANGE))
    for cj_c, want in cases:
        clock, chip, drv = rig(tc_c=45.0, cj_c=cj_c)
        assert fresh(clock, drv) == want, (cj_c, drv.fault)
        assert (drv.tc is None) == (want != 0)


@req("SR-DRV-06")
def test_result_outside_the_type_range_is_a_fault():
    clock, chip, drv = rig("T", tc_c=45.0)
    assert fresh(clock, drv) == 0
    # A type T chip's straight line reads past 400 C for a wire far beyond its range.
    word = ((2000 << 2) << 18) | (400 << 4)  # 2000 C linear, cold junction 25 C
    code, d = decode(word, "T")
    assert code == F_RANGE and d.tc is None


@req("SR-DRV-05")
def test_one_transaction_per_read_and_no_waiting():
    clock, chip, drv = rig(tc_c=45.0)
    before = chip.selects
    for n in range(1, 6):
        drv.read()  # the clock stands still: the driver never waits for a conversion
        assert chip.selects == before + n
    assert drv.fault == 0 and drv.frames == 5
    assert drv._bus.inits == 1  # one SPI mode on this bus: initialised once


@req("SR-DRV-05")
def test_reading_faster_than_the_conversion_returns_the_previous_one():
    clock, chip, drv = rig(tc_c=40.0)
    assert fresh(clock, drv) == 0
    old = drv.tc
    chip.set_temperature(60.0)
    clock.advance(CONV_MS // 2)
    assert drv.read() == 0 and drv.tc == old
    clock.advance(CONV_MS // 2)
    assert drv.read() == 0 and drv.tc > old + 19 * 1024


@req("SR-DRV-05")
def test_power_up_before_the_first_conversion_is_no_reading():
    machine.clear_registry()
    clock = ManualClock(0)
    chip = MAX31855("K", clock=clock, tc_c=45.0)
    machine.attach_chip(CS, chip)
    drv = max31855.Driver(Bus(machine.SPI(0)), machine.Pin(CS, machine.Pin.OUT, value=1))
    assert drv.read() == F_ZEROS and drv.tc is None


@req("SR-DRV-08")
def test_repeats_count_identical_frames_of_a_stuck_chip():
    clock, chip, drv = rig(tc_c=45.0)
    assert fresh(clock, drv) == 0 and drv.repeats == 0
    chip.set_temperature(46.0)
    assert fresh(clock, drv) == 0 and drv.repeats == 0
    chip.set_fault("stuck")
    for n in range(1, 5):
        chip.set_temperature(46.0 + n)
        assert fresh(clock, drv) == 0  # a frozen chip still looks healthy frame by frame
        assert drv.repeats == n
    chip.set_fault(None)
    assert fresh(clock, drv) == 0 and drv.repeats == 0
    chip.set_fault("absent")
    assert fresh(clock, drv) == F_ABSENT and drv.repeats == 0


@req("SR-TIM-02")
def test_read_does_not_allocate():
    clock, chip, drv = rig(tc_c=45.0)
    fresh(clock, drv)
    micropython.heap_lock()
    try:
        for _ in range(200):
            clock.ms += 50
            drv.read()
    finally:
        micropython.heap_unlock()
    assert drv.fault == 0
    # Not even a transient frame: MicroPython moves frames of more than 11 words to the heap.
    clock.ms += 100
    total = micropython.mem_total()
    drv.read()
    assert micropython.mem_total() == total


@req("SR-TIM-02")
def test_faulted_reads_do_not_allocate():
    for word in ("open", "zeros", "ones", "absent", "stuck"):
        clock, chip, drv = rig(tc_c=45.0)
        fresh(clock, drv)
        chip.set_fault(word)
        fresh(clock, drv)
        micropython.heap_lock()
        try:
            for _ in range(20):
                clock.ms += 100
                drv.read()
        finally:
            micropython.heap_unlock()
        assert drv.fault != 0 or word == "stuck"
