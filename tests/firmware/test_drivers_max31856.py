"""MAX31856 driver against register frames in the datasheet's format and the chip model."""

import machine
import micropython
from chipmodels import ManualClock
from chipmodels.max31855 import MAX31855
from chipmodels.max31856 import CJHF, CJLF, CJTO, CR0, CR1, LTHFTH, LTHFTL, LTLFTH, MASK, MAX31856, SR
from fwtest import raises, req
from tgfw import chips
from tgfw.bus import Bus
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
from tgfw.drivers import max31855, max31856

CS = 17


def rig(tc_type="K", tc_c=25.0, cj_c=25.0, averaging=1, filter_hz=60, chip_cls=MAX31856):
    """A fresh emulated board with one configured MAX31856 and its first conversion done."""
    machine.clear_registry()
    clock = ManualClock(1000)
    chip = chip_cls(tc_type, clock=clock, tc_c=tc_c, cj_c=cj_c)
    machine.attach_chip(CS, chip)
    bus = Bus(machine.SPI(0))
    drv = max31856.Driver(bus, machine.Pin(CS, machine.Pin.OUT, value=1), tc_type, averaging, filter_hz)
    assert drv.configure() == 0
    clock.advance(chips.conversion_ms(chips.MAX31856, averaging, filter_hz))
    return clock, chip, drv


def fresh(clock, drv):
    clock.advance(chips.conversion_ms(chips.MAX31856))
    return drv.read()


class RegisterBus:
    """Stands in for the bus with a fixed burst (LTLFTL..SR) that echoes the last token."""

    def __init__(self, data):
        self.data = data  # CJTO, CJTH, CJTL, LTCBH, LTCBM, LTCBL, SR
        self.token = 1

    def read(self, cs, mode, cmd, buf):
        buf[0] = self.token
        for i in range(7):
            buf[i + 1] = self.data[i]

    def write(self, cs, mode, buf):
        if buf[0] == 0x88:
            self.token = buf[1]


class NoPin:
    def value(self, v=None):
        return 1


def registers(tc_c, cj_c, sr=0, cjto=0):
    """CJTO..SR for a reading, in the datasheet's format: CJ 14 bits signed at 1/64 C in
    CJTH:CJTL D15-2, thermocouple 19 bits signed at 1/128 C in LTCBH:LTCBM:LTCBL D23-5."""
    cj = (int(cj_c * 64) << 2) & 0xFFFF
    tc = (int(tc_c * 128) << 5) & 0xFFFFFF
    return bytes((cjto, cj >> 8, cj & 0xFF, tc >> 16, (tc >> 8) & 0xFF, tc & 0xFF, sr))


def decode(data, tc_type="K"):
    drv = max31856.Driver(RegisterBus(data), NoPin(), tc_type)
    return drv.read(), drv


@req("SR-DRV-01")
def test_register_frames_decode():
    for tc_c in (1000.0, 100.5, 25.0, 0.0078125, -0.0078125, -1.0, -250.0):
        for cj_c in (25.0, 0.0, -0.015625, -20.0, 84.984375):
            code, drv = decode(registers(tc_c, cj_c))
            assert code == 0, (tc_c, cj_c, code)
            assert drv.tc == int(tc_c * 1024) and drv.cj == int(cj_c * 1024), (tc_c, cj_c, drv.tc, drv.cj)
    code, drv = decode(registers(1600.0, 25.0), "B")
    assert code == 0 and drv.tc == 1600 * 1024
    assert decode(registers(1600.0, 25.0), "K")[0] == F_RANGE  # beyond type K's 1372 C
    # Bytes as they stand: +100.5 C is 0x0C90 << 5 over three registers, +25 C CJ 0x1900.
    code, drv = decode(b"\x00\x19\x00\x06\x48\x00\x00")
    assert code == 0 and drv.tc == int(100.5 * 1024) and drv.cj == 25 * 1024


