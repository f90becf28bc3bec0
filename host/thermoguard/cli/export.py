"""`thermoguard export LOG --csv OUT [--npz OUT] [--mcap OUT]`: convert a log."""

from __future__ import annotations

import sys
from pathlib import Path

from thermoguard.cli.common import UserError

FORMATS = ("csv", "npz", "mcap")


def register(sub) -> None:
    p = sub.add_parser("export", help="convert a log to CSV, NumPy arrays or MCAP")
    p.add_argument("log")
    p.add_argument("--csv", help="CSV file (DESIGN.md columns)")
    p.add_argument("--npz", help="NumPy .npz file: arrays per channel plus time, state and interlock")
    p.add_argument("--mcap", help="MCAP file (Foxglove, PlotJuggler): a JSON topic per channel, state and events")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import export, log

    targets = [(fmt, Path(p)) for fmt, p in ((f, getattr(args, f)) for f in FORMATS) if p]
    if not targets:
        raise UserError("say what to write: --csv OUT, --npz OUT and/or --mcap OUT")
    for _, out in targets:
        if out.exists() and not args.force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")
    try:
        fr, names, damage = export.load(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    for fmt, out in targets:
        if fmt == "csv":
            print(f"{out}: {export.write_csv(fr, names, out)} rows")
        elif fmt == "npz":
            print(f"{out}: {export.write_npz(fr, names, out)} rows")
        else:
            from thermoguard import mcap_export

            try:
                counts = mcap_export.write_mcap(fr, names, out)
            except ImportError:
                raise UserError("--mcap needs the mcap package: pip install mcap") from None
            print(f"{out}: {counts['messages']} messages on {counts['topics']} topics")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was exported",
              file=sys.stderr)
    return 0
