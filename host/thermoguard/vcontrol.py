"""Client of the virtual board's control channel (hil/bridge.py ControlServer): what a test
does to the world around the board, out of the firmware's sight.

    ctl = Control("/tmp/tg-control-x/control.sock")   # printed by `thermoguard virtual`
    ctl.set_channel("foramen", temp_c=50.0)            # overrides the scenario until cleared
    ctl.set_channel("tip", fault="absent")             # any scenario fault word
    ctl.clear("foramen"); ctl.clear()                  # one channel, or all
    ctl.pin(15), ctl.pins()                            # levels the board's pins show
    ctl.clock()                                        # device and scenario time, reset cause
    ctl.power(False); ctl.power(True)                  # cut and restore the power
    ctl.hang()                                         # the firmware's next SPI transfer never returns

One JSON object a line each way: {"op": "set", "channel": ..., "temp_c": ..., "fault": ...},
answered by {"ok": true, ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

VIRTUAL_INTERLOCK = 15  # boards/virtual.py
VIRTUAL_READBACK = 14


class ControlError(Exception):
    """The board refused a request, or did not answer: the reason in one sentence."""


class Control:
    def __init__(self, path: str | Path, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(self.path)
        self._buf = b""

    def request(self, op: str, **fields) -> dict:
        """One request and its answer; ControlError when it is refused."""
        self.sock.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        while b"\n" not in self._buf:
            data = self.sock.recv(65536)
            if not data:
                raise ControlError("the virtual board closed its control channel")
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "refused"))
        return answer

    def _patient(self, op: str, **fields) -> dict:
        """A request the board answers itself: asked again while the board resets."""
        end = time.monotonic() + self.timeout
        while True:
            try:
                return self.request(op, **fields)
            except ControlError as e:
                if "ask again" not in str(e) or time.monotonic() > end:
                    raise
            time.sleep(0.05)

    def set_channel(self, channel: str, temp_c: float | None = None, fault: str | None = None) -> int | None:
        """Until cleared, `channel` reads temp_c (None: the scenario's) with `fault` (None:
        healthy). Returns the device time (us) from which it holds, None while the board
        is off or resetting (it holds from the next power-on)."""
        return self.request("set", channel=channel, temp_c=temp_c, fault=fault).get("clock_us")

    def clear(self, channel: str | None = None) -> int | None:
        """Give a channel (None: every channel) back to the scenario."""
        return self.request("clear", channel=channel).get("clock_us")

    def pins(self) -> dict[int, int]:
        """Every pin's level; empty while the board is off."""
        return {int(k): v for k, v in self._patient("pins")["pins"].items()}

    def pin(self, pin_id: int) -> int:
        """A pin's level; 0 for a pin never set up or while the board is off (nothing
        drives it: the interlock's pull-down holds it low)."""
        return self.pins().get(pin_id, 0)

    def interlock(self) -> int:
        return self.pin(VIRTUAL_INTERLOCK)

    def clock(self) -> dict:
        """{"power", "clock_us" (device time, None while off), "world_us" (scenario time),
        "reset_cause" (machine.reset_cause()), "resets"}."""
        return self._patient("clock")

    def power(self, on: bool) -> None:
        """Cut (False) or restore (True) the board's power."""
        self.request("power", on=on)

    def hang(self) -> int:
        """The firmware's next SPI transfer never returns (a hang only a watchdog ends)."""
        return self._patient("hang")["clock_us"]

    def readback(self, stuck: int | None) -> int:
        """The interlock relay's contact, sensed on the readback pin: stuck 0 (open) or 1
        (welded shut) whatever the interlock commands, or None: following it again (until
        the next reset, which wires it afresh)."""
        return self._patient("readback", stuck=stuck)["clock_us"]

    def status(self) -> dict:
        return self.request("status")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
