"""What each supported amplifier chip can do: one table for the configuration check,
the drivers and the chip models of the virtual board.

Pure Python, imported by MicroPython and CPython alike.
"""

MAX31855 = "max31855"
MAX31856 = "max31856"
MAX6675 = "max6675"
CHIPS = (MAX31855, MAX31856, MAX6675)

# Thermocouple types each chip handles. A MAX31855 is built for one type (its part
# number suffix); the firmware linearizes K, J and T to NIST ITS-90.
TC_TYPES = {
    MAX31855: ("K", "J", "T"),
    MAX31856: ("B", "E", "J", "K", "N", "R", "S", "T"),
    MAX6675: ("K",),
}

# MAX31856 CR1 thermocouple type codes (datasheet table 6).
MAX31856_TYPE_CODE = {"B": 0, "E": 1, "J": 2, "K": 3, "N": 4, "R": 5, "S": 6, "T": 7}
MAX31856_AVERAGING = (1, 2, 4, 8, 16)
MAX31856_FILTERS = (50, 60)

# Cold-junction (chip die) range in which the drivers accept a reading, degrees C: the
# range over which the MAX31855 and MAX31856 datasheets specify their accuracy. Outside
# it a reading is a fault (F_RANGE), never a temperature.
CJ_MIN_C = -20
CJ_MAX_C = 85

# Temperature range of each thermocouple type's NIST ITS-90 reference function, degrees C.
# A linearized reading outside it is a fault (F_RANGE).
TC_RANGE_C = {
    "B": (0, 1820),
    "E": (-270, 1000),
    "J": (-210, 1200),
    "K": (-270, 1372),
    "N": (-270, 1300),
    "R": (-50, 1768),
    "S": (-50, 1768),
    "T": (-270, 400),
}

# Highest SPI clock each chip takes (datasheets: 5 MHz; MAX6675 4.3 MHz).
MAX_SPI_HZ = {MAX31855: 5000000, MAX31856: 5000000, MAX6675: 4300000}


def conversion_ms(chip, averaging=1, filter_hz=60):
    """Worst-case time between two fresh conversions, in milliseconds.

    MAX31855: 100 ms max. MAX6675: 220 ms max. MAX31856 in automatic conversion mode:
    about 100 ms (60 Hz filter) or 120 ms (50 Hz), plus 33.33 ms (60 Hz) or 40 ms (50 Hz)
    for each averaged sample beyond the first.
    """
    if chip == MAX31855:
        return 100
    if chip == MAX6675:
        return 220
    if chip == MAX31856:
        if filter_hz == 50:
            return 120 + 40 * (averaging - 1)
        return 100 + (100 * (averaging - 1) + 2) // 3
    raise ValueError("unknown chip")


def max_sample_hz(chip, averaging=1, filter_hz=60):
    """Highest whole sampling rate at which every read gets a fresh conversion."""
    return 1000 // conversion_ms(chip, averaging, filter_hz)
