"""Play a log back as if it came from the board's port, through the same consumers.

A consumer is anything with three methods; the live path (a port read by a recorder or a
monitor) and a replay call them the same way, so a screen, a counter or an alarm written
for one works for the other:

    class Consumer:
        def start(self, meta: dict) -> None: ...       # the session's metadata (log header)
        def item(self, t_ns: int, item) -> None: ...   # Telemetry, Event, Reply, Text, Gap, Note
        def end(self) -> None: ...

`play(path, consumers, speed)` reads the log with the exact decoder (log.decoded_items)
and hands every item on at its recorded host time divided by speed (None: as fast as
possible). `on_item(consumers)` adapts consumers to a live loop that calls back with an
item alone (simrun.SessionRunner's on_item), stamping the receive time.

`LivePrinter` is the consumer the command line uses: a status line every few seconds of
device time, the board's events and its text, gaps and notes, each trip as
`trip at <device time> s: <causes>` (the words of `thermoguard sim`), and a summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tgfw import codes

from thermoguard import log, protocol


class Consumer(Protocol):
    def start(self, meta: dict) -> None: ...

    def item(self, t_ns: int, item: Any) -> None: ...

    def end(self) -> None: ...


@dataclass
class Summary:
    items: int = 0
    telemetry: int = 0
    events: int = 0
    replies: int = 0
    text_lines: int = 0
    gaps: int = 0
    notes: int = 0
    trips: list[tuple[float, str]] = field(default_factory=list)  # (device time, causes)
    first_ns: int | None = None
    last_ns: int | None = None
    last: protocol.Telemetry | None = None


PROGRESS_STEP = 1 << 20


def play(path, consumers: Iterable[Consumer], speed: float | None = 1.0,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
         progress: Callable[[int], None] | None = None) -> Summary:
    """Hand every item of the log at path to the consumers, paced by its recorded host time.

    speed is a multiple of real time (2.0 plays twice as fast); None plays as fast as the
    consumers take it. Host times that go back (a clock step) are not waited for.
    progress(offset), when given, is told how far into the file the replay is, about
    every PROGRESS_STEP bytes. Raises log.LogError when the file is not a readable log.
    """
    if speed is not None and not speed > 0:
        raise ValueError("speed must be above 0, or None for as fast as possible")
    consumers = list(consumers)
    with log._File(path) as f:  # the LogError of a file that is no log, before any consumer starts
        for c in consumers:
            c.start(f.meta)
        summary = Summary()
        started = clock()
        try:
            _play(f, consumers, speed, sleep, clock, progress, summary, started)
        finally:
            for c in consumers:
                c.end()
    return summary


def _play(f, consumers, speed, sleep, clock, progress, summary: Summary, started: float) -> None:
    # log.decoded_items, with the offset of each item for the progress.
    mark = 0
    for off, t_ns, item in log._items(f, log._Walk(f), []):
        if progress is not None and off >= mark:
            progress(off)
            mark = off + PROGRESS_STEP
        if summary.first_ns is None:
            summary.first_ns = t_ns
        elif speed is not None:
            due = started + (t_ns - summary.first_ns) / 1e9 / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        summary.last_ns = t_ns
        _count(summary, item)
        for c in consumers:
            c.item(t_ns, item)
    if progress is not None:
        progress(f.size)


def _count(s: Summary, item) -> None:
    s.items += 1
    if isinstance(item, protocol.Telemetry):
        s.telemetry += 1
        s.last = item
    elif isinstance(item, protocol.Event):
        s.events += 1
        if item.event == protocol.EV_TRIP:
            s.trips.append((item.t_dev_s, item.text))
    elif isinstance(item, protocol.Reply):
        s.replies += 1
    elif isinstance(item, protocol.Text):
        s.text_lines += 1
    elif isinstance(item, log.Gap):
        s.gaps += 1
    elif isinstance(item, log.Note):
        s.notes += 1


def on_item(consumers: Iterable[Consumer], clock_ns: Callable[[], int] = time.time_ns) -> Callable[[Any], None]:
    """A callback for a live loop that hands over items alone: stamps them with the host time."""
    consumers = list(consumers)

    def take(item) -> None:
        t = clock_ns()
        for c in consumers:
            c.item(t, item)

    return take


def status_line(t: protocol.Telemetry, names: list[str]) -> str:
    """One line of a board's state: device time, state, interlock, every channel."""
    parts = [f"{t.t_dev_s:7.1f} s", f"{t.state_name:<8}", "RF permitted" if t.interlock_on else "RF off      "]
    for i, ch in enumerate(t.channels):
        name = names[i] if i < len(names) else f"ch{i}"
        value = f"{ch.fault_word or 'no reading':>9}" if ch.temp_c is None else f"{ch.temp_c:7.2f} C"
        parts.append(f"{name} {value}{' warn' if ch.warn else ''}")
    return "  ".join(parts)


def names_of(meta: dict) -> list[str]:
    cfg = meta.get("config") if isinstance(meta, dict) else None
    chans = cfg.get("channels", []) if isinstance(cfg, dict) else []
    return [ch.get("name", f"ch{i}") if isinstance(ch, dict) else f"ch{i}" for i, ch in enumerate(chans)]


class LivePrinter:
    """What a person watching the board sees, as lines of text."""

    def __init__(self, out=None, every_s: float = 5.0):
        self.out = out if out is not None else sys.stdout
        self.every_s = every_s
        self.names: list[str] = []
        self._next = None
        self.trips: list[tuple[float, str]] = []

    def start(self, meta: dict) -> None:
        self.names = names_of(meta)
        board, fw = meta.get("board"), meta.get("firmware")
        if board or fw:
            self._print(f"board {board or 'unknown'}, firmware {fw or 'unknown'}, "
                        f"configuration {meta.get('config_hash') or 'none'}")

    def item(self, t_ns: int, item) -> None:
        if isinstance(item, protocol.Telemetry):
            if self._next is None or item.t_dev_s >= self._next or item.t_dev_s < self._next - self.every_s:
                self._print(status_line(item, self.names))
                self._next = item.t_dev_s + self.every_s
        elif isinstance(item, protocol.Event):
            if item.event == protocol.EV_TRIP:
                self.trips.append((item.t_dev_s, item.text))
                self._print(f"trip at {item.t_dev_s:.2f} s: {item.text}")
            else:
                detail = f": {item.text}" if item.text else ""
                self._print(f"{item.t_dev_s:7.1f} s  {item.event_name} ({item.state_name}){detail}")
        elif isinstance(item, protocol.Reply):
            if not item.ok:
                self._print(f"{item.t_dev_s:7.1f} s  board refused: {item.text}")
        elif isinstance(item, protocol.Text):
            self._print(f"  board: {item.text}")
        elif isinstance(item, log.Gap):
            self._print(f"  (gap: {item.reason})")
            self._next = None
        elif isinstance(item, log.Note):
            self._print(f"  (note: {item.text})")

    def end(self) -> None:
        if not self.trips:
            self._print("no trip")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def describe_end(s: Summary) -> str:
    """The closing words of a replay: what was played and the board's last state."""
    span = (s.last_ns - s.first_ns) / 1e9 if s.first_ns is not None and s.last_ns is not None else 0.0
    words = (f"replayed {s.telemetry} telemetry frames, {s.events} events, {s.replies} replies, "
             f"{s.text_lines} text lines, {s.gaps} gaps over {span:.1f} s of recording")
    if s.last is not None:
        words += f"; last state {codes.STATE_NAMES[s.last.state] if s.last.state < 4 else s.last.state}"
    return words
