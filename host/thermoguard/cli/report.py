"""`thermoguard report LOG -o OUT.png [--html OUT.html]`: plot a session and summarize it."""

from __future__ import annotations

import sys
from pathlib import Path

from thermoguard.cli.common import UserError, check_outputs, write_through


def register(sub) -> None:
    p = sub.add_parser("report", help="plot a session: temperatures, limits, trips, state, dose, and a summary")
    p.add_argument("log")
    p.add_argument("-o", "--out", required=True, help="PNG file of the figure")
    p.add_argument("--html", help="also a self-contained HTML page: the figure and the summary as a table")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard import export, frames, log, report

    outs = [Path(args.out)] + ([Path(args.html)] if args.html else [])
    check_outputs(Path(args.log), outs, args.force)
    try:
        fr, names, damage = export.load(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    if not len(fr):
        raise UserError(f"{args.log} holds no telemetry: there is nothing to plot")
    layout = frames.channel_layout(fr)
    if not layout.uniform:  # another configuration during the session: a line per sensor
        for change in export.changes(fr, layout, result="the report draws each channel on its own, with gaps "
                                                         "where a frame does not have it"):
            print(f"thermoguard: warning: {change}", file=sys.stderr)
        fr, names = frames.by_name(fr, layout), list(layout.names)
    summary = report.summarize(fr, names, damage)
    png = report.png_bytes(report.figure(fr, names, summary))
    write_through(outs[0], lambda tmp: tmp.write_bytes(png))
    if args.html:
        page = report.html_page(summary, png).encode("utf-8")
        write_through(outs[1], lambda tmp: tmp.write_bytes(page))
    print(summary.text())
    for out in outs:
        print(f"wrote {out}")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was used", file=sys.stderr)
    return 0
