"""`thermoguard replay LOG [--speed X|max] [--every S] [--dashboard]`: play a log back as if live.

With `--dashboard` (on a terminal) the log is shown on the monitor's dashboard: the same
model and screen a live board feeds (replay.Consumer), paced by the recorded host times.
"""

from __future__ import annotations

import sys
import threading
import time

from thermoguard.cli.common import UserError, parse_speed


class _Stopped(Exception):
    """q or Ctrl-C on the dashboard: the replay ends early."""


class _ToDashboard:
    """A replay consumer that hands the log's items to the dashboard's inbox."""

    def __init__(self, inbox, stop: threading.Event) -> None:
        self.inbox = inbox
        self.stop = stop

    def start(self, meta: dict) -> None:
        pass

    def item(self, t_ns: int, item) -> None:
        from thermoguard import log

        if self.stop.is_set():
            raise _Stopped
        if isinstance(item, log.Gap):
            self.inbox.message(f"log gap: {item.reason}")
        elif isinstance(item, log.Note):
            self.inbox.message(f"log note: {item.text}")
        else:
            self.inbox.items([item])

    def end(self) -> None:
        self.inbox.done.set()


def _on_dashboard(args):
    """The dashboard until the log ends (its last picture stays) or q; the replay's summary,
    or None when it was ended early."""
    from rich.console import Console

    from thermoguard import log, replay
    from thermoguard.cli import session
    from thermoguard.dashboard import live, view
    from thermoguard.dashboard.keys import Keys
    from thermoguard.dashboard.model import Model

    meta = log.header(args.log)  # LogError here, before the screen changes
    inbox = live.Inbox()
    model = Model(meta.get("config"), started=time.monotonic())
    stop = threading.Event()
    result: list = []
    failure: list[BaseException] = []

    def play() -> None:
        try:
            result.append(replay.play(args.log, [_ToDashboard(inbox, stop)], speed=args.speed, sleep=stop.wait))
        except _Stopped:
            pass
        except BaseException as e:  # noqa: BLE001 - raised again on the main thread
            failure.append(e)
        finally:
            inbox.done.set()

    speed = "as fast as it reads" if args.speed is None else f"{args.speed:g}x the recorded pace"
    title = f"thermoguard replay  {args.log}  ({speed}; no board: keys other than q do nothing)"
    thread = threading.Thread(target=play, name="replay", daemon=True)
    with session.stop_on_signals(stop):
        thread.start()
        console = Console()
        live.run_live(model, inbox, stop, console=console, screen=False, keys=Keys(commands=False),
                      render=lambda m, now, keys: view.render(m, now, keys, title=title, width=console.width))
        stop.set()
        thread.join()
    if failure:
        raise failure[0]
    return result[0] if result else None


def register(sub) -> None:
    p = sub.add_parser("replay", help="play a log back as if live")
    p.add_argument("log")
    p.add_argument("--speed", type=parse_speed, default=1.0,
                   help="real-time multiple of the recorded host times, or max (default 1)")
    p.add_argument("--every", type=float, default=5.0, help="seconds of device time between status lines (default 5)")
    p.add_argument("--dashboard", action="store_true",
                   help="show it on the live dashboard of `monitor` (needs a terminal; q ends it)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one only on a terminal, for a large log)")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from thermoguard import log, progress, replay

    if not args.every > 0:
        raise UserError("--every must be above 0")
    if args.dashboard:
        if not sys.stdout.isatty():
            raise UserError("--dashboard needs a terminal: without one, replay prints lines (leave it out)")
        try:
            summary = _on_dashboard(args)
        except log.LogError as e:
            raise UserError(str(e)) from None
        if summary is not None:
            print(replay.describe_end(summary))
        return 0
    with progress.bar(args.log, enabled=not args.no_progress) as bar:
        # Made inside the bar: on a terminal its lines then print above the bar.
        printer = replay.LivePrinter(every_s=args.every)
        step = bar.task("replaying", os.path.getsize(args.log)) if bar.shown else None
        try:
            summary = replay.play(args.log, [printer], speed=args.speed, progress=step)
        except log.LogError as e:
            raise UserError(str(e)) from None
    print(replay.describe_end(summary))
    return 0
