"""Export a session log (DESIGN.md, "Export CSV"; NumPy arrays).

CSV columns: seq,t_dev_s,t_host_s,state,interlock,cause, then per channel
<name>_c,<name>_fault,<name>_cem43. One row per telemetry frame. A channel without a
valid reading has an empty <name>_c (never 0, never -1) and its fault word in
<name>_fault. Times are written exactly: device time as seconds.microseconds, host time
as seconds.nanoseconds. An exported CSV is also a scenario (hil/device/scenario.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from thermoguard import log, protocol


class ExportError(Exception):
    pass


def channel_names(meta: dict, first: protocol.Telemetry | None) -> list[str]:
    cfg = meta.get("config") or {}
    names = [ch.get("name", f"ch{i}") for i, ch in enumerate(cfg.get("channels", []))]
    if first is not None and len(names) != len(first.channels):
        names = [f"ch{i}" for i in range(len(first.channels))]
    return names


def telemetry(path) -> tuple[list[tuple[int, protocol.Telemetry]], dict, list[str]]:
    """Every telemetry frame of a log with its host time, the log's metadata, and the
    damage found (empty for an intact log)."""
    contents = log.read_log(path)
    damage = [f"offset {off}: {what}" for off, what in contents.damage]
    if contents.torn_tail_offset is not None:
        damage.append(f"torn tail at offset {contents.torn_tail_offset}")
    rows = [(t, item) for t, item in log.decoded_items(path, host_notes=False) if isinstance(item, protocol.Telemetry)]
    return rows, contents.meta, damage


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def header(names: list[str]) -> list[str]:
    cols = ["seq", "t_dev_s", "t_host_s", "state", "interlock", "cause"]
    for n in names:
        cols += [f"{n}_c", f"{n}_fault", f"{n}_cem43"]
    return cols


def write_csv(rows, names: list[str], out: Path) -> int:
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header(names))
        for t_ns, t in rows:
            line = [t.seq, f"{t.t_s}.{t.t_us:06d}", f"{t_ns // 10**9}.{t_ns % 10**9:09d}", t.state_name,
                    1 if t.interlock_on else 0, t.first_cause_text(names)]
            for ch in t.channels:
                line += [_num(ch.temp_c), ch.fault_word, _num(ch.dose_cem43)]
            w.writerow(line)
    return len(rows)


def write_npz(rows, names: list[str], out: Path) -> int:
    n = len(rows)
    arrays = {
        "seq": np.fromiter((t.seq for _, t in rows), dtype=np.int64, count=n),
        "t_dev_s": np.fromiter((t.t_s + t.t_us / 1e6 for _, t in rows), dtype=np.float64, count=n),
        "t_host_ns": np.fromiter((ns for ns, _ in rows), dtype=np.int64, count=n),
        "state": np.fromiter((t.state for _, t in rows), dtype=np.int8, count=n),
        "interlock": np.fromiter((t.interlock_on for _, t in rows), dtype=np.int8, count=n),
    }
    for i, name in enumerate(names):
        arrays[f"{name}_c"] = np.fromiter(
            (np.nan if t.channels[i].temp_c is None else t.channels[i].temp_c for _, t in rows), np.float64, n)
        arrays[f"{name}_fault"] = np.fromiter((t.channels[i].fault for _, t in rows), np.int8, n)
        arrays[f"{name}_cem43"] = np.fromiter((t.channels[i].dose_cem43 for _, t in rows), np.float64, n)
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return n
