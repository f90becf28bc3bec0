"""`thermoguard export LOG --csv OUT [--npz OUT] [--mcap OUT]`: convert a log."""

from __future__ import annotations

import sys
from pathlib import Path

from thermoguard.cli.common import UserError, check_outputs, write_through

FORMATS = ("csv", "npz", "mcap")


def register(sub) -> None:
    p = sub.add_parser("export", help="convert a log to CSV, NumPy arrays or MCAP")
    p.add_argument("log")
    p.add_argument("--csv", help="CSV file (DESIGN.md columns)")
    p.add_argument("--npz", help="NumPy .npz file: arrays per channel plus time, state and interlock")
    p.add_argument("--mcap", help="MCAP file (Foxglove, PlotJuggler): a JSON topic per channel, state and events")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is one only on a terminal, for a large log)")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import export, frames, log, progress

    targets = [(fmt, Path(p)) for fmt, p in ((f, getattr(args, f)) for f in FORMATS) if p]
    if not targets:
        raise UserError("say what to write: --csv OUT, --npz OUT and/or --mcap OUT")
    check_outputs(Path(args.log), [out for _, out in targets], args.force)
    with progress.bar(args.log, enabled=not args.no_progress) as bar:
        try:
            fr, _, damage = export.load(args.log, bar=bar)
        except log.LogError as e:
            raise UserError(str(e)) from None
        layout = frames.channel_layout(fr)
        for fmt, out in targets:
            step = bar.task(f"writing {out.name}", len(fr), "frames")
            print(f"{out}: {write(fmt, fr, layout, out, step)}")
    for what in export.changes(fr, layout):
        print(f"thermoguard: warning: {what}", file=sys.stderr)
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was exported",
              file=sys.stderr)
    return 0


def write(fmt: str, fr, names, out: Path, step=None) -> str:
    """Write one output; returns what was written, for the user."""
    from thermoguard import export, mcap_export

    if fmt == "csv":
        return f"{write_through(out, lambda tmp: export.write_csv(fr, names, tmp, step))} rows"
    if fmt == "npz":
        return f"{write_through(out, lambda tmp: export.write_npz(fr, names, tmp, step))} rows"
    counts = write_through(out, lambda tmp: mcap_export.write_mcap(fr, names, tmp, step))
    return f"{counts['messages']} messages on {counts['topics']} topics"