@req("SR-DRV-02")
def test_status_bits_name_the_fault():
    base = registers(45.0, 25.0)
    for sr, tc_c, want in (
        (0x01, 45.0, F_OPEN),
        (0x03, 45.0, F_OPEN),  # open wins over a short
        (0x02, -2048.0, F_SHORT_GND),  # over/under-voltage, input pulled to ground
        (0x02 | 0x40 | 0x08, 2047.9921875, F_SHORT_VCC),
        (0x80, 45.0, F_RANGE),
        (0x40, 45.0, F_RANGE),
        (0x20, 45.0, F_RANGE),
        (0x10, 45.0, F_RANGE),
        (0x08, 45.0, F_RANGE),
        (0x04, 45.0, F_RANGE),
    ):
        data = registers(tc_c, 25.0, sr)
        code, drv = decode(data)
        assert code == want, (sr, tc_c, code)
        assert drv.tc is None and drv.cj is None
    assert decode(base)[0] == 0


@req("SR-DRV-03")
def test_rail_frames_and_a_lost_setup():
    assert decode(b"\x00" * 7)[0] != 0
    drv = max31856.Driver(RegisterBus(b"\xff" * 7), NoPin())
    drv._bus.token = 0xFF
    assert drv.read() == F_ONES
    drv = max31856.Driver(RegisterBus(b"\x00" * 7), NoPin())
    drv._bus.token = 0x00
    assert drv.read() == F_ZEROS
    assert decode(registers(45.0, 25.0, cjto=0x10))[0] == F_IMPLAUSIBLE  # CJTO is written 0


@req("SR-DRV-04")
def test_cold_junction_out_of_range():
    assert decode(registers(45.0, 85.0))[0] == 0
    assert decode(registers(45.0, -20.0))[0] == 0
    for cj_c in (85.015625, 90.0, -20.015625, -40.0):
        code, drv = decode(registers(45.0, cj_c))  # status clear: the driver checks anyway
        assert code == F_RANGE and drv.tc is None, cj_c
    # The configured chip flags it too (CJHF/CJLF at the accepted range).
    clock, chip, drv = rig(cj_c=90.0)
    assert drv.read() == F_RANGE and chip.regs[SR] & 0x20


@req("SR-DRV-06")
def test_thermocouple_outside_its_type_range():
    assert decode(registers(400.0, 25.0), "T")[0] == 0
    assert decode(registers(450.0, 25.0), "T")[0] == F_RANGE
    assert decode(registers(-210.0078125, 25.0), "J")[0] == F_RANGE
    clock, chip, drv = rig("T", tc_c=450.0)
    assert drv.read() == F_RANGE and chip.regs[SR] & 0x40


@req("SR-DRV-09")
def test_configuration_follows_the_channel():
    configs = (("K", 1, 60), ("J", 4, 50), ("T", 16, 60), ("N", 2, 50), ("B", 8, 60))
    for tc_type, averaging, filter_hz in configs:
        clock, chip, drv = rig(tc_type, tc_c=300.0, averaging=averaging, filter_hz=filter_hz)
        r = chip.regs
        assert r[CR0] == 0x80 | 0x10 | (0x01 if filter_hz == 50 else 0x00), hex(r[CR0])  # FAULTCLR reads 0
        assert r[CR1] == (chips.MAX31856_AVERAGING.index(averaging) << 4) | chips.MAX31856_TYPE_CODE[tc_type]
        assert r[MASK] == 0x00  # every fault drives the FAULT pin
        assert r[CJHF] == 85 and r[CJLF] == 0xEC  # -20 C
        assert (r[LTHFTH], r[LTHFTL], r[LTLFTH]) == (0x7F, 0xFF, 0x80)
        assert r[CJTO] == 0
        assert chip.conversion_ms() == chips.conversion_ms(chips.MAX31856, averaging, filter_hz)
        assert drv.read() == 0 and drv.tc == 300 * 1024, (tc_type, drv.fault)
    for bad in (("X", 1, 60), ("K", 3, 60), ("K", 1, 55)):
        raises(ValueError, max31856.Driver, RegisterBus(b""), NoPin(), *bad)


@req("SR-DRV-09")
def test_filter_change_from_a_running_chip():
    # The chip ignores a filter change during automatic conversion: configure stops first.
    clock, chip, drv = rig("K", filter_hz=60)
    drv2 = max31856.Driver(drv._bus, drv._cs, "K", 1, 50)
    assert drv2.configure() == 0 and chip.regs[CR0] & 0x01


class DeafCR1(MAX31856):
    """A chip whose CR1 does not take writes (a damaged part, or a wrong chip)."""

    def _store(self, a, v):
        if a != CR1:
            MAX31856._store(self, a, v)


