"""Drive a board through a session as the host would: decode its stream, record it, arm it
once it is healthy, keep the heartbeat going in device time, and collect its trips.

Used by `thermoguard sim` and `thermoguard demo` with the virtual board in scenario mode.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tgfw import codes

from thermoguard import protocol

HEARTBEAT_EVERY_S = 1.0  # of device time: at a sped-up board the host keeps up with it


@dataclass
class Trip:
    t_dev_s: float
    causes: str


@dataclass
class RunResult:
    trips: list[Trip] = field(default_factory=list)
    frames: int = 0
    last: protocol.Telemetry | None = None
    refusals: list[str] = field(default_factory=list)
    board_text: list[str] = field(default_factory=list)
    decoder: protocol.Decoder | None = None


class SessionRunner:
    def __init__(self, board, recorder=None, arm: bool = True,
                 on_item: Callable[[protocol.Item], None] | None = None):
        self.board = board
        self.recorder = recorder
        self.arm = arm
        self.on_item = on_item
        self.decoder = protocol.Decoder()
        self.result = RunResult(decoder=self.decoder)
        self._next_hb = 0.0
        self._arm_sent_at: float | None = None

    def run(self) -> RunResult:
        while True:
            ready, _, _ = select.select([self.board], [], [], 0.5)
            if not ready:
                continue
            data = self.board.read()
            if data is None:
                break
            if data:
                self._take(data)
        for item in self.decoder.flush():
            self._handle(item)
        return self.result

    def _take(self, data: bytes) -> None:
        if self.recorder is not None:
            self.recorder.write_bytes(data, time.time_ns())
        for item in self.decoder.feed(data):
            self._handle(item)

    def _handle(self, item: protocol.Item) -> None:
        r = self.result
        if isinstance(item, protocol.Telemetry):
            r.frames += 1
            r.last = item
            self._steer(item)
        elif isinstance(item, protocol.Event) and item.event == protocol.EV_TRIP:
            r.trips.append(Trip(item.t_dev_s, item.text))
        elif isinstance(item, protocol.Reply) and not item.ok:
            r.refusals.append(item.text)
        elif isinstance(item, protocol.Text):
            r.board_text.append(item.text)
        if self.on_item is not None:
            self.on_item(item)

    def _steer(self, t: protocol.Telemetry) -> None:
        """Heartbeats by device time; ARM once, when every channel reads healthy."""
        now = t.t_dev_s
        if now >= self._next_hb:
            self.board.write(protocol.encode_command("HB"))
            self._next_hb = now + HEARTBEAT_EVERY_S
        if not self.arm or t.state != codes.DISARMED or not t.config_valid:
            return
        if any(ch.fault or ch.trip for ch in t.channels):
            return
        if self._arm_sent_at is None or now - self._arm_sent_at > 1.0:  # retry a refused arm
            self.board.write(protocol.encode_command("ARM"))
            self._arm_sent_at = now
