"""`thermoguard export LOG --csv OUT [--npz OUT]`: convert a log."""

from __future__ import annotations

import sys
from pathlib import Path

from thermoguard.cli.common import UserError


def register(sub) -> None:
    p = sub.add_parser("export", help="convert a log to CSV or NumPy arrays")
    p.add_argument("log")
    p.add_argument("--csv", help="CSV file (DESIGN.md columns)")
    p.add_argument("--npz", help="NumPy .npz file: arrays per channel plus time, state and interlock")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import export, log

    targets = [(fmt, Path(p)) for fmt, p in (("csv", args.csv), ("npz", args.npz)) if p]
    if not targets:
        raise UserError("say what to write: --csv OUT and/or --npz OUT")
    for _, out in targets:
        if out.exists() and not args.force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")
    try:
        rows, meta, damage = export.telemetry(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    names = export.channel_names(meta, rows[0][1] if rows else None)
    for fmt, out in targets:
        count = export.write_csv(rows, names, out) if fmt == "csv" else export.write_npz(rows, names, out)
        print(f"{out}: {count} rows")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was exported",
              file=sys.stderr)
    return 0


