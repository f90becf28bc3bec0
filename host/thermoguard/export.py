"""Export a session log (DESIGN.md, "Export CSV"; NumPy arrays; MCAP in mcap_export).

CSV columns: seq,t_dev_s,t_host_s,state,interlock,cause, then per channel
<name>_c,<name>_fault,<name>_cem43. One row per telemetry frame. A channel without a
valid reading has an empty <name>_c (never 0, never -1) and its fault word in
<name>_fault. Times are written exactly: device time as seconds.microseconds, host time
as seconds.nanoseconds. An exported CSV is also a scenario (hil/device/scenario.py).

A log whose channel set changes (the board was flashed with another configuration during
a gap) is still one table: the channels are the union of every configuration's channel
names in order of first appearance (frames.channel_layout says how names are found), and
a channel a frame does not have is empty in all three of its CSV cells; in npz its
<name>_c and <name>_cem43 are NaN and its <name>_fault is NO_CHANNEL (-1), never a fault
code (those are 0 and up). `changes` words each change for the user.

The frames come from the vectorised loader (frames.load_telemetry), which gives what
protocol.Decoder gives; the writers format them column by column. `write_csv` and
`write_npz` also take the older form, a list of (t_ns, Telemetry), with the same output.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from thermoguard import frames, log, progress, protocol

NO_CHANNEL = -1  # npz <name>_fault of a frame that has no such channel


class ExportError(Exception):
    pass


def _layout(fr: frames.Frames, names) -> frames.Layout:
    """names is a Layout, or the channel names by index (every frame's channel c is names[c])."""
    return names if isinstance(names, frames.Layout) else frames.index_layout(fr, names)


def changes(fr: frames.Frames, layout: frames.Layout, at_most: int = 5,
            result: str = "the export has a column for every channel, empty where a frame does not have it",
            ) -> list[str]:
    """One sentence per change of the channel set, for the user."""
    out = []
    for before, after in layout.changes()[:at_most]:
        i = after.start
        unnamed = "" if after.named else (f" (configuration {after.config_hash:08x}, whose channel names the log "
                                          "does not record)")
        out.append(f"the channels change at frame {i} (seq {int(fr.seq[i])}, device time {fr.t_dev_s[i]:.6f} s) "
                   f"from {', '.join(before.names) or 'none'} to {', '.join(after.names) or 'none'}{unnamed}; "
                   + result)
    more = len(layout.changes()) - at_most
    if more > 0:
        out.append(f"the channels change {more} more times after those")
    return out


def channel_names(meta: dict, first: protocol.Telemetry | None) -> list[str]:
    cfg = meta.get("config") or {}
    names = [ch.get("name", f"ch{i}") for i, ch in enumerate(cfg.get("channels", []))]
    if first is not None and len(names) != len(first.channels):
        names = [f"ch{i}" for i in range(len(first.channels))]
    return names


def load(path, check_chain: bool = True, bar=None) -> tuple[frames.Frames, list[str], list[str]]:
    """The frames of a log, its channel names, and the damage found (empty for an intact log).

    check_chain walks every record as `log.read_log` does (CRCs and the hash chain), so the
    damage words are the careful reader's; without it they are the loader's (CRC damage
    and torn tail only). bar (a progress.Bar) shows both as they go. Raises log.LogError
    when the file is not a readable log.
    """
    size = _size(path)
    fr = frames.load_telemetry(path, progress=bar.task("loading", size) if bar is not None else None)
    if check_chain:
        damage, torn = _careful_damage(path, bar.task("checking", size) if bar is not None else None)
    else:
        damage, torn = fr.damage, fr.torn_tail_offset
    words = [f"offset {off}: {what}" for off, what in damage]
    if torn is not None:
        words.append(f"torn tail at offset {torn}")
    names = channel_names(fr.meta, fr.telemetry(0) if len(fr) else None)
    return fr, names, words


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _careful_damage(path, step=None):
    with log._File(path) as f:  # the careful reader, without keeping the records
        walk = log._Walk(f)
        if step is None:
            for _ in walk:
                pass
        else:
            mark = 0
            for rec in walk:
                off = rec[0]
                if off >= mark:
                    step(off)
                    mark = off + progress.STEP_BYTES
            step(f.size)
        return walk.damage, walk.torn_tail_offset


def telemetry(path) -> tuple[list[tuple[int, protocol.Telemetry]], dict, list[str]]:
    """Every telemetry frame of a log with its host time, the log's metadata, and the
    damage found (empty for an intact log). The row form of `load`."""
    fr, _, damage = load(path)
    return [(int(fr.t_host_ns[i]), fr.telemetry(i)) for i in range(len(fr))], fr.meta, damage


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def header(names: list[str]) -> list[str]:
    cols = ["seq", "t_dev_s", "t_host_s", "state", "interlock", "cause"]
    for n in names:
        cols += [f"{n}_c", f"{n}_fault", f"{n}_cem43"]
    return cols


BLOCK = 65536  # rows formatted and written at a time: bounded memory, and a step of progress


def write_csv(data, names, out: Path, step=None) -> int:
    """names: a frames.Layout, or channel names by index. step(rows written), when given,
    is told as the rows go out."""
    if not isinstance(data, frames.Frames):
        return _write_csv_rows(data, names, out)
    fr = data
    n = len(fr)
    lay = _layout(fr, names)
    states, fault_words = frames.state_names(), frames.fault_words() + [""]  # index -1: no such channel
    causes = _causes(fr, lay)
    temp = lay.per_column(fr.temp_c, np.nan)
    fault = lay.per_column(fr.fault.astype(np.int16), NO_CHANNEL)
    dose = lay.per_column(fr.dose_cem43, np.nan)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header(lay.names))
        for lo in range(0, n, BLOCK):
            hi = min(n, lo + BLOCK)
            columns = [
                [str(x) for x in fr.seq[lo:hi].tolist()],
                [f"{s}.{u:06d}" for s, u in zip(fr.t_s[lo:hi].tolist(), fr.t_us[lo:hi].tolist(), strict=True)],
                [f"{t // 10**9}.{t % 10**9:09d}" for t in fr.t_host_ns[lo:hi].tolist()],
                _lookup(fr.state[lo:hi], states),
                _lookup(fr.interlock[lo:hi].astype(np.uint8), ["0", "1"]),
                causes[lo:hi],
            ]
            for c in range(len(lay.names)):
                columns += [_numbers(temp[lo:hi, c]), _lookup(fault[lo:hi, c], fault_words),
                            _numbers(dose[lo:hi, c])]
            w.writerows(zip(*columns, strict=True))
            if step is not None:
                step(hi)
    return n


