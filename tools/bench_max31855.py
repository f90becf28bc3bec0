"""Cost of one MAX31855 reading on the MicroPython Unix port: thermoguard's driver against
the Adafruit CircuitPython driver's temperature_NIST, both on the same stand-in SPI.

The stand-in copies a fixed frame (45.00 C in the chip's straight line, cold junction
25.0 C); chip select is a do-nothing pin. So the numbers are the drivers' own cost:
thermoguard reads once and corrects in integers, Adafruit reads twice (thermocouple,
then cold junction) and corrects with float polynomials. Run from the repository root:

    .venv/bin/micropython tools/bench_max31855.py
"""

import os
import sys
import time

sys.path[:0] = ["firmware"]
for _lib in os.listdir(".venv/lib"):  # the Adafruit driver, pure Python, from the venv
    sys.path.append(".venv/lib/" + _lib + "/site-packages")

import adafruit_max31855  # noqa: E402
from tgfw.bus import Bus  # noqa: E402
from tgfw.drivers import max31855  # noqa: E402

N = 20000
WORD = (180 << 18) | (400 << 4)
FRAME = bytes(((WORD >> 24) & 255, (WORD >> 16) & 255, (WORD >> 8) & 255, WORD & 255))


class StandInSPI:
    """Both drivers' SPI: busio-style locking for Adafruit, machine-style for ours."""

    def try_lock(self):
        return True

    def unlock(self):
        pass

    def configure(self, baudrate=100000, polarity=0, phase=0, bits=8):
        pass

    def init(self, baudrate=1000000, polarity=0, phase=0):
        pass

    def write(self, buf):
        pass

    def readinto(self, buf, write=0):
        for i in range(len(buf)):
            buf[i] = FRAME[i]


class DigitalInOutCS:
    def __init__(self):
        self.value = True

    def switch_to_output(self, value=True):
        self.value = value


class PinCS:
    def value(self, v=None):
        pass


def per_read_us(fn):
    best = None
    for _ in range(5):
        t0 = time.ticks_us()
        for _ in range(N):
            fn()
        us = time.ticks_diff(time.ticks_us(), t0) / N
        best = us if best is None else min(best, us)
    return best


def main():
    ada = adafruit_max31855.MAX31855(StandInSPI(), DigitalInOutCS())
    ours = max31855.Driver(Bus(StandInSPI()), PinCS())
    assert ours.read() == 0
    print(f"reading: adafruit {ada.temperature_NIST:.4f} C, thermoguard {ours.tc / 1024:.4f} C")
    a = per_read_us(lambda: ada.temperature_NIST)
    o = per_read_us(ours.read)
    print(f"adafruit temperature_NIST: {a:.2f} us per reading")
    print(f"thermoguard Driver.read:   {o:.2f} us per reading ({a / o:.1f} times less)")
    heap = 0
    if hasattr(sys.implementation, "_mpy"):
        import micropython

        total = micropython.mem_total()
        ours.read()
        heap = micropython.mem_total() - total
    print(f"thermoguard heap bytes per reading: {heap}")


main()
