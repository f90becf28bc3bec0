"""The virtual board: the MicroPython Unix port with the emulated machine module of
hil/device (chip models on an emulated SPI bus). Copied to the board folder as /board.py.

Same pin plan as the Pico: SPI 0, interlock 15 with readback 14 (a virtual relay whose
contact follows the interlock; `machine.unwire(15)` and `machine.set_input(14, level)`
make it stick), LED 25; chip selects are the configuration's numbers.
"""
import machine
from machine import Pin

NAME = "virtual"
SPI_ID = 0
INTERLOCK = 15
READBACK = 14
LED = 25
WDT_RESET = machine.WDT_RESET

# Pins a chip select must not use.
RESERVED = {INTERLOCK: "interlock output", READBACK: "interlock readback", LED: "status LED"}


def interlock():
    return Pin(INTERLOCK, Pin.OUT, value=0)


def readback():
    # The virtual relay: its contact, sensed on READBACK, follows the interlock output.
    pin = Pin(READBACK, Pin.IN)
    machine.wire(INTERLOCK, READBACK)  # type: ignore[attr-defined]  # the emulated machine only
    return pin


def led():
    return Pin(LED, Pin.OUT, value=0)


def spi():
    return machine.SPI(SPI_ID, baudrate=1000000, polarity=0, phase=0)


def cs(n):
    return Pin(n, Pin.OUT, value=1)


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def reset_cause():
    return machine.reset_cause()