@req("SR-DRV-09")
def test_configure_reads_back_and_reports_a_mismatch():
    machine.clear_registry()
    clock = ManualClock(0)
    chip = DeafCR1("J", clock=clock)
    machine.attach_chip(CS, chip)
    drv = max31856.Driver(Bus(machine.SPI(0)), machine.Pin(CS, machine.Pin.OUT, value=1), "J")
    assert drv.configure() == F_IMPLAUSIBLE
    for word, want in (("zeros", F_ZEROS), ("ones", F_ONES), ("absent", F_ABSENT)):
        clock, chip, drv = rig()
        chip.set_fault(word)
        assert drv.configure() == want, word


@req("SR-DRV-09")
def test_fault_clear_and_mask():
    clock, chip, drv = rig(tc_c=45.0)
    # Left latched by an earlier owner: interrupt mode, an open that has since cleared.
    chip.regs[CR0] |= 0x04
    chip.set_fault("open")
    assert fresh(clock, drv) == F_OPEN
    chip.set_fault(None)
    assert fresh(clock, drv) == F_OPEN and chip.regs[SR] & 0x01  # latched
    assert drv.configure() == 0
    assert chip.regs[SR] == 0 and not chip.regs[CR0] & 0x04  # cleared, comparator mode
    assert fresh(clock, drv) == 0
    # With MASK 0 the chip's FAULT output follows any fault, independently of the firmware.
    assert not chip.fault_output()
    chip.set_fault("open")
    fresh(clock, drv)
    assert chip.fault_output()


@req("SR-DRV-01", "SR-DRV-02")
def test_fault_words():
    for word, want in (("open", F_OPEN), ("short_gnd", F_SHORT_GND), ("short_vcc", F_SHORT_VCC),
                       ("zeros", F_ZEROS), ("ones", F_ONES), ("stuck", F_STUCK), ("absent", F_ABSENT)):
        clock, chip, drv = rig(tc_c=45.0)
        assert fresh(clock, drv) == 0 and drv.tc is not None
        chip.set_fault(word)
        assert fresh(clock, drv) == want, (word, drv.fault)
        assert drv.tc is None and drv.cj is None and drv.fault == want
        chip.set_fault(None)
        fresh(clock, drv)
        assert fresh(clock, drv) == 0, (word, drv.fault)


@req("SR-DRV-01")
def test_open_without_detection_still_no_reading():
    # Were open detection off, the input would float high: out of range, never a reading.
    clock, chip, drv = rig(tc_c=45.0)
    chip.regs[CR0] &= ~0x30
    chip.set_fault("open")
    assert fresh(clock, drv) == F_RANGE and drv.tc is None


@req("SR-DRV-06")
def test_healthy_readings_across_types():
    for tc_type, temps in (("K", (-200.0, 0.0, 37.0, 45.0, 95.0, 1300.0)), ("J", (-200.0, 45.0, 1100.0)),
                           ("T", (-250.0, 45.0, 390.0)), ("E", (45.0, 900.0))):
        clock, chip, drv = rig(tc_type)
        for t in temps:
            chip.set_temperature(t, 22.5)
            assert fresh(clock, drv) == 0, (tc_type, t, drv.fault)
            assert drv.tc == int(t * 1024) and drv.cj == int(22.5 * 1024)


@req("SR-DRV-08")
def test_stuck_chip_is_caught_on_the_first_stale_read():
    clock, chip, drv = rig(tc_c=45.0)
    for i in range(300):  # the token rotates through all its values
        assert fresh(clock, drv) == 0, (i, drv.fault)
    chip.set_fault("stuck")
    assert fresh(clock, drv) == F_STUCK
    assert fresh(clock, drv) == F_STUCK
    # Reading faster than the chip converts repeats data legitimately: not stuck.
    chip.set_fault(None)
    fresh(clock, drv)
    for _ in range(5):
        assert drv.read() == 0


@req("SR-DRV-08")
def test_chip_that_lost_power_is_no_reading():
    clock, chip, drv = rig(tc_c=45.0)
    assert fresh(clock, drv) == 0
    chip.power_on()
    assert fresh(clock, drv) != 0 and drv.tc is None
    assert drv.configure() == 0
    assert fresh(clock, drv) == 0


