"""Export a session log (DESIGN.md, "Export CSV"; NumPy arrays; MCAP in mcap_export).

CSV columns: seq,t_dev_s,t_host_s,state,interlock,cause, then per channel
<name>_c,<name>_fault,<name>_cem43. One row per telemetry frame. A channel without a
valid reading has an empty <name>_c (never 0, never -1) and its fault word in
<name>_fault. Times are written exactly: device time as seconds.microseconds, host time
as seconds.nanoseconds. An exported CSV is also a scenario (hil/device/scenario.py).

The frames come from the vectorised loader (frames.load_telemetry), which gives what
protocol.Decoder gives; the writers format them column by column. `write_csv` and
`write_npz` also take the older form, a list of (t_ns, Telemetry), with the same output.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from thermoguard import frames, log, protocol


class ExportError(Exception):
    pass


def channel_names(meta: dict, first: protocol.Telemetry | None) -> list[str]:
    cfg = meta.get("config") or {}
    names = [ch.get("name", f"ch{i}") for i, ch in enumerate(cfg.get("channels", []))]
    if first is not None and len(names) != len(first.channels):
        names = [f"ch{i}" for i in range(len(first.channels))]
    return names


def load(path, check_chain: bool = True) -> tuple[frames.Frames, list[str], list[str]]:
    """The frames of a log, its channel names, and the damage found (empty for an intact log).

    check_chain walks every record as `log.read_log` does (CRCs and the hash chain), so the
    damage words are the careful reader's; without it they are the loader's (CRC damage
    and torn tail only). Raises log.LogError when the file is not a readable log.
    """
    fr = frames.load_telemetry(path)
    if check_chain:
        damage, torn = _careful_damage(path)
    else:
        damage, torn = fr.damage, fr.torn_tail_offset
    words = [f"offset {off}: {what}" for off, what in damage]
    if torn is not None:
        words.append(f"torn tail at offset {torn}")
    names = channel_names(fr.meta, fr.telemetry(0) if len(fr) else None)
    return fr, names, words


def _careful_damage(path):
    with log._File(path) as f:  # the careful reader, without keeping the records
        walk = log._Walk(f)
        for _ in walk:
            pass
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


def write_csv(data, names: list[str], out: Path) -> int:
    if not isinstance(data, frames.Frames):
        return _write_csv_rows(data, names, out)
    fr = data
    n = len(fr)
    columns = [
        [str(x) for x in fr.seq.tolist()],
        [f"{s}.{u:06d}" for s, u in zip(fr.t_s.tolist(), fr.t_us.tolist(), strict=True)],
        [f"{t // 10**9}.{t % 10**9:09d}" for t in fr.t_host_ns.tolist()],
        _lookup(fr.state, frames.state_names()),
        _lookup(fr.interlock.astype(np.uint8), ["0", "1"]),
        _causes(fr, names),
    ]
    fault_words = frames.fault_words()
    for c in range(fr.channels):
        columns += [_numbers(fr.temp_c[:, c]), _lookup(fr.fault[:, c], fault_words), _numbers(fr.dose_cem43[:, c])]
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header(names))
        if n and (fr.n_channels == fr.channels).all():
            w.writerows(zip(*columns, strict=True))
        else:  # frames with other channel counts than the first: as many fields as channels
            for i in range(n):
                w.writerow([col[i] for col in columns[:6 + 3 * int(fr.n_channels[i])]])
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


def _causes(fr: frames.Frames, names: list[str]) -> list[str]:
    """The first trip cause of every frame as Telemetry.first_cause_text gives it."""
    if not len(fr):
        return []
    key = (fr.first_channel.astype(np.int64) << 16) | (fr.first_cause.astype(np.int64) << 8) | fr.first_fault
    uniq, inverse = np.unique(key, return_inverse=True)
    words = []
    for k in uniq.tolist():
        t = protocol.Telemetry(0, 0, 0, 0, 0, 0, 0, k >> 16, (k >> 8) & 0xFF, k & 0xFF, 0, 0, 0, ())
        words.append(t.first_cause_text(names))
    return np.array(words, dtype=object)[inverse.ravel()].tolist()


def write_npz(data, names: list[str], out: Path) -> int:
    if not isinstance(data, frames.Frames):
        return _write_npz_rows(data, names, out)
    fr = data
    n = len(fr)
    arrays = {
        "seq": fr.seq.astype(np.int64),
        "t_dev_s": fr.t_dev_s.astype(np.float64),
        "t_host_ns": fr.t_host_ns.astype(np.int64),
        "state": fr.state.astype(np.int8),
        "interlock": fr.interlock.astype(np.int8),
    }
    for i, name in enumerate(names):
        arrays[f"{name}_c"] = np.ascontiguousarray(fr.temp_c[:, i])
        arrays[f"{name}_fault"] = fr.fault[:, i].astype(np.int8)
        arrays[f"{name}_cem43"] = np.ascontiguousarray(fr.dose_cem43[:, i])
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return n


def _write_csv_rows(rows, names: list[str], out: Path) -> int:
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


def _write_npz_rows(rows, names: list[str], out: Path) -> int:
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
