"""Numbers shared by the firmware, the host and the virtual board.

One definition of every state, fault and trip cause, so a code means the same thing on
the wire, in a log and on the screen. Pure Python: imported by MicroPython on the board
and by CPython on the host.
"""

# Guard states.
BOOT = 0
DISARMED = 1
ARMED = 2
TRIPPED = 3
STATE_NAMES = ("BOOT", "DISARMED", "ARMED", "TRIPPED")

# Channel fault codes: 0 is a healthy reading. One code per reading; a driver reports
# the most specific one it can see. FAULT_NAMES are the words of exports and scenarios.
F_NONE = 0
F_OPEN = 1  # thermocouple open circuit
F_SHORT_GND = 2  # thermocouple shorted to ground
F_SHORT_VCC = 3  # thermocouple shorted to supply
F_ZEROS = 4  # all-zeros frame: MISO stuck low or disconnected
F_ONES = 5  # all-ones frame: MISO stuck high
F_STUCK = 6  # the chip repeats its last frame
F_ABSENT = 7  # the chip does not answer (bus error); reported once the value is stale
F_STALE = 8  # no fresh reading within stale_ms
F_IMPLAUSIBLE = 9  # reserved bit set, or a jump no tissue can make in one sample
F_RANGE = 10  # cold junction or thermocouple outside the chip's measuring range
FAULT_NAMES = (
    "",
    "open",
    "short_gnd",
    "short_vcc",
    "zeros",
    "ones",
    "stuck",
    "absent",
    "stale",
    "implausible",
    "range",
)

# Per-channel trip and warning bits.
C_HIGH = 1
C_LOW = 2
C_RATE = 4
C_DOSE = 8
C_FAULT = 16  # the channel's fault code says which
CHANNEL_CAUSE_NAMES = ((C_HIGH, "high"), (C_LOW, "low"), (C_RATE, "rate"), (C_DOSE, "dose"))

# Global trip bits.
G_OVERRUN = 1  # sustained cycle overruns
G_HOST = 2  # host heartbeat missing while armed
G_READBACK = 4  # interlock readback disagrees with the command
G_EXCEPTION = 8  # an exception escaped the safety cycle
G_WATCHDOG = 16  # the previous run ended in a watchdog reset
G_CONFIG = 32  # no valid configuration
G_OPERATOR = 64  # tripped on an operator's or host's request
G_PREVIOUS = 128  # a trip from before a reboot whose record could not be read in full
GLOBAL_CAUSE_NAMES = (
    (G_OVERRUN, "overrun"),
    (G_HOST, "host_timeout"),
    (G_READBACK, "readback"),
    (G_EXCEPTION, "exception"),
    (G_WATCHDOG, "watchdog"),
    (G_CONFIG, "config"),
    (G_OPERATOR, "operator"),
    (G_PREVIOUS, "previous_trip"),
)

# Channel index that marks a global first cause.
GLOBAL = 255

# A value that is not there (a rate before the window is full, the cold junction of a
# MAX6675): the smallest small int of a 32-bit port, sent on the wire as INT32_MIN (or
# INT16_MIN) like any missing value; never 0.
MISSING = -0x40000000
RATE_UNKNOWN = MISSING

# Frames on the link (docs/protocol.md): version, kinds, events and telemetry flags.
VERSION = 1
KIND_TELEMETRY = 1
KIND_EVENT = 2
KIND_REPLY = 3

EV_BOOT = 1
EV_ARM = 2
EV_DISARM = 3
EV_TRIP = 4
EV_RESET = 5
EV_CONFIG = 6
EV_REFUSED = 7
EV_WARNING = 8
EVENT_NAMES = ("", "BOOT", "ARM", "DISARM", "TRIP", "RESET", "CONFIG", "REFUSED", "WARNING")

FL_INTERLOCK_ON = 1  # the firmware commands the interlock closed (RF permitted)
FL_READBACK_HIGH = 2  # the interlock readback input reads high
FL_HAS_READBACK = 4  # the board has a readback input
FL_HOST_OK = 8  # a host heartbeat arrived within host_timeout
FL_CONFIG_VALID = 16


def channel_cause_words(bits, fault):
    """Words for a channel's cause bits, the fault named by its fault code."""
    words = [name for bit, name in CHANNEL_CAUSE_NAMES if bits & bit]
    if bits & C_FAULT:
        words.append(FAULT_NAMES[fault] if 0 < fault < len(FAULT_NAMES) else "fault")
    return words


def global_cause_words(bits):
    return [name for bit, name in GLOBAL_CAUSE_NAMES if bits & bit]
