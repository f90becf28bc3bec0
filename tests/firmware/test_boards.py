"""Every board file, on the emulated machine module: the interlock is an output driven
low when created, the readback an input, chip selects idle high."""
import machine
from fwtest import req

BOARDS = ("rp2_pico", "esp32_devkitc", "pyboard_v11", "virtual")


@req("SR-BRD-02", "SR-GRD-01")
def test_every_board_creates_its_interlock_low():
    for name in BOARDS:
        machine.clear_registry()
        board = __import__(name)
        pin = board.interlock()
        assert machine.pin_mode(board.INTERLOCK) == machine.Pin.OUT, name
        assert machine.pin_level(board.INTERLOCK) == 0, name
        assert pin.value() == 0
        board.readback()
        assert machine.pin_mode(board.READBACK) == machine.Pin.IN, name
        cs = board.cs(13)
        assert cs.value() == 1, name
        assert board.NAME == name


@req("SR-BRD-02")
def test_pyboard_refuses_spi_pins_as_chip_selects():
    import pyboard_v11
    from fwtest import raises

    assert pyboard_v11.pin_name(13) == "Y1"
    raises(ValueError, pyboard_v11.pin_name, 5)  # X5 is an SPI pin
    raises(ValueError, pyboard_v11.pin_name, 30)
