"""A stand-in for adafruit_bus_device.spi_device (benchmark only): chip select low, the
transfer, chip select high, as the real SPIDevice does with a MicroPython SPI and Pin."""
import sys


class SPIDevice:
    def __init__(self, spi, chip_select=None, baudrate=100000, polarity=0, phase=0, extra_clocks=0):
        self.spi = spi
        self.chip_select = chip_select

    def __enter__(self):
        self.chip_select.value(0)
        return self.spi

    def __exit__(self, *exc):
        self.chip_select.value(1)
        return False


class _Module:
    pass


spi_device = _Module()
spi_device.SPIDevice = SPIDevice
package = _Module()
package.spi_device = spi_device
sys.modules["adafruit_bus_device"] = package
sys.modules["adafruit_bus_device.spi_device"] = spi_device
