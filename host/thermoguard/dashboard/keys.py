"""What a key press means on the dashboard: a small state machine, no I/O.

    a        arm: asks "y/n" first (arming lets the board permit RF)
    d        disarm at once (it only ever makes things safer)
    r        reset: asks for the reason, typed on the dashboard (Enter sends, Esc cancels)
    q        quit (also Ctrl-C)

`press(key)` returns the command to send, as (verb, args), QUIT, or None; `prompt` is the
question being asked, "" when none.
"""

from __future__ import annotations

QUIT = ("QUIT", "")
MAX_REASON = 150  # a command line holds 200 bytes with its verb and checksum
ENTER = ("\r", "\n")
BACKSPACE = ("\x7f", "\x08")
ESC = "\x1b"
HELP = "a arm   d disarm   r reset   q quit"


class Keys:
    def __init__(self, commands: bool = True) -> None:
        self.commands = commands  # False: the board is driven by someone else (the demo): only quit
        self.mode = "normal"  # normal, confirm_arm, reason
        self.reason = ""

    @property
    def prompt(self) -> str:
        if self.mode == "confirm_arm":
            return "Arm the board? It will permit RF while every check passes.  y = arm, n = cancel"
        if self.mode == "reason":
            return f"Reset: reason (Enter sends, Esc cancels): {self.reason}_"
        return ""

    @property
    def help(self) -> str:
        return HELP if self.commands else "q quit"

    def press(self, key: str) -> tuple[str, str] | None:
        if self.mode == "confirm_arm":
            self.mode = "normal"
            return ("ARM", "") if key in ("y", "Y") else None
        if self.mode == "reason":
            return self._reason(key)
        if key in ("q", "Q"):
            return QUIT
        if not self.commands:
            return None
        if key in ("a", "A"):
            self.mode = "confirm_arm"
        elif key in ("d", "D"):
            return ("DISARM", "")
        elif key in ("r", "R"):
            self.mode, self.reason = "reason", ""
        return None

    def _reason(self, key: str) -> tuple[str, str] | None:
        if key == ESC:
            self.mode = "normal"
        elif key in ENTER:
            reason = self.reason.strip()
            if reason:  # the board refuses a reset without one: ask on
                self.mode = "normal"
                return ("RESET", reason)
        elif key in BACKSPACE:
            self.reason = self.reason[:-1]
        elif len(key) == 1 and " " <= key <= "~" and len(self.reason) < MAX_REASON:
            self.reason += key  # printable ASCII only: what a command line may carry
        return None
