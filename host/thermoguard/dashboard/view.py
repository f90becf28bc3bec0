"""The dashboard drawn with rich from a Model: nothing here reads a port or a key.

Colours follow IEC 60601-1-8's alarm priorities: high red (a trip, a frozen stream),
medium yellow (a warning, a fault before a trip, a missing heartbeat), low cyan (link
trouble). ARMED is green; a TRIPPED banner flashes (red and inverse by turns) and names
the first cause and when it happened.
"""

from __future__ import annotations

import time

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from thermoguard.dashboard.keys import Keys
from thermoguard.dashboard.model import HIGH, LOW, MEDIUM, NO_ANSWER, NOT_SENT, OK, TREND_S, Model, Row, dose_text

PRIORITY_STYLE = {HIGH: "bold red", MEDIUM: "bold yellow", LOW: "cyan"}
PRIORITY_MARK = {HIGH: "!!!", MEDIUM: "!! ", LOW: "!  "}
BLOCKS = "▁▂▃▄▅▆▇█"
STALE = "grey50"
DASH = "—"
COMPACT_BELOW = 120  # columns
TEMP_WIDTH = 11  # the longest fault word ("implausible"): a reading is never ellipsized


def banner_style(state: str, priority: str | None, flash_on: bool) -> str:
    if priority == HIGH:
        return "bold white on red" if flash_on else "bold red on black"
    if state == "ARMED":
        return "bold white on green4"
    if priority == MEDIUM:
        return "bold black on yellow"
    return "bold white on grey30"


def render(model: Model, now: float, keys: Keys | None = None, title: str = "thermoguard monitor",
           width: int = 120):
    """Everything on one screen, top to bottom: banner, alarms, channels, trend, link, events,
    keys. Below COMPACT_BELOW columns the channel table drops role and limits, so that no
    reading is ever cut short."""
    flash_on = int(now * 2) % 2 == 0  # twice a second: the TRIPPED banner flashes
    parts = [_banner(model, now, flash_on, title), _alarms(model, now),
             _channels(model, now, compact=width < COMPACT_BELOW), _trend(model, now), _link(model, now),
             _events(model)]
    if keys is not None:
        parts.append(_keys(model, keys, now))
    return Group(*[p for p in parts if p is not None])


def _banner(model: Model, now: float, flash_on: bool, title: str) -> Panel:
    b = model.banner(now)
    style = banner_style(b.state, b.priority, flash_on)
    line = Text()
    line.append(f" {b.state} ", style=style)
    line.append("  ")
    line.append(b.detail, style=PRIORITY_STYLE.get(b.priority, "bold green" if b.armed else "bold"))
    if b.state == "TRIPPED" and model.trip is not None and model.trip.wall is not None:
        line.append(f"  (host clock {time.strftime('%H:%M:%S', time.localtime(model.trip.wall))})", style="red")
    t = model.last
    right = f"device time {t.t_dev_s:.1f} s" if t is not None else ""
    return Panel(line, title=title, title_align="left", subtitle=right, subtitle_align="right",
                 border_style=PRIORITY_STYLE.get(b.priority, "green" if b.armed else "grey50"), box=box.HEAVY)


def _alarms(model: Model, now: float) -> Text | None:
    alarms = model.alarms(now)
    if not alarms:
        return Text(" no alarm", style="green")
    out = Text()
    for k, a in enumerate(alarms[:6]):
        if k:
            out.append("\n")
        out.append(f" {PRIORITY_MARK[a.priority]} {a.priority.upper():<6} ", style=PRIORITY_STYLE[a.priority])
        out.append(a.text, style=PRIORITY_STYLE[a.priority])
    if len(alarms) > 6:
        out.append(f"\n     and {len(alarms) - 6} more", style="grey50")
    return out


def _f(v: float | None, fmt: str, suffix: str = "") -> str:
    return DASH if v is None else f"{v:{fmt}}{suffix}"