def _numbers(values: np.ndarray) -> list[str]:
    """repr of every float, "" for NaN (no reading)."""
    out = list(map(repr, values.tolist()))
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = ""
    return out


def _lookup(codes: np.ndarray, words: list[str]) -> list[str]:
    table = np.array(words, dtype=object)
    return table[codes.astype(np.intp)].tolist()


def _causes(fr: frames.Frames, names) -> list[str]:
    """The first trip cause of every frame as Telemetry.first_cause_text gives it, with the
    channel names of the frame's own configuration."""
    if not len(fr):
        return []
    lay = _layout(fr, names)
    starts = np.array([seg.start for seg in lay.segments] or [0])
    seg = np.searchsorted(starts, np.arange(len(fr)), side="right") - 1
    key = ((seg.astype(np.int64) << 24) | (fr.first_channel.astype(np.int64) << 16)
           | (fr.first_cause.astype(np.int64) << 8) | fr.first_fault)
    uniq, inverse = np.unique(key, return_inverse=True)
    words = []
    for k in uniq.tolist():
        t = protocol.Telemetry(0, 0, 0, 0, 0, 0, 0, (k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF, 0, 0, 0, ())
        words.append(t.first_cause_text(list(lay.segments[k >> 24].names) if lay.segments else lay.names))
    return np.array(words, dtype=object)[inverse.ravel()].tolist()


def write_npz(data, names, out: Path, step=None) -> int:
    """names: a frames.Layout, or channel names by index. step(rows), when given, is told at the end."""
    if not isinstance(data, frames.Frames):
        return _write_npz_rows(data, names, out)
    fr = data
    lay = _layout(fr, names)
    arrays = {
        "seq": fr.seq.astype(np.int64),
        "t_dev_s": fr.t_dev_s.astype(np.float64),
        "t_host_ns": fr.t_host_ns.astype(np.int64),
        "state": fr.state.astype(np.int8),
        "interlock": fr.interlock.astype(np.int8),
    }
    temp = lay.per_column(fr.temp_c, np.nan)
    fault = lay.per_column(fr.fault.astype(np.int16), NO_CHANNEL)
    dose = lay.per_column(fr.dose_cem43, np.nan)
    for i, name in enumerate(lay.names):
        arrays[f"{name}_c"] = np.ascontiguousarray(temp[:, i])
        arrays[f"{name}_fault"] = fault[:, i].astype(np.int8)
        arrays[f"{name}_cem43"] = np.ascontiguousarray(dose[:, i])
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    if step is not None:
        step(len(fr))
    return len(fr)


def _rows_layout(rows, names) -> tuple[list[str], list[list[int]], list[list[str]]]:
    """For the row form: the column names, and per row the column and the name of each channel."""
    if isinstance(names, frames.Layout):
        cols = [[int(u) for u in names.column[i, :len(t.channels)]] for i, (_, t) in enumerate(rows)]
        return names.names, cols, [[names.names[u] for u in c] for c in cols]
    width = max([len(t.channels) for _, t in rows] + [len(names)])
    full = list(names) + [f"ch{c}" for c in range(len(names), width)]
    cols = [list(range(len(t.channels))) for _, t in rows]
    return full, cols, [full[:len(c)] for c in cols]


def _write_csv_rows(rows, names, out: Path) -> int:
    """The row form of write_csv, one frame at a time."""
    columns, cols, row_names = _rows_layout(rows, names)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header(columns))
        for (t_ns, t), where, own in zip(rows, cols, row_names, strict=True):
            line = [t.seq, f"{t.t_s}.{t.t_us:06d}", f"{t_ns // 10**9}.{t_ns % 10**9:09d}", t.state_name,
                    1 if t.interlock_on else 0, t.first_cause_text(own)]
            cells = [["", "", ""] for _ in columns]
            for u, ch in zip(where, t.channels, strict=True):
                cells[u] = [_num(ch.temp_c), ch.fault_word, _num(ch.dose_cem43)]
            for c in cells:
                line += c
            w.writerow(line)
    return len(rows)


