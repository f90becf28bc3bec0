"""A session report (DESIGN.md, `thermoguard report LOG -o OUT.png`): one figure and a text summary.

The figure shows, against device time: the temperature of every channel with its high and
low limits (dashed), its warnings and trips, the first TRIPPED frame with its cause, the
state and the interlock as colour bands, and the CEM43 dose of every channel with its limit.
A missing reading (a faulted channel, a lost frame) is a gap in a line, never a value.

The summary (`summarize`) is computed from the same arrays and printed, drawn beside the
figure and, with `write_html`, put into a self-contained page with the figure embedded.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thermoguard import frames, protocol

STATE_COLOURS = {"BOOT": "#d9d9d9", "DISARMED": "#a6a6a6", "ARMED": "#4caf50", "TRIPPED": "#e53935"}
INTERLOCK_COLOURS = {1: "#4caf50", 0: "#a6a6a6"}
DPI = 100

# The board's CEM43 counter saturates at (2**30 - 1) units of 2**-10 (firmware/tgfw/dose.py HI_MAX).
DOSE_CEILING = 0x3FFFFFFF / 1024


@dataclass
class ChannelSummary:
    name: str
    high_c: float | None
    low_c: float | None
    dose_limit: float | None
    peak_c: float | None  # None: the channel never had a valid reading
    peak_t: float | None
    at_or_above_high_s: float
    at_or_below_low_s: float
    final_dose: float
    missing_frames: int  # frames without a valid reading


@dataclass
class Trip:
    t_dev_s: float
    causes: str


@dataclass
class Summary:
    log: str
    frames: int
    t_first: float
    t_last: float
    period_s: float
    channels: list[ChannelSummary]
    trips: list[Trip]  # the board's TRIP events, as `thermoguard sim` prints them
    first_tripped: Trip | None  # the first TRIPPED telemetry frame and its cause
    lost_frames: int  # sequence numbers missing
    log_gaps: list[str]  # GAP records of the log (the host lost the stream)
    board_dropped: int  # frames the board could not send (its own counter)
    final_state: str
    final_interlock: bool
    damage: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.t_last - self.t_first

    def rows(self) -> list[tuple[str, str]]:
        """The summary as (what, value) rows: the text, the PNG panel and the HTML table."""
        span = f"{self.duration_s:.2f} s ({self.t_first:.2f} s to {self.t_last:.2f} s), {self.frames} frames"
        interlock = "closed: RF permitted" if self.final_interlock else "open: RF off"
        rows = [
            ("log", Path(self.log).name),
            ("duration", span),
            ("final state", f"{self.final_state}, interlock {interlock}"),
        ]
        for ch in self.channels:
            if ch.peak_c is None:
                rows.append((f"peak {ch.name}", "no valid reading"))
            else:
                rows.append((f"peak {ch.name}", f"{ch.peak_c:.2f} C at {ch.peak_t:.2f} s"))
        for ch in self.channels:
            parts = []
            if ch.high_c is not None:
                parts.append(f">= high {ch.high_c:g} C: {ch.at_or_above_high_s:.1f} s")
            if ch.low_c is not None:
                parts.append(f"<= low {ch.low_c:g} C: {ch.at_or_below_low_s:.1f} s")
            rows.append((f"limits {ch.name}", "; ".join(parts) or "no limits"))
        for ch in self.channels:
            limit = f" of {ch.dose_limit:g} limit" if ch.dose_limit is not None else " (no limit)"
            if ch.final_dose >= DOSE_CEILING:  # the board's counter saturates: the true dose is higher
                rows.append((f"dose {ch.name}", f">= {DOSE_CEILING:.3g} CEM43 (the board's ceiling){limit}"))
            else:
                rows.append((f"dose {ch.name}", f"{ch.final_dose:.3g} CEM43{limit}"))
        if self.trips:
            for trip in self.trips:
                rows.append(("trip", f"{trip.t_dev_s:.2f} s: {trip.causes}"))
        else:
            rows.append(("trips", "none"))
        if self.first_tripped is not None:
            rows.append(("first TRIPPED frame", f"{self.first_tripped.t_dev_s:.2f} s: {self.first_tripped.causes}"))
        gaps = f"{self.lost_frames} frames lost, {len(self.log_gaps)} log gaps, board dropped {self.board_dropped}"
        rows.append(("gaps", gaps))
        for ch in self.channels:
            if ch.missing_frames:
                lost = f"{ch.missing_frames} frames ({ch.missing_frames * self.period_s:.1f} s)"
                rows.append((f"no reading {ch.name}", lost))
        for what in self.damage:
            rows.append(("damage", what))
        return rows

    def text(self) -> str:
        return "\n".join(f"{what}: {value}" for what, value in self.rows())


def _limits(meta: dict, names: list[str]) -> list[dict]:
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    chans = [ch for ch in cfg.get("channels", []) if isinstance(ch, dict)]
    by_name = {ch.get("name"): ch for ch in chans}
    return [by_name.get(n, {}) for n in names]


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def period(fr: frames.Frames) -> float:
    cfg = fr.meta.get("config") if isinstance(fr.meta.get("config"), dict) else {}
    hz = _num(cfg.get("sample_hz"))
    if hz and hz > 0:
        return 1.0 / hz
    d = np.diff(fr.t_dev_s)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 0.1


def _durations(fr: frames.Frames, dt: float) -> np.ndarray:
    """How long each frame's reading stands: until the next frame, at most one period."""
    if not len(fr):
        return np.zeros(0)
    d = np.diff(fr.t_dev_s, append=fr.t_dev_s[-1] + dt)
    return np.clip(d, 0.0, dt)