def _channels(model: Model, now: float, compact: bool = False) -> Table:
    arrh = model.arrhenius is not None
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, collapse_padding=compact, header_style="bold")
    table.add_column("channel", overflow="fold", min_width=7)
    if not compact:
        table.add_column("role", no_wrap=True, overflow="fold")
    table.add_column("temp °C", justify="right", no_wrap=True, min_width=TEMP_WIDTH)
    if not compact:
        table.add_column("limits °C", justify="right", no_wrap=True, min_width=11)
    table.add_column("margin" if not compact else "margin °C", justify="right", no_wrap=True)
    table.add_column("rise °C/s", justify="right", no_wrap=True, min_width=9)
    table.add_column("CEM43", justify="right", no_wrap=True, min_width=9)
    if arrh:
        table.add_column("Ω", justify="right", no_wrap=True, min_width=8)
    table.add_column("status", min_width=10)  # a fault is in the temperature's place, in red
    for r in model.rows(now):
        table.add_row(*_row_cells(r, arrh, compact), style=STALE if r.stale else None)
    return table


def _row_cells(r: Row, arrh: bool, compact: bool = False) -> list:
    tripped_temp = any(w in r.trips for w in ("high", "low"))
    warned_temp = any(w in r.warnings for w in ("high", "low"))
    if r.stale:
        temp = Text(DASH, style=STALE)
    elif r.temp_c is None:
        temp = Text(r.fault or "no reading", style="bold red")
    else:
        temp = Text(f"{r.temp_c:.2f}", style="bold red" if tripped_temp else "bold yellow" if warned_temp else "bold")
    limits = f"{_f(r.low_c, '.1f')} … {_f(r.high_c, '.1f')}" if (r.low_c, r.high_c) != (None, None) else DASH
    if r.margin_c is None:
        margin = Text(DASH)
    else:
        margin = Text(f"{r.margin_c:+.1f}" + ("" if compact else f" to {r.margin_to}"),
                      style="red" if r.margin_c <= 0 else "yellow" if warned_temp else "")
    rate = _f(r.rate_c_per_s, "+.2f") + (f" / {r.rate_limit:g}" if r.rate_limit is not None else "")
    dose = _dose(r.dose_cem43) + (f" / {r.dose_limit:g}" if r.dose_limit is not None else "")
    cells: list = [Text(r.name, style="bold")]
    if not compact:
        cells.append(r.role)
    cells.append(temp)
    if not compact:
        cells.append(limits)
    cells += [margin, Text(rate, style="yellow" if "rate" in r.warnings else ""),
              Text(dose, style="yellow" if "dose" in r.warnings else "")]
    if arrh:
        cells.append(_f(r.omega, ".3g"))
    status = Text()
    if r.trips:
        status.append("TRIP " + ", ".join(r.trips), style="bold red")
    warnings = [w for w in r.warnings if w not in r.trips]  # a tripped limit is said once
    if warnings:
        status.append(("  " if r.trips else "") + "warn " + ", ".join(warnings), style="yellow")
    cells.append(status)
    return cells


def _dose(v: float | None) -> str:
    return DASH if v is None else dose_text(v)


def sparkline(values: list[float | None], width: int) -> tuple[Text, float | None, float | None]:
    """The last `width` values as unicode blocks; a missing value is a dim dot."""
    values = values[-width:]
    real = [v for v in values if v is not None]
    if not real:
        return Text("·" * len(values), style=STALE), None, None
    lo, hi = min(real), max(real)
    span = max(hi - lo, 1.0)
    out = Text()
    for v in values:
        if v is None:
            out.append("·", style="red")
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, int((v - lo) / span * len(BLOCKS)))], style="bright_blue")
    return out, lo, hi


