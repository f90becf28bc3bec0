from fwtest import req
from tgfw import chips


@req("SR-CFG-04")
def test_chip_rates_follow_the_datasheet_conversion_times():
    assert chips.max_sample_hz(chips.MAX31855) == 10
    assert chips.max_sample_hz(chips.MAX6675) == 4
    assert chips.max_sample_hz(chips.MAX31856) == 10
    assert chips.max_sample_hz(chips.MAX31856, 1, 50) == 8
    assert chips.max_sample_hz(chips.MAX31856, 16, 60) == 1
