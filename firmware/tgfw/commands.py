"""Host-to-board commands: the verbs, the refusal kinds and sentences, and the argument
rules. One definition for the board's reader (tgfw.link) and the host's encoder
(thermoguard.protocol); docs/protocol.md describes them. Pure Python for both interpreters.
"""

VERBS = ("HB", "INFO", "ARM", "DISARM", "RESET", "TRIP", "GET", "SET")
MAX_LINE = 200  # bytes before the line end, checksum included

# Error kinds (also in tests/vectors/protocol.json) and their sentences.
E_CHECKSUM = "checksum"
E_NO_CHECKSUM = "no_checksum"
E_TOO_LONG = "too_long"
E_NOT_ASCII = "not_ascii"
E_CONTROL = "control"
E_UNKNOWN_VERB = "unknown_verb"
E_MISSING_ARGUMENT = "missing_argument"
E_UNEXPECTED_ARGUMENT = "unexpected_argument"
E_BAD_ARGUMENT = "bad_argument"

M_CHECKSUM = "bad checksum: the CRC-32 after * does not match the line"
M_CHECKSUM_FORM = "bad checksum: * must be followed by 8 lowercase hex digits"
M_NO_CHECKSUM = "no checksum: a command ends with *CCCCCCCC, the CRC-32 of the text before *"
M_TOO_LONG = "line too long: a command is at most 200 bytes"
M_NOT_ASCII = "not ASCII: a command is printable ASCII"
M_CONTROL = "control byte in line: a command is printable ASCII ending in \\n or \\r\\n"
M_UNKNOWN_VERB = "unknown verb: expected one of HB INFO ARM DISARM RESET TRIP GET SET"


def check_args(verb, args):
    """(kind, sentence) of what is wrong with a command's verb and arguments, or None."""
    if verb not in VERBS:
        return E_UNKNOWN_VERB, M_UNKNOWN_VERB
    words = args.split()
    if verb in ("HB", "INFO"):
        if words:
            return E_UNEXPECTED_ARGUMENT, "unexpected argument: " + verb + " takes none"
    elif verb == "RESET":
        if not words:
            return E_MISSING_ARGUMENT, "missing argument: RESET needs a reason"
    elif verb == "GET":
        if len(words) > 1:
            return E_BAD_ARGUMENT, "bad argument: GET takes at most one key"
    elif verb == "SET":
        if not words:
            return E_MISSING_ARGUMENT, "missing argument: SET needs KEY=VALUE"
        for w in words:
            key, eq, value = w.partition("=")
            if not (key and eq and value):
                return E_BAD_ARGUMENT, "bad argument: SET takes KEY=VALUE pairs"
    return None