def trip_events(fr: frames.Frames) -> list[Trip]:
    return [Trip(ev.t_dev_s, ev.text) for _, ev in fr.events() if ev.event == protocol.EV_TRIP]


def first_tripped(fr: frames.Frames, names: list[str]) -> tuple[int, Trip] | None:
    tripped = frames.state_names().index("TRIPPED")
    hits = np.flatnonzero(fr.state == tripped)
    if not len(hits):
        return None
    i = int(hits[0])
    return i, Trip(float(fr.t_dev_s[i]), fr.telemetry(i).first_cause_text(names) or "cause not given")


def lost_frames(fr: frames.Frames) -> int:
    """Sequence numbers between the first and the last that no frame, event or reply carries."""
    seqs = [fr.seq.astype(np.int64)]
    extra = [it.seq for _, _, it in fr.items if isinstance(it, (protocol.Event, protocol.Reply))]
    if extra:
        seqs.append(np.array(extra, np.int64))
    allseq = np.unique(np.concatenate(seqs))
    if len(allseq) < 2:
        return 0
    steps = np.diff(allseq)
    return int(np.sum(steps[(steps > 1) & (steps < 2**31)] - 1))  # a wrap of the 32-bit counter is no loss


def summarize(fr: frames.Frames, names: list[str], damage: list[str] | None = None) -> Summary:
    if not len(fr):
        raise ValueError("the log has no telemetry")
    dt = period(fr)
    dur = _durations(fr, dt)
    chans = []
    for c, (name, lim) in enumerate(zip(names, _limits(fr.meta, names), strict=True)):
        temp = fr.temp_c[:, c]
        valid = ~np.isnan(temp)
        high, low, dose_limit = _num(lim.get("high_c")), _num(lim.get("low_c")), _num(lim.get("dose_cem43"))
        if valid.any():
            k = int(np.nanargmax(temp))
            peak, peak_t = float(temp[k]), float(fr.t_dev_s[k])
        else:
            peak = peak_t = None
        with np.errstate(invalid="ignore"):
            above = float(dur[valid & (temp >= high)].sum()) if high is not None else 0.0
            below = float(dur[valid & (temp <= low)].sum()) if low is not None else 0.0
        chans.append(ChannelSummary(name, high, low, dose_limit, peak, peak_t, above, below,
                                    float(fr.dose_cem43[-1, c]), int((~valid).sum())))
    first = first_tripped(fr, names)
    last = len(fr) - 1
    return Summary(
        log=fr.path, frames=len(fr), t_first=float(fr.t_dev_s[0]), t_last=float(fr.t_dev_s[-1]), period_s=dt,
        channels=chans, trips=trip_events(fr), first_tripped=first[1] if first else None,
        lost_frames=lost_frames(fr),
        log_gaps=[it.reason for _, _, it in fr.items if type(it).__name__ == "Gap"],
        board_dropped=int(fr.dropped[-1]) - int(fr.dropped[0]) if len(fr) else 0,
        final_state=frames.state_names()[int(fr.state[last])], final_interlock=bool(fr.interlock[last]),
        damage=list(damage or []))


