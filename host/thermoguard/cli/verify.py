"""`thermoguard verify LOG`: check a log's integrity; non-zero exit on any damage."""

from __future__ import annotations

from thermoguard.cli.common import UserError


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a log's integrity; non-zero exit on any damage")
    p.add_argument("log")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import log

    try:
        report = log.verify(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    print(report.summary())
    return 0 if report.ok else 1


