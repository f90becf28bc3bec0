"""The virtual board's machine module: pins, chip-select routing, SPI, watchdog.

The test bench itself (no safety requirement of its own): the driver tests stand on it.
"""

import time

import machine
import micropython
from fwtest import raises
from machine import SPI, WDT, Pin


class Echo:
    """A chip that answers each byte with a fixed pattern and counts its transactions."""

    mode_mask = 0b0001
    max_hz = 5000000

    def __init__(self, answer):
        self.answer = answer
        self.selected = False
        self.selects = 0
        self.deselects = 0
        self.got = bytearray(8)
        self.n = 0

    def select(self):
        self.selects += 1
        self.n = 0

    def deselect(self):
        self.deselects += 1

    def exchange(self, mosi):
        if self.n < 8:
            self.got[self.n] = mosi
        self.n += 1
        return self.answer


def test_pins_levels_from_inside_and_outside():
    machine.clear_registry()
    out = Pin(15, Pin.OUT, value=0)
    assert machine.pin_level(15) == 0 and out.value() == 0
    out.on()
    assert machine.pin_level(15) == 1
    out(0)
    assert machine.pin_level(15) == 0
    out.toggle()
    assert out() == 1
    inp = Pin(14, Pin.IN)
    assert inp.value() == 0  # floating input
    machine.set_input(14, 1)
    assert inp.value() == 1
    up = Pin(3, Pin.IN, Pin.PULL_UP)
    assert up.value() == 1
    machine.set_input(3, 0)
    assert up.value() == 0
    machine.set_input(3, None)
    assert up.value() == 1
    # A value written to an input is what it drives once it becomes an output.
    p = Pin(4, Pin.IN)
    p.value(1)
    assert machine.pin_level(4) == 0
    p.init(Pin.OUT)
    assert machine.pin_level(4) == 1
    # Open drain: low when driven low, else the line's pull-up or what drives it.
    od = Pin(5, Pin.OPEN_DRAIN, value=1)
    assert od.value() == 1
    od.value(0)
    assert od.value() == 0
    od.value(1)
    machine.set_input(5, 0)
    assert od.value() == 0
    assert machine.pin_level(99) is None


def test_chip_select_edges_route_spi_to_the_selected_chip():
    machine.clear_registry()
    a, b = Echo(0x5A), Echo(0x3C)
    machine.attach_chip(13, a)
    machine.attach_chip(17, b)
    cs_a = Pin(13, Pin.OUT, value=1)
    cs_b = Pin(17, Pin.OUT, value=1)
    spi = SPI(0)
    buf = bytearray(3)
    spi.readinto(buf, 0xAB)
    assert buf == b"\xff\xff\xff"  # nobody selected: MISO idles high
    cs_a(0)
    spi.readinto(buf, 0xAB)
    spi.write(b"\x01\x02")
    cs_a(1)
    assert buf == b"\x5a\x5a\x5a" and a.selects == 1 and a.deselects == 1 and b.selects == 0
    assert a.got[:5] == b"\xab\xab\xab\x01\x02"
    cs_a(1)  # no edge: no transaction
    assert a.deselects == 1
    cs_a(0)
    cs_b(0)
    assert spi.read(1) == bytes((0x5A & 0x3C,))  # two drivers on MISO: wired AND
    cs_a(1)
    cs_b(1)
    out = bytearray(2)
    cs_b(0)
    spi.write_readinto(b"\x10\x20", out)
    cs_b(1)
    assert out == b"\x3c\x3c" and b.got[:2] == b"\x10\x20"
    machine.detach_chip(17)
    cs_b(0)
    assert spi.read(1) == b"\xff"


def test_wrong_spi_mode_or_clock_answers_one_bit_late():
    machine.clear_registry()
    chip = Echo(0b10110010)
    machine.attach_chip(2, chip)
    cs = Pin(2, Pin.OUT, value=1)
    spi = SPI(0, baudrate=1000000, polarity=0, phase=1)
    cs(0)
    late = spi.read(2)
    cs(1)
    assert late == bytes((0b11011001, 0b01011001))
    spi.init(phase=0)
    assert spi.inits == 1
    cs(0)
    assert spi.read(1) == bytes((0b10110010,))
    cs(1)
    spi.init(baudrate=10000000)  # beyond the chip's clock
    cs(0)
    assert spi.read(1) != bytes((0b10110010,))
    cs(1)
    spi.deinit()
    raises(OSError, spi.read, 1)


def test_pin_and_spi_do_not_allocate():
    machine.clear_registry()
    chip = Echo(0x11)
    machine.attach_chip(13, chip)
    cs = Pin(13, Pin.OUT, value=1)
    spi = SPI(0)
    buf = bytearray(4)
    cmd = bytearray(1)
    micropython.heap_lock()
    try:
        for _ in range(100):
            cs.value(0)
            spi.write(cmd)
            spi.readinto(buf, 0)
            cs.value(1)
            cs.value()
    finally:
        micropython.heap_unlock()
    assert chip.selects == 100 and buf == b"\x11\x11\x11\x11"
    total = micropython.mem_total()
    cs.value(0)
    spi.readinto(buf, 0)
    cs.value(1)
    assert micropython.mem_total() == total  # not even a transient frame


def test_watchdog_records_its_feeds_in_virtual_time_and_reset_cause():
    machine.clear_registry()
    assert machine.wdt_state() == (None, None)
    assert machine.reset_cause() == machine.PWRON_RESET
    wdt = WDT(timeout=2000)
    started = time.ticks_ms()
    assert machine.wdt_state() == (2000, started)
    time.advance_us(1500000)
    wdt.feed()
    assert machine.wdt_state() == (2000, time.ticks_add(started, 1500))
    machine.set_reset_cause(machine.WDT_RESET)
    assert machine.reset_cause() == machine.WDT_RESET
    assert len({machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET, machine.DEEPSLEEP_RESET,
                machine.SOFT_RESET}) == 5


def test_dither_flickers_the_last_bit_of_read_only_chips():
    from chipmodels import ManualClock
    from chipmodels.max6675 import MAX6675
    from chipmodels.max31855 import MAX31855

    for cls, period, nbytes in ((MAX31855, 100, 4), (MAX6675, 220, 2)):
        machine.clear_registry()
        clock = ManualClock(0)
        chip = cls("K", clock=clock, tc_c=37.0)
        machine.attach_chip(8, chip)
        cs = Pin(8, Pin.OUT, value=1)
        spi = SPI(0, phase=1 if cls is MAX6675 else 0)
        frames = []
        for dither in (False, False, True, True, True):
            chip.dither = dither
            clock.advance(period)
            cs(0)
            frames.append(spi.read(nbytes))
            cs(1)
        assert frames[0] == frames[1]  # noiseless: bit-identical
        assert frames[2] != frames[3] and frames[2] == frames[4]
        diff = [a ^ b for a, b in zip(frames[2], frames[3])]
        assert sum(bin(d).count("1") for d in diff) == 1  # exactly one bit flickers
