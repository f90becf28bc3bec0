"""`thermoguard virtual`: serve a virtual board; the first line of output is its serial device path."""

from thermoguard.virtual import register  # noqa: F401 - the command lives beside its bridge