def _with_breaks(t: np.ndarray, y: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN where frames are missing (a time step above 1.5 periods), so no line bridges them."""
    if len(t) < 2:
        return t, y
    cut = np.flatnonzero(np.diff(t) > 1.5 * dt) + 1
    return np.insert(t.astype(float), cut, np.nan), np.insert(y.astype(float), cut, np.nan)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index ranges of equal consecutive values (end exclusive)."""
    if not len(values):
        return []
    edges = np.flatnonzero(np.diff(values) != 0) + 1
    bounds = np.concatenate(([0], edges, [len(values)]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _onsets(flags: np.ndarray) -> np.ndarray:
    """Frames where a cause bit is set that the frame before did not have."""
    bits = flags.astype(np.int64)
    prev = np.concatenate(([0], bits[:-1]))
    return np.flatnonzero(bits & ~prev)


def figure(fr: frames.Frames, names: list[str], summary: Summary):
    """The report figure (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(17, 10), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=(2.9, 1), height_ratios=(5, 1.1, 2.6))
    ax_t = fig.add_subplot(grid[0, 0])
    ax_s = fig.add_subplot(grid[1, 0], sharex=ax_t)
    ax_d = fig.add_subplot(grid[2, 0], sharex=ax_t)
    ax_x = fig.add_subplot(grid[:, 1])
    t = fr.t_dev_s.astype(float)
    dt = summary.period_s
    colours = matplotlib.colormaps["tab10"].colors
    limits = _limits(fr.meta, names)
    fig.suptitle(f"thermoguard session {Path(fr.path).name}", fontsize=14, fontweight="bold")

    # Temperatures, limits, warnings and trips.
    for c, name in enumerate(names):
        col = colours[c % len(colours)]
        temp = fr.temp_c[:, c]
        ax_t.plot(*_with_breaks(t, temp, dt), color=col, lw=1.8, label=f"{name}")
        for key, word in (("high_c", "high"), ("low_c", "low")):
            v = _num(limits[c].get(key))
            if v is not None:
                ax_t.axhline(v, color=col, ls="--", lw=1.1, alpha=0.8)
                ax_t.annotate(f"{name} {word} {v:g} C", (1.0, v), xycoords=("axes fraction", "data"),
                              xytext=(-4, 3 if word == "high" else -11), textcoords="offset points",
                              ha="right", fontsize=8, color=col)
        warn = _onsets(fr.warn[:, c])
        if len(warn):
            ax_t.plot(t[warn], _marker_y(temp, warn), ls="none", marker="^", ms=8, mfc="#ffb300", mec="k",
                      mew=0.6, label=f"{name} warning")
        trip = _onsets(fr.trip[:, c])
        if len(trip):
            ax_t.plot(t[trip], _marker_y(temp, trip), ls="none", marker="X", ms=10, mfc="#e53935", mec="k",
                      mew=0.6, label=f"{name} trip")
    for trip in summary.trips:
        ax_t.axvline(trip.t_dev_s, color="#e53935", lw=0.9, ls=":")
        if summary.first_tripped is None or abs(trip.t_dev_s - summary.first_tripped.t_dev_s) > dt / 2:
            ax_t.annotate(f"trip {trip.t_dev_s:.2f} s\n{trip.causes}", (trip.t_dev_s, 0.80),
                          xycoords=("data", "axes fraction"), xytext=(-4, 0), textcoords="offset points",
                          ha="right", va="top", fontsize=8, color="#b71c1c")
    first = first_tripped(fr, names)
    if first is not None:
        i, ft = first
        ax_t.axvline(ft.t_dev_s, color="#e53935", lw=1.8)
        # Above the plot, where no limit label or curve can hide it.
        ax_t.annotate(f"TRIPPED at {ft.t_dev_s:.2f} s: {ft.causes}", (ft.t_dev_s, 1.0),
                      xycoords=("data", "axes fraction"), xytext=(0, 4), textcoords="offset points", va="bottom",
                      ha="center", annotation_clip=False,
                      fontsize=10, fontweight="bold", color="#b71c1c",
                      bbox={"boxstyle": "round", "fc": "white", "ec": "#e53935", "alpha": 0.9})
    ax_t.set_ylabel("temperature (C)")
    ax_t.grid(True, alpha=0.3)
    ax_t.legend(loc="upper left", fontsize=9, ncol=2, framealpha=0.9)
    ax_t.tick_params(labelbottom=False)

    # State and interlock bands.
    state_words = frames.state_names()
    half = dt / 2
    for s, e in _runs(fr.state):
        word = state_words[int(fr.state[s])]
        ax_s.axvspan(t[s] - half, t[e - 1] + half, ymin=0.5, ymax=1.0, color=STATE_COLOURS.get(word, "#ffffff"),
                     lw=0)
    for s, e in _runs(fr.interlock.astype(np.int8)):
        ax_s.axvspan(t[s] - half, t[e - 1] + half, ymin=0.0, ymax=0.5,
                     color=INTERLOCK_COLOURS[int(bool(fr.interlock[s]))], lw=0)
    for s in np.flatnonzero(np.diff(t) > 1.5 * dt):  # lost frames: white, no state known
        ax_s.axvspan(t[s] + half, t[s + 1] - half, color="white", lw=0)
    ax_s.set_ylim(0, 1)
    ax_s.set_yticks([0.25, 0.75], ["interlock", "state"])
    ax_s.axhline(0.5, color="white", lw=1.5)
    ax_s.tick_params(labelbottom=False)
    handles = [Patch(color=STATE_COLOURS[w], label=w) for w in ("DISARMED", "ARMED", "TRIPPED")]
    handles += [Patch(color=INTERLOCK_COLOURS[1], label="RF permitted"), Patch(color=INTERLOCK_COLOURS[0],
                                                                              label="RF off")]
    ax_s.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=5, fontsize=8, frameon=False)

    # Dose.
    for c, name in enumerate(names):
        col = colours[c % len(colours)]
        ax_d.plot(*_with_breaks(t, fr.dose_cem43[:, c], dt), color=col, lw=1.6, label=f"{name} dose")
        v = _num(limits[c].get("dose_cem43"))
        if v is not None:
            ax_d.axhline(v, color=col, ls="--", lw=1.1)
            ax_d.annotate(f"{name} dose limit {v:g}", (1.0, v), xycoords=("axes fraction", "data"),
                          xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=8, color=col)
    ax_d.set_yscale("symlog", linthresh=1.0)
    tops = [float(np.nanmax(fr.dose_cem43))] + [v for v in (_num(lim.get("dose_cem43")) for lim in limits) if v]
    ax_d.set_ylim(0, max(max(tops) * 3, 10.0))
    ax_d.set_ylabel("CEM43 dose (min)")
    ax_d.set_xlabel("device time (s)")
    ax_d.grid(True, alpha=0.3, which="both")
    ax_d.legend(loc="upper left", fontsize=9)
    if len(t):
        ax_t.set_xlim(t[0] - half, t[-1] + half)

    # The summary.
    ax_x.axis("off")
    ax_x.set_title("Summary", loc="left", fontsize=12, fontweight="bold")
    ax_x.text(0.0, 1.0, panel_text(summary), va="top", ha="left", family="monospace", fontsize=10,
              transform=ax_x.transAxes, linespacing=1.35)
    return fig


def _marker_y(temp: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """A marker sits on the reading; without one, at the last valid reading before it."""
    valid = ~np.isnan(temp)
    last = np.maximum.accumulate(np.where(valid, np.arange(len(temp)), -1))[idx]
    return np.where(last >= 0, temp[np.maximum(last, 0)], np.nan)


def panel_text(summary: Summary, width: int = 40) -> str:
    import textwrap

    lines = []
    for what, value in summary.rows():
        lines += textwrap.wrap(f"{what}: {value}", width, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines)


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def html_page(summary: Summary, png: bytes) -> str:
    title = html.escape(f"thermoguard session {Path(summary.log).name}")
    rows = "\n".join(f"<tr><th>{html.escape(w)}</th><td>{html.escape(v)}</td></tr>" for w, v in summary.rows())
    data = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; font-weight: normal; white-space: nowrap; }}
img {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{title}</h1>
<img alt="temperatures, state, interlock and dose against device time" src="data:image/png;base64,{data}">
<table>
{rows}
</table>
</body>
</html>
"""
