"""Raspberry Pi Pico (RP2040). Copied to the board as /board.py.

SPI0 on GP18 (SCK), GP19 (MOSI), GP16 (MISO); chip selects are GPIO numbers from the
configuration; interlock output GP15 with readback on GP14; status LED on GP25.
The interlock line needs an external pull-down so that RF stays inhibited while the
pin is an input (reset, boot, crash).
"""
import machine
from machine import Pin

NAME = "rp2_pico"
SPI_ID = 0
SCK, MOSI, MISO = 18, 19, 16
INTERLOCK = 15
READBACK = 14
LED = 25
WDT_MAX_MS = 8388  # the RP2040 watchdog cannot count longer
WDT_RESET = machine.WDT_RESET

# Pins a chip select must not use.
RESERVED = {
    SCK: "SPI SCK", MOSI: "SPI MOSI", MISO: "SPI MISO",
    INTERLOCK: "interlock output", READBACK: "interlock readback", LED: "status LED",
}


def interlock():
    return Pin(INTERLOCK, Pin.OUT, value=0)


def readback():
    return Pin(READBACK, Pin.IN, Pin.PULL_DOWN)


def led():
    return Pin(LED, Pin.OUT, value=0)


def spi():
    return machine.SPI(SPI_ID, baudrate=1000000, polarity=0, phase=0,
                       sck=Pin(SCK), mosi=Pin(MOSI), miso=Pin(MISO))


def cs(n):
    return Pin(n, Pin.OUT, value=1)


def watchdog(timeout_ms):
    return machine.WDT(timeout=min(timeout_ms, WDT_MAX_MS))


def reset_cause():
    return machine.reset_cause()
