"""thermoguard host package: the engineer's side of the temperature-safety monitor."""

__version__ = "0.1.0"