def _write_npz_rows(rows, names, out: Path) -> int:
    """The row form of write_npz, one frame at a time."""
    n = len(rows)
    columns, cols, _ = _rows_layout(rows, names)
    arrays = {
        "seq": np.fromiter((t.seq for _, t in rows), dtype=np.int64, count=n),
        "t_dev_s": np.fromiter((t.t_s + t.t_us / 1e6 for _, t in rows), dtype=np.float64, count=n),
        "t_host_ns": np.fromiter((ns for ns, _ in rows), dtype=np.int64, count=n),
        "state": np.fromiter((t.state for _, t in rows), dtype=np.int8, count=n),
        "interlock": np.fromiter((t.interlock_on for _, t in rows), dtype=np.int8, count=n),
    }
    temp = np.full((n, len(columns)), np.nan)
    fault = np.full((n, len(columns)), NO_CHANNEL, np.int8)
    dose = np.full((n, len(columns)), np.nan)
    for i, ((_, t), where) in enumerate(zip(rows, cols, strict=True)):
        for u, ch in zip(where, t.channels, strict=True):
            temp[i, u] = np.nan if ch.temp_c is None else ch.temp_c
            fault[i, u] = ch.fault
            dose[i, u] = ch.dose_cem43
    for u, name in enumerate(columns):
        arrays[f"{name}_c"] = temp[:, u].copy()
        arrays[f"{name}_fault"] = fault[:, u].copy()
        arrays[f"{name}_cem43"] = dose[:, u].copy()
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return n
