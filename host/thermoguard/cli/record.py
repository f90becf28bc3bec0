"""`thermoguard record --port P --out LOG [--duration S] [--force]`: record a board's stream.

The log keeps the raw bytes as received (docs/log-format.md); its header holds the board
name, firmware version and configuration hash from INFO and the configuration from GET.
A live line on stderr shows frames, rate, gaps, CRC errors and elapsed time; Ctrl-C ends
the recording with the log closed.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import deque
from pathlib import Path

from thermoguard import log, relay
from thermoguard.board import Board
from thermoguard.cli import session
from thermoguard.cli.common import UserError, positive_seconds
from thermoguard.cli.session import header_meta  # noqa: F401 - kept importable from here
from thermoguard.recorder import RECONNECT_TIMEOUT_S, Recorder, Stats

PLAIN_EVERY_S = 10.0  # a status line this often when stderr is not a terminal
REDRAW_S = 0.25


def register(sub) -> None:
    p = sub.add_parser("record", help="record a board's stream into a log")
    p.add_argument("--port", required=True, help="the board's port: a device, /dev/pts/N, socket://host:port")
    p.add_argument("--out", required=True, help="the log file to write")
    p.add_argument("--duration", type=positive_seconds, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--force", action="store_true", help="overwrite an existing log")
    p.add_argument("--reconnect-timeout", type=positive_seconds, default=RECONNECT_TIMEOUT_S, metavar="S",
                   help=f"how long to try to reopen a lost port before giving up (default {RECONNECT_TIMEOUT_S:g} s)")
    p.set_defaults(func=run)


class StatusLine:
    """One live line: redrawn in place on a terminal, an occasional plain line otherwise."""

    def __init__(self, stream, interactive: bool | None = None, plain_every: float = PLAIN_EVERY_S) -> None:
        self.stream = stream
        self.interactive = stream.isatty() if interactive is None else interactive
        self.every = REDRAW_S if self.interactive else plain_every
        self._last = time.monotonic()
        self._window: deque[tuple[float, int]] = deque()
        self._shown = False

    def text(self, s: Stats) -> str:
        now = time.monotonic()
        self._window.append((now, s.frames))
        while len(self._window) > 2 and now - self._window[0][0] > 2.0:
            self._window.popleft()
        t0, f0 = self._window[0]
        rate = f"{(s.frames - f0) / (now - t0):.1f}/s" if now - t0 >= 0.5 else "--/s"
        m, sec = divmod(int(s.elapsed), 60)
        h, m = divmod(m, 60)
        state = f"  {s.state}" if s.state else ""
        return (f"{h:02d}:{m:02d}:{sec:02d}  {s.frames} frames  {rate}  gaps {s.gaps}  "
                f"CRC errors {s.crc_errors}  lost {s.lost}{state}")

    def update(self, s: Stats) -> None:
        line = self.text(s)
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        self._write(("\r" + line + "\x1b[K") if self.interactive else line + "\n")
        self._shown = self.interactive

    def message(self, text: str) -> None:
        self._write(("\r\x1b[K" if self._shown else "") + text + "\n")
        self._shown = False

    def finish(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not end the recording


def run(args) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise session.exists_error(out)
    status = StatusLine(sys.stderr)
    board, early = session.open_board(args.port)
    writer, _ = session.open_log(board, args.port, out, args.force,
                                 lambda text: status.message(f"thermoguard: warning: {text}"))
    recorder = Recorder(board.transport, writer, reconnect_timeout_s=args.reconnect_timeout,
                        on_status=status.update, on_message=status.message, expected=board.info)
    what = board.info.describe() if board.info else "board unknown"
    status.message(f"recording {args.port} ({what}) to {out}; Ctrl-C ends it")
    stats = _record(recorder, board, writer, early, args.duration, status)
    print(summary(stats, out))
    if stats.gave_up:
        print(f"thermoguard: {stats.gave_up}", file=sys.stderr)
        return 1
    return 0


def _record(recorder: Recorder, board: Board, writer: log.LogWriter, early, duration, status) -> Stats:
    try:
        with session.stop_on_signals(recorder.stop):
            for data, t_ns in early:
                recorder.feed(data, t_ns)
            # `thermoguard arm --port P` and the other operator commands reach the board through us.
            with relay.serve(recorder.transport.url, functools.partial(recorder.request, origin=relay.ORIGIN),
                             lambda text: status.message(f"thermoguard: warning: {text}")):
                return recorder.run(duration)
    except OSError as e:
        raise UserError(f"cannot write {writer.path}: {e.strerror or e}") from None
    finally:
        status.finish()
        session.close(board, writer)


def summary(s: Stats, out: Path) -> str:
    return session.summary(s, out)