class FlakyWrites:
    """A bus whose next write fails (the chip vanished between read and token write)."""

    def __init__(self, bus):
        self.bus = bus
        self.fail_next_write = False

    def read(self, cs, mode, cmd, buf):
        self.bus.read(cs, mode, cmd, buf)

    def write(self, cs, mode, buf):
        if self.fail_next_write:
            self.fail_next_write = False
            raise OSError(5)
        self.bus.write(cs, mode, buf)


@req("SR-DRV-08")
def test_a_lost_token_write_is_not_taken_for_a_stuck_chip():
    clock, chip, drv = rig(tc_c=45.0)
    drv._bus = FlakyWrites(drv._bus)
    assert fresh(clock, drv) == 0
    drv._bus.fail_next_write = True
    assert fresh(clock, drv) == 0  # the reading itself was whole
    assert fresh(clock, drv) == 0  # the chip echoes the previous token: accepted once
    assert fresh(clock, drv) == 0


@req("SR-DRV-05")
def test_one_burst_per_reading_and_no_waiting():
    clock, chip, drv = rig(tc_c=45.0)
    before = chip.selects
    for n in range(1, 4):
        assert drv.read() == 0  # the clock stands still: no waiting for a conversion
        assert chip.selects == before + 2 * n  # the burst read, then the token write


@req("SR-DRV-05")
def test_reading_faster_than_the_conversion_returns_the_previous_one():
    clock, chip, drv = rig(tc_c=40.0)
    assert fresh(clock, drv) == 0
    chip.set_temperature(60.0)
    clock.advance(50)
    assert drv.read() == 0 and drv.tc == 40 * 1024
    clock.advance(50)
    assert drv.read() == 0 and drv.tc == 60 * 1024


@req("SR-DRV-05")
def test_before_the_first_conversion_is_no_reading():
    machine.clear_registry()
    clock = ManualClock(0)
    chip = MAX31856("K", clock=clock, tc_c=45.0)
    machine.attach_chip(CS, chip)
    drv = max31856.Driver(Bus(machine.SPI(0)), machine.Pin(CS, machine.Pin.OUT, value=1))
    assert drv.configure() == 0
    assert drv.read() == F_ZEROS and drv.tc is None


@req("SR-DRV-05")
def test_chips_of_two_spi_modes_share_a_bus():
    machine.clear_registry()
    clock = ManualClock(0)
    a = MAX31856("K", clock=clock, tc_c=45.0)
    b = MAX31855("K", clock=clock, tc_c=45.0)
    machine.attach_chip(17, a)
    machine.attach_chip(13, b)
    bus = Bus(machine.SPI(0))
    d56 = max31856.Driver(bus, machine.Pin(17, machine.Pin.OUT, value=1))
    d55 = max31855.Driver(bus, machine.Pin(13, machine.Pin.OUT, value=1))
    assert d56.configure() == 0
    clock.advance(200)
    inits = bus.inits
    assert d55.read() == 0 and d56.read() == 0 and d55.read() == 0
    assert bus.inits == inits + 3  # mode 0, 1, 0
    assert d55.read() == 0 and bus.inits == inits + 3  # same chip again: no re-init
    assert abs(d55.tc - d56.tc) < 1024 // 4


@req("SR-DRV-05")
def test_a_chip_read_in_the_wrong_spi_mode_gives_no_reading():
    clock, chip, drv = rig(tc_c=45.0)
    assert fresh(clock, drv) == 0
    good = bytearray(drv._buf)
    drv._bus.read(drv._cs, (1000000, 0, 0), drv._read_cmd, drv._buf)  # mode 0: one bit late
    assert drv._buf != good
    assert drv._decode() != 0 and drv.tc is None


@req("SR-TIM-02")
def test_read_does_not_allocate():
    clock, chip, drv = rig(tc_c=45.0)
    fresh(clock, drv)
    micropython.heap_lock()
    try:
        for _ in range(300):
            clock.ms += 50
            drv.read()
    finally:
        micropython.heap_unlock()
    assert drv.fault == 0
    clock.ms += 100
    total = micropython.mem_total()
    drv.read()
    assert micropython.mem_total() == total
    for word in ("open", "short_gnd", "stuck", "absent"):
        chip.set_fault(word)
        micropython.heap_lock()
        try:
            for _ in range(5):
                clock.ms += 100
                drv.read()
        finally:
            micropython.heap_unlock()
        assert drv.fault != 0
