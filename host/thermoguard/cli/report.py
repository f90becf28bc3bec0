"""`thermoguard report LOG -o OUT.png [--html OUT.html]`: plot a session and summarize it."""

from __future__ import annotations

import sys
from pathlib import Path

from thermoguard.cli.common import UserError


def register(sub) -> None:
    p = sub.add_parser("report", help="plot a session: temperatures, limits, trips, state, dose, and a summary")
    p.add_argument("log")
    p.add_argument("-o", "--out", required=True, help="PNG file of the figure")
    p.add_argument("--html", help="also a self-contained HTML page: the figure and the summary as a table")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import export, log, report

    outs = [Path(args.out)] + ([Path(args.html)] if args.html else [])
    check_targets(Path(args.log), outs, args.force)
    try:
        fr, names, damage = export.load(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    if not len(fr):
        raise UserError(f"{args.log} holds no telemetry: there is nothing to plot")
    summary = report.summarize(fr, names, damage)
    png = report.png_bytes(report.figure(fr, names, summary))
    write(outs[0], png)
    if args.html:
        write(outs[1], report.html_page(summary, png).encode("utf-8"))
    print(summary.text())
    for out in outs:
        print(f"wrote {out}")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was used", file=sys.stderr)
    return 0


def check_targets(source: Path, outs: list[Path], force: bool) -> None:
    """An output is never the log itself, never the other output, never an existing file without --force."""
    seen: list[Path] = []
    for out in outs:
        real = out.resolve()
        if source.exists() and real == source.resolve():
            raise UserError(f"{out} is the log being reported: choose another name")
        if real in seen:
            raise UserError(f"{out} is given for both outputs: choose one name for each")
        seen.append(real)
        if out.is_dir():
            raise UserError(f"{out} is a folder: give a file name")
        if out.exists() and not force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")


def write(out: Path, data: bytes) -> None:
    """Through a temporary file renamed into place: a failed write leaves no half file."""
    tmp = out.with_name(out.name + ".part")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
