"""MicroPython pyboard v1.1 (STM32F405). Copied to the board as /board.py.

SPI 1 on X6 (SCK), X7 (MISO), X8 (MOSI). The configuration's chip-select numbers map to
pins: 1-12 are X1-X12, 13-24 are Y1-Y12 (the SPI pins X5-X8 cannot be chip selects).
Interlock output Y12 with readback on Y11; status LED is the green LED.
The interlock line needs an external pull-down: pins float during reset and boot.
"""
import machine
from machine import Pin

NAME = "pyboard_v11"
SPI_ID = 1
INTERLOCK = "Y12"
READBACK = "Y11"
LED = "LED_GREEN"
SPI_PINS = ("X5", "X6", "X7", "X8")
WDT_RESET = machine.WDT_RESET


# Pins a chip select must not use (besides the SPI pins, which pin_name refuses).
RESERVED = {24: "interlock output", 23: "interlock readback"}  # Y12 and Y11 as chip-select numbers


def pin_name(n):
    if 1 <= n <= 12:
        name = "X%d" % n
    elif 13 <= n <= 24:
        name = "Y%d" % (n - 12)
    else:
        raise ValueError("chip select %d has no pin on the pyboard (use 1-24)" % n)
    if name in SPI_PINS:
        raise ValueError("chip select %d is %s, an SPI pin" % (n, name))
    return name


def interlock():
    return Pin(INTERLOCK, Pin.OUT, value=0)


def readback():
    return Pin(READBACK, Pin.IN, Pin.PULL_DOWN)


def led():
    return Pin(LED, Pin.OUT, value=0)


def spi():
    return machine.SPI(SPI_ID, baudrate=1000000, polarity=0, phase=0)


def cs(n):
    return Pin(pin_name(n), Pin.OUT, value=1)


def watchdog(timeout_ms):
    return machine.WDT(timeout=timeout_ms)


def reset_cause():
    return machine.reset_cause()