def _trend(model: Model, now: float) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="grey62")
    stale = model.stale_s(now) is not None
    for i, name in enumerate(model.names or [f"ch{i}" for i in range(len(model.trends))]):
        line, lo, hi = sparkline(model.trend(i), 60)
        if stale:
            line.stylize(STALE)
        span = f"{lo:.1f} … {hi:.1f} °C" if lo is not None else "no reading"
        table.add_row(f"{name:<10}", line, span)
    return Panel(table, title=f"trend, last {TREND_S / 60:.0f} min of device time", title_align="left",
                 border_style="grey37", box=box.ROUNDED)


def _link(model: Model, now: float) -> Text:
    h = model.link_health(now)
    stale = model.stale_s(now)
    out = Text(" link  ", style="bold")
    fps = h["fps"]
    out.append(f"{fps:.1f} frames/s" if fps is not None else "-- frames/s", style="red" if stale else "")
    since = h["since_last_s"]
    out.append("   last frame ")
    out.append(f"{since:.1f} s ago" if since is not None else "never", style="bold red" if stale else "")
    for label, key, bad in (("lost", "lost", "cyan"), ("CRC errors", "crc_errors", "cyan"), ("gaps", "gaps", "cyan")):
        out.append(f"   {label} ")
        out.append(str(h[key]), style=bad if h[key] else "")
    out.append("\n board ", style="bold")
    late = h["max_late_ms"]
    out.append(f"jitter max {late:.1f} ms" if late is not None else "jitter max --")
    out.append("   overruns ")
    out.append(str(h["overruns"]) if h["overruns"] is not None else "--", style="cyan" if h["overruns"] else "")
    out.append("   dropped ")
    out.append(str(h["dropped"]) if h["dropped"] is not None else "--", style="cyan" if h["dropped"] else "")
    if h["host_ok"] is not None and not stale:
        out.append("   heartbeat ")
        out.append("heard" if h["host_ok"] else "missing", style="" if h["host_ok"] else "yellow")
    if h["interlock_on"] is not None and not stale:
        out.append("   interlock ")
        out.append("closed (RF permitted)" if h["interlock_on"] else "open (RF off)",
                   style="green" if h["interlock_on"] else "")
    return out


def _events(model: Model) -> Panel:
    lines = Text()
    for k, (t, text, prio) in enumerate(model.events):
        if k:
            lines.append("\n")
        lines.append(f"{t:8.1f} s  " if t is not None else " " * 11, style="grey62")
        lines.append(text, style=PRIORITY_STYLE.get(prio, ""))
    if not model.events:
        lines.append("none yet", style="grey50")
    return Panel(lines, title="events", title_align="left", border_style="grey37", box=box.ROUNDED)


def _keys(model: Model, keys: Keys, now: float) -> Text:
    out = Text()
    if keys.prompt:
        out.append(" " + keys.prompt, style="bold reverse")
    else:
        out.append(" keys: " + keys.help, style="bold")
    # Newest first, right under the keys: a terminal too short for the whole drawing
    # crops the bottom, and the oldest outcome is the one to lose.
    for a in reversed(model.answers.values()):
        out.append("\n")
        out.append_text(answer_text(a.verb, a.outcome, a.text))
        out.append(f"  ({age_text(now - a.at)})", style="grey50")
    return out


def age_text(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def answer_text(verb: str, outcome: str, text: str) -> Text:
    """What came of a command, in words that tell the board's refusal from the host's failure."""
    out = Text()
    if outcome == OK:
        out.append(" board's answer to ")
        out.append(f"{verb}: ", style="bold")
        out.append("OK", style="green")
    elif outcome == NO_ANSWER:
        out.append(f" no answer to {verb} in time", style="bold red")
        out.append(f": it may have been sent and acted on: check the board's state ({text})", style="red")
    elif outcome == NOT_SENT:
        out.append(f" {verb} not sent", style="bold yellow")
        out.append(f": {text}", style="yellow")
    else:
        out.append(" board's answer to ")
        out.append(f"{verb}: ", style="bold")
        out.append(f"refused: {text}", style="bold yellow")
    return out
