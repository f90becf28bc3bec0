"""Firmware benchmark, run on the MicroPython Unix port by bench/run.py.

Times the safety cycle (Monitor.step: read every chip, check every channel, guard,
commands, telemetry) for 1, 4 and 8 channels with the chips answering from preallocated
frames, so that only firmware work is timed; counts heap bytes allocated per cycle; and
times the Adafruit CircuitPython MAX31855 driver's NIST-corrected read on the same
interpreter beside our MAX31855 read. Prints one JSON line.
"""
import gc
import json
import os
import sys

import micropython
import utime  # the real clock (hil/device/time.py is the virtual one)

ROOT = sys.argv[1]
ADAFRUIT = sys.argv[2]
sys.path[:0] = [ROOT + "/firmware", ROOT + "/hil/device", ROOT + "/boards", ROOT + "/bench"]

import machine  # noqa: E402 - the virtual board's, after the path is set

# 30.0 C on a K thermocouple with the cold junction at 25.0 C and at 25.0625 C, as the
# MAX31855 frames them: a real chip's cold junction flickers by an LSB, which keeps the
# frozen-signal check quiet. Answered by copying, with no model logic.
FRAMES_31855 = (bytes((0x01, 0xE0, 0x19, 0x00)), bytes((0x01, 0xE0, 0x19, 0x10)))


class FrameChip:
    """Answers each transaction with the next of its preallocated frames."""

    mode_mask = 0b0001  # SPI mode 0, as the MAX31855
    max_hz = 5000000

    def __init__(self, frames):
        self.frames = frames
        self.frame = frames[0]
        self.k = 0
        self.pos = 0
        self.selected = False

    def select(self):
        self.pos = 0
        self.k = 1 - self.k
        self.frame = self.frames[self.k]

    def deselect(self):
        pass

    def exchange(self, mosi):
        b = self.frame[self.pos]
        self.pos += 1
        return b


def make_config(n):
    chans = []
    for i in range(n):
        chans.append({"name": "c%d" % i, "chip": "max31855", "cs": 30 + i, "role": "protective",
                      "high_c": 45.0, "low_c": 10.0, "rate_c_per_s": 2.0, "dose_cem43": 40.0})
    return {"sample_hz": 10, "stale_ms": 300, "host_timeout_s": 0, "channels": chans}


def bench_cycle(n, cycles=2000):
    import virtual as board
    from tgfw.app import Monitor

    machine.clear_registry()
    path = "/tmp/tg-bench-config.json"
    trip = "/tmp/tg-bench-trip.json"
    try:
        os.remove(trip)  # a fresh board: no trip record from an earlier run
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(json.dumps(make_config(n)))
    for i in range(n):
        machine.attach_chip(30 + i, FrameChip(FRAMES_31855))
    # /dev/null as the serial port: always writable, never a command (a host that reads).
    sink = open("/dev/null", "wb")
    source = open("/dev/null", "rb")
    m = Monitor(board, path, trip, source, sink)
    for _ in range(50):  # warm up: fill the rate windows, first allocations
        m.cycle()
    m._command("ARM", "")
    for _ in range(5):
        m.cycle()
    assert m.guard.state == 2, m.guard.causes(m.names)  # ARMED: the full cycle, interlock asserted
    now = m.sampler.ms
    gc.collect()
    before = micropython.mem_total()  # every byte taken from the heap, even if given back
    t0 = utime.ticks_us()
    for _ in range(cycles):
        m.step(now, 100000)
    t1 = utime.ticks_us()
    allocated = micropython.mem_total() - before
    micropython.heap_lock()
    try:
        for _ in range(cycles):
            m.step(now, 100000)
        locked_ok = True
    except MemoryError:
        locked_ok = False
    finally:
        micropython.heap_unlock()
    return {"channels": n, "us_per_cycle": utime.ticks_diff(t1, t0) / cycles,
            "bytes_per_cycle": allocated / cycles, "heap_locked_ok": locked_ok}


def bench_driver(reads=5000):
    """Our MAX31855 read (one SPI transaction, decode, NIST) per channel."""
    from tgfw.bus import Bus
    from tgfw.drivers.max31855 import Driver

    machine.clear_registry()
    machine.attach_chip(5, FrameChip(FRAMES_31855))
    d = Driver(Bus(machine.SPI(0)), machine.Pin(5, machine.Pin.OUT, value=1), "K")
    assert d.read() == 0
    t0 = utime.ticks_us()
    for _ in range(reads):
        d.read()
    t1 = utime.ticks_us()
    return {"us_per_read": utime.ticks_diff(t1, t0) / reads, "celsius": d.tc / 1024}


def bench_adafruit(reads=2000):
    """Adafruit's temperature_NIST, with a small stand-in for its SPIDevice."""
    import adafruit_standin  # noqa: F401 - registers adafruit_bus_device.spi_device

    sys.path.insert(0, ADAFRUIT)
    import adafruit_max31855

    machine.clear_registry()
    machine.attach_chip(5, FrameChip(FRAMES_31855))
    spi = machine.SPI(0)
    cs = machine.Pin(5, machine.Pin.OUT, value=1)
    sensor = adafruit_max31855.MAX31855(spi, cs)
    value = sensor.temperature_NIST
    t0 = utime.ticks_us()
    for _ in range(reads):
        _ = sensor.temperature_NIST
    t1 = utime.ticks_us()
    return {"us_per_read": utime.ticks_diff(t1, t0) / reads, "celsius": value}


result = {
    "cycle": [bench_cycle(n) for n in (1, 4, 8)],
    "max31855_read": bench_driver(),
    "adafruit_max31855_nist": bench_adafruit(),
}
print(json.dumps(result))
