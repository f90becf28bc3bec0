"""`thermoguard verify LOG`: check a log's integrity; non-zero exit on any damage."""

from __future__ import annotations

from thermoguard.cli.common import UserError


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a log's integrity; non-zero exit on any damage")
    p.add_argument("log")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one only on a terminal, for a large log)")
    p.add_argument("--exact", action="store_true",
                   help="check record by record and decode frame by frame (the reference: same report, much slower)")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import log, progress

    with progress.bar(args.log, enabled=not args.no_progress) as bar:
        try:
            report = log.verify(args.log, progress=bar.task("verifying", _size(args.log)) if bar.shown else None,
                                exact=args.exact)
        except log.LogError as e:
            raise UserError(str(e)) from None
    print(report.summary())
    return 0 if report.ok else 1


def _size(path) -> int:
    import os

    return os.path.getsize(path)
