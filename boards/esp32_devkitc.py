"""Espressif ESP32-DevKitC. Copied to the board as /board.py.

SPI 2 (VSPI) on GPIO18 (SCK), GPIO23 (MOSI), GPIO19 (MISO); chip selects are GPIO numbers
from the configuration (avoid the strapping pins 0, 2, 5, 12, 15); interlock output
GPIO26 with readback on GPIO27; status LED on GPIO2 (on most DevKitC carrier boards).
The interlock line needs an external pull-down: GPIOs float during reset and boot.
"""
import machine
from machine import Pin

NAME = "esp32_devkitc"
SPI_ID = 2
SCK, MOSI, MISO = 18, 23, 19
INTERLOCK = 26
READBACK = 27
LED = 2
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
    return machine.WDT(timeout=timeout_ms)


def reset_cause():
    return machine.reset_cause()
