"""`thermoguard replay LOG [--speed X|max] [--every S]`: play a log back as if live."""

from __future__ import annotations

from thermoguard.cli.common import UserError, parse_speed


def register(sub) -> None:
    p = sub.add_parser("replay", help="play a log back as if live")
    p.add_argument("log")
    p.add_argument("--speed", type=parse_speed, default=1.0,
                   help="real-time multiple of the recorded host times, or max (default 1)")
    p.add_argument("--every", type=float, default=5.0, help="seconds of device time between status lines (default 5)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one only on a terminal, for a large log)")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from thermoguard import log, progress, replay

    if not args.every > 0:
        raise UserError("--every must be above 0")
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
