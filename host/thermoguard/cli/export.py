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
    check_targets(Path(args.log), [out for _, out in targets], args.force)
    try:
        fr, names, damage = export.load(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    for fmt, out in targets:
        print(f"{out}: {write(fmt, fr, names, out)}")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was exported",
              file=sys.stderr)
    return 0


def check_targets(source: Path, outs: list[Path], force: bool) -> None:
    """Nothing the user recorded is ever lost: an output is never the log itself, never
    another output, and never an existing file without --force."""
    seen: list[Path] = []
    for out in outs:
        real = out.resolve()
        if source.exists() and real == source.resolve():
            raise UserError(f"{out} is the log being exported: choose another name")
        if real in seen:
            raise UserError(f"{out} is given for two outputs: choose one name for each")
        seen.append(real)
        if out.is_dir():
            raise UserError(f"{out} is a folder: give a file name")
        if out.exists() and not force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")


def write(fmt: str, fr, names, out: Path) -> str:
    """Write one output through a temporary file renamed into place, so a failed write
    leaves no half file; returns what was written, for the user."""
    from thermoguard import export, mcap_export

    tmp = out.with_name(out.name + ".part")
    try:
        if fmt == "csv":
            what = f"{export.write_csv(fr, names, tmp)} rows"
        elif fmt == "npz":
            what = f"{export.write_npz(fr, names, tmp)} rows"
        else:
            counts = mcap_export.write_mcap(fr, names, tmp)
            what = f"{counts['messages']} messages on {counts['topics']} topics"
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return what
