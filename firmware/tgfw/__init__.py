"""thermoguard firmware: the safety monitor that runs on the board."""

VERSION = "0.1.0"
