"""Host figures for `make bench`: loading a log, and the recorder's CPU use.

    .venv/bin/python bench/host_bench.py [--frames 1000000] [--channels 8] [--keep DIR] [--verify-exact]

1. Loading: an 8-channel log of 1,000,000 telemetry frames (10 Hz, with an event and
   a line of board text every 10,000 frames), made with the protocol's encoders and
   LogWriter, is loaded with `thermoguard.frames.load_telemetry`; the same data is
   exported to CSV and loaded with numpy's own readers: the same data, every column with
   its words, by `np.loadtxt` (its C parser; words as str, then as bytes) and by
   `np.genfromtxt` (on the first 100,000 rows); and part of it, by `np.loadtxt` of the
   numeric columns with empty readings as NaN, and as if none could be empty (true of
   this file only). All but genfromtxt on the whole CSV. Frames per second for each, and
   the ratios; the 20x target is against the fastest reader of the same data. The same
   log is checked with `thermoguard.log.verify` (header, every record CRC, the hash
   chain, every frame decoded); with --verify-exact also with the record-by-record
   reference (`verify(path, exact=True)`, about half a minute), whose report must be the
   same.
2. Recorder: a thread feeds a LogWriter (and a Decoder, as a recorder does) with
   8-channel telemetry frames at 10 Hz for 10 s; process CPU time (every thread, the
   fsync thread included) over wall time, as percent of one core.

Prints a table and writes build/host_bench.json. docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "firmware")]

from thermoguard import export, frames, log, protocol  # noqa: E402

NAMES = ("tip", "foramen", "root_l", "root_r", "cord", "skin", "ref_a", "ref_b")


def config(n_channels: int) -> dict:
    chans = []
    for i in range(n_channels):
        ablation = i == 0
        chans.append({"name": NAMES[i] if i < len(NAMES) else f"ch{i}", "chip": "max31855", "cs": 10 + i,
                      "tc_type": "K", "role": "ablation" if ablation else "protective",
                      "high_c": 95.0 if ablation else 45.0, "low_c": 10.0,
                      "rate_c_per_s": 10.0 if ablation else 2.0, **({} if ablation else {"dose_cem43": 40.0})})
    return {"sample_hz": 10, "stale_ms": 300, "host_timeout_s": 5, "channels": chans}


def payload_dtype(n_channels: int) -> np.dtype:
    """The telemetry payload as a packed little-endian numpy record (docs/protocol.md)."""
    ch = np.dtype([("temp", "<i4"), ("cj", "<i2"), ("fault", "u1"), ("warn", "u1"), ("trip", "u1"),
                   ("rate", "<i4"), ("dose_hi", "<u4"), ("dose_lo", "<u2")])
    return np.dtype([("version", "u1"), ("kind", "u1"), ("seq", "<u4"), ("t_s", "<u4"), ("t_us", "<u4"),
                     ("state", "u1"), ("flags", "u1"), ("config_hash", "<u4"), ("global_causes", "u1"),
                     ("first_channel", "u1"), ("first_cause", "u1"), ("first_fault", "u1"),
                     ("max_late_us", "<u4"), ("overruns", "<u4"), ("dropped", "<u4"), ("n_channels", "u1"),
                     ("ch", ch, (n_channels,))])


def synth_payloads(n: int, n_channels: int, seed: int = 1) -> np.ndarray:
    """A session's telemetry: healthy, ARMED, temperatures wandering between 36 and 95 C."""
    rng = np.random.default_rng(seed)
    p = np.zeros(n, payload_dtype(n_channels))
    p["version"], p["kind"] = protocol.VERSION, protocol.KIND_TELEMETRY
    k = np.arange(n, dtype=np.int64)
    p["seq"] = k % protocol.SEQ_MOD
    t_us = 5_000_000 + k * 100_000 + rng.integers(0, 50, n)  # device time from 5 s, 10 Hz
    p["t_s"], p["t_us"] = t_us // 1_000_000, t_us % 1_000_000
    p["state"], p["flags"], p["config_hash"] = 2, 0b11101, 0x1A2B3C4D
    p["first_channel"] = 255
    p["max_late_us"] = 1800
    p["n_channels"] = n_channels
    walk = np.cumsum(rng.normal(0, 0.02, (n, n_channels)), axis=0)
    base = np.array([80.0] + [38.0] * (n_channels - 1))[:n_channels]
    temp = np.clip(base + walk % 10.0, 36.0, 95.0)
    ch = p["ch"]
    ch["temp"] = np.round(temp * 1024).astype(np.int32)
    ch["cj"] = np.round((25.0 + rng.normal(0, 0.2, (n, n_channels))) * 64).astype(np.int16)
    ch["rate"] = rng.integers(-2048, 2048, (n, n_channels))
    dose = np.cumsum(np.full((n, n_channels), 1e-5), axis=0)
    ch["dose_hi"] = (dose * 1024).astype(np.uint32)
    ch["dose_lo"] = ((dose * 1024 - ch["dose_hi"]) * 65536).astype(np.uint16)
    return p


def encode_frames(payloads: np.ndarray) -> np.ndarray:
    """The wire frames (00 COBS(payload + CRC) 00) of payloads, as an (n, len + 7) array.

    Vectorised COBS (one block: payloads are below 254 bytes); CRC-32 with zlib per frame.
    """
    n, size = len(payloads), payloads.dtype.itemsize
    body = payloads.view(np.uint8).reshape(n, size)
    raw = np.empty((n, size + 4), np.uint8)
    raw[:, :size] = body
    rows = body.tobytes()
    crc = np.fromiter((zlib.crc32(rows[i * size:(i + 1) * size]) for i in range(n)), np.uint32, n)
    raw[:, size:] = crc.astype("<u4").view(np.uint8).reshape(n, 4)
    m = size + 4
    pos = np.where(raw == 0, np.arange(m, dtype=np.int16), np.int16(m))
    nxt = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]  # next zero at or after j
    wire = np.zeros((n, m + 3), np.uint8)
    wire[:, 1] = nxt[:, 0] + 1
    after = np.empty_like(nxt)
    after[:, :-1] = nxt[:, 1:]
    after[:, -1] = m
    code = (after - np.arange(m, dtype=np.int16)).astype(np.uint8)  # a zero at j: distance to the next
    wire[:, 2:m + 2] = np.where(raw == 0, code, raw)
    return wire


def make_log(path: Path, n: int, n_channels: int = 8, seed: int = 1, extras_every: int = 10_000) -> Path:
    """A log of n telemetry frames at 10 Hz as a recorder would write it."""
    payloads = synth_payloads(n, n_channels, seed)
    wire = encode_frames(payloads)
    for i in range(min(n, 200)):  # the vectorised encoder is the protocol's, byte for byte
        p = payloads[i]
        c = p["ch"]
        ref = protocol.encode_frame(protocol.telemetry_payload(
            int(p["seq"]), int(p["t_s"]), int(p["t_us"]), int(p["state"]), int(p["flags"]),
            int(p["global_causes"]), int(p["first_channel"]), int(p["first_cause"]), int(p["first_fault"]),
            int(p["max_late_us"]), int(p["overruns"]), int(p["dropped"]), c["temp"].tolist(),
            [int(x) << 4 for x in c["cj"]], c["fault"].tolist(), c["warn"].tolist(), c["trip"].tolist(),
            c["rate"].tolist(), c["dose_hi"].tolist(), c["dose_lo"].tolist(), config_hash=int(p["config_hash"])))
        assert wire[i].tobytes() == ref, f"frame {i} differs from protocol.encode_telemetry"
    cfg = config(n_channels)
    t0 = 1_764_000_000_000_000_000
    host = t0 + np.arange(n, dtype=np.int64) * 100_000_000 + 2_000_000
    data = wire.tobytes()
    size = wire.shape[1]
    seq = n
    with log.LogWriter.create(path, {"board": "virtual", "firmware": "0.1.0", "config": cfg,
                                     "config_hash": "1a2b3c4d"}, force=True, sync_interval_s=5.0) as w:
        for i in range(n):
            w.write_bytes(data[i * size:(i + 1) * size], int(host[i]))
            if extras_every and i % extras_every == extras_every - 1:
                t = int(payloads[i]["t_s"]), int(payloads[i]["t_us"])
                w.write_bytes(protocol.encode_event(seq, *t, protocol.EV_WARNING, 2, "foramen: high warning"),
                              int(host[i]) + 1000)
                w.write_bytes(b"gc: collected\n", int(host[i]) + 2000)
                seq += 1
    return path


def timed(fn, repeat: int = 3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def runs(fn, repeat: int):
    """The times of `repeat` calls of fn (each result dropped before the next call)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        del out
    return times


def verifying(path: Path, n: int, exact: bool) -> dict:
    t_fast, rep = timed(lambda: log.verify(path))
    assert rep.ok and rep.telemetry == n, rep.summary()
    out = {"verify_s": t_fast, "verify_frames_per_s": n / t_fast}
    if exact:
        t_exact, ref = timed(lambda: log.verify(path, exact=True), repeat=1)
        assert ref == rep, "verify and verify(exact=True) disagree"
        out |= {"verify_exact_s": t_exact, "verify_exact_frames_per_s": n / t_exact, "verify_speedup": t_exact / t_fast}
    return out


def loading(n: int, n_channels: int, work: Path) -> dict:
    path = work / f"bench-{n_channels}ch-{n}.tglog"
    t = time.perf_counter()
    if not path.exists():
        make_log(path, n, n_channels)
    made = time.perf_counter() - t
    # One load first, untimed: numba loads its compiled loops, and the process touches
    # its first few hundred MB of memory, which this virtual machine makes slow (up to
    # seconds). The CSV readers, timed later, run in a process that has done both.
    fr = frames.load_telemetry(path)
    assert len(fr) == n and fr.fast == n, (len(fr), fr.fast)
    del fr
    fast_runs = runs(lambda: frames.load_telemetry(path), 5)
    t_fast = min(fast_runs)
    t_one = min(runs(lambda: frames.load_telemetry(path, threads=1), 3))
    fr = frames.load_telemetry(path)
    t_scan, _ = timed(lambda: log.scan_records(path))
    csv_path = path.with_suffix(".csv")
    t = time.perf_counter()
    export.write_csv(fr, fr.names, csv_path)
    t_export = time.perf_counter() - t
    cols = export.header(fr.names)
    numeric = [i for i, c in enumerate(cols) if c in ("seq", "t_dev_s", "t_host_s", "interlock")
               or c.endswith("_c") or c.endswith("_cem43")]
    maybe_empty = [i for i, c in enumerate(cols) if c.endswith("_c")]  # no reading: an empty value

    def nan_if_empty(s: str) -> float:
        return float(s) if s else np.nan

    # 1. The same data as the log gives: every column of the export, numbers as numbers
    #    (empty readings as NaN) and words as strings, by numpy's C parser.
    #    Words as numpy's text type (str, 4 bytes a character), and as bytes.
    def every_column(text: str):
        dtype = [(c, text if c in ("state", "cause") or c.endswith("_fault")
                  else ("i8" if c in ("seq", "interlock") else "f8")) for c in cols]
        return np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=dtype,
                          converters={i: nan_if_empty for i in maybe_empty})

    t_all, arr = timed(lambda: every_column("U16"))
    assert len(arr) == n and np.array_equal(arr["seq"], fr.seq) and np.array_equal(arr[cols[6]], fr.temp_c[:, 0])
    assert (arr["state"][:3] == "ARMED").all()
    del arr
    t_bytes, arr = timed(lambda: every_column("S16"))
    assert len(arr) == n and (arr["state"][:3] == b"ARMED").all()
    del arr
    # 2. Only the numeric columns, empty readings as NaN.
    t_num, arr = timed(lambda: np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=numeric,
                                          converters={i: nan_if_empty for i in maybe_empty}))
    assert arr.shape == (n, len(numeric))
    del arr
    # 3. Only the numeric columns, read as if no value could be empty: this file has none,
    #    but a session with a faulted channel does, and this read then fails.
    t_csv, arr = timed(lambda: np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=numeric))
    assert arr.shape == (n, len(numeric))
    assert np.allclose(arr[:, 1], fr.t_dev_s, rtol=0, atol=1e-9) and np.array_equal(arr[:, 4], fr.temp_c[:, 0])
    del arr
    # 4. numpy's reader for files with missing values, on the first `part` rows (slow).
    part = min(n, 100_000)
    part_path = csv_path.with_name(csv_path.stem + f"-first{part}.csv")
    with open(csv_path) as src, open(part_path, "w") as dst:
        for _ in range(part + 1):
            dst.write(src.readline())
    t_gen, arr = timed(lambda: np.genfromtxt(part_path, delimiter=",", names=True, dtype=None,
                                             encoding="utf-8"), repeat=1)
    assert len(arr) == part
    per_frame = t_fast / n
    return {"frames": n, "channels": n_channels, "log_bytes": path.stat().st_size,
            "csv_bytes": csv_path.stat().st_size, "make_log_s": made, "export_csv_s": t_export,
            "load_telemetry_s": t_fast, "load_telemetry_frames_per_s": n / t_fast,
            "load_telemetry_runs_s": fast_runs, "load_telemetry_median_s": float(np.median(fast_runs)),
            "load_telemetry_1thread_s": t_one, "load_telemetry_1thread_frames_per_s": n / t_one,
            "scan_records_s": t_scan,
            "np_loadtxt_every_column_s": t_all, "speedup_every_column": t_all / t_fast,
            "np_loadtxt_every_column_bytes_s": t_bytes, "speedup_every_column_bytes": t_bytes / t_fast,
            "np_loadtxt_numeric_nan_s": t_num, "speedup_numeric_nan": t_num / t_fast,
            "np_loadtxt_s": t_csv, "np_loadtxt_frames_per_s": n / t_csv, "speedup": t_csv / t_fast,
            "speedup_1thread": t_csv / t_one,
            "csv_part_rows": part,
            "np_genfromtxt_s": t_gen, "np_genfromtxt_frames_per_s": part / t_gen,
            "speedup_genfromtxt": (t_gen / part) / per_frame,
            "speedup_same_data": min(t_all, t_bytes, t_gen * n / part) / t_fast,
            "speedup_same_data_median": min(t_all, t_bytes, t_gen * n / part) / float(np.median(fast_runs))}


def recorder_cpu(work: Path, seconds: float = 10.0, hz: float = 10.0, n_channels: int = 8) -> dict:
    wire = encode_frames(synth_payloads(int(seconds * hz) + 1, n_channels, seed=2))
    frames_bytes = [row.tobytes() for row in wire]
    path = work / "recorder-cpu.tglog"
    dec = protocol.Decoder()
    w = log.LogWriter.create(path, {"config": config(n_channels)}, force=True)
    done = []

    def feed():
        start = time.monotonic()
        for i, fb in enumerate(frames_bytes[:-1]):
            delay = start + i / hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            w.write_bytes(fb)
            done.extend(dec.feed(fb))

    wall0, cpu0, ru0 = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    th = threading.Thread(target=feed)
    th.start()
    th.join()
    w.close()
    wall, cpu, ru1 = time.perf_counter() - wall0, time.process_time() - cpu0, resource.getrusage(resource.RUSAGE_SELF)
    ru_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    assert len(done) == len(frames_bytes) - 1
    return {"seconds": wall, "frames": len(done), "channels": n_channels, "hz": hz,
            "cpu_s": cpu, "cpu_percent_of_one_core": 100 * cpu / wall, "rusage_cpu_s": ru_cpu,
            "log_bytes": path.stat().st_size}


W = 80  # width of the first column of the printed tables


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="recorder CPU measurement length")
    ap.add_argument("--keep", help="folder for the generated log and CSV (kept, reused); default a temporary one")
    ap.add_argument("--verify-exact", action="store_true",
                    help="also time log.verify(exact=True), the record-by-record reference (slow)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="thermoguard-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ld = loading(args.frames, args.channels, work)
        ver = verifying(work / f"bench-{args.channels}ch-{args.frames}.tglog", args.frames, args.verify_exact)
        rec = recorder_cpu(work, args.seconds, 10.0, args.channels)
    print(f"Loading an {ld['channels']}-channel log of {ld['frames']:,} telemetry frames "
          f"({ld['log_bytes'] / 1e6:.0f} MB; its CSV export {ld['csv_bytes'] / 1e6:.0f} MB):")
    print(f"{'reader':<{W}} {'seconds':>9} {'frames/s':>12}")
    print(f"{'thermoguard.frames.load_telemetry (the log, ' + format(ld['frames'], ',') + ' frames)':<{W}} "
          f"{ld['load_telemetry_s']:>9.3f} {ld['load_telemetry_frames_per_s']:>12,.0f}")
    print(f"{'  its five runs (after one untimed)':<{W}} " + " ".join(f"{t:.3f}" for t in ld["load_telemetry_runs_s"]))
    print(f"{'  the same on one thread (threads=1)':<{W}} {ld['load_telemetry_1thread_s']:>9.3f} "
          f"{ld['load_telemetry_1thread_frames_per_s']:>12,.0f}")
    print(f"{'  log.scan_records alone (every header; the loader trusts runs)':<{W}} "
          f"{ld['scan_records_s']:>9.3f}")
    # The target is against numpy loading the same data: every column of the export, with
    # its words. The numeric-only reads load part of it, shown for reference.
    same = [("numpy.loadtxt, every column (words as str, empty as NaN)", ld["np_loadtxt_every_column_s"],
             ld["frames"] / ld["np_loadtxt_every_column_s"], ld["speedup_every_column"], f"{ld['frames']:,}"),
            ("numpy.loadtxt, every column (words as bytes, empty as NaN)", ld["np_loadtxt_every_column_bytes_s"],
             ld["frames"] / ld["np_loadtxt_every_column_bytes_s"], ld["speedup_every_column_bytes"],
             f"{ld['frames']:,}"),
            ("numpy.genfromtxt, every column, names=True", ld["np_genfromtxt_s"], ld["np_genfromtxt_frames_per_s"],
             ld["speedup_genfromtxt"], f"{ld['csv_part_rows']:,}")]
    part = [("numpy.loadtxt, numeric columns, empty values as NaN", ld["np_loadtxt_numeric_nan_s"],
             ld["frames"] / ld["np_loadtxt_numeric_nan_s"], ld["speedup_numeric_nan"], f"{ld['frames']:,}"),
            ("numpy.loadtxt, numeric columns, no empty value allowed", ld["np_loadtxt_s"],
             ld["np_loadtxt_frames_per_s"], ld["speedup"], f"{ld['frames']:,}")]
    for title, rows in (("the same data from the CSV:", same), ("part of it (no words):", part)):
        print(title)
        for name, secs, rate, ratio, count in rows:
            label = f"  {name} ({count} rows)"
            print(f"{label:<{W}} {secs:>9.3f} {rate:>12,.0f}  log is {ratio:.1f}x faster")
    rate, worst, typical = ld["load_telemetry_frames_per_s"], ld["speedup_same_data"], ld["speedup_same_data_median"]
    print(f"targets: >= 2,000,000 frames/s: {rate:,.0f}, {'met' if rate >= 2e6 else 'NOT met'}")
    print(f"         >= 20x faster than numpy loading the same data from the CSV: {worst:.1f}x against the "
          f"fastest such reader, {'met' if worst >= 20 else 'NOT met'} ({typical:.1f}x with the loader's median run)")
    print(f"(writing the log took {ld['make_log_s']:.1f} s, exporting its CSV {ld['export_csv_s']:.1f} s)")
    print()
    print(f"{'checker':<{W}} {'seconds':>9} {'frames/s':>12}")
    print(f"{'thermoguard.log.verify (CRCs, hash chain, every frame)':<{W}} {ver['verify_s']:>9.3f} "
          f"{ver['verify_frames_per_s']:>12,.0f}")
    if "verify_exact_s" in ver:
        print(f"{'  verify(exact=True), record by record (the same report)':<{W}} {ver['verify_exact_s']:>9.3f} "
              f"{ver['verify_exact_frames_per_s']:>12,.0f}  verify is {ver['verify_speedup']:.1f}x faster")
    print()
    print(f"Recorder (LogWriter + Decoder) at {rec['channels']} channels, {rec['hz']:g} Hz for "
          f"{rec['seconds']:.1f} s: {rec['cpu_s']:.3f} s CPU = {rec['cpu_percent_of_one_core']:.2f} % of one core")
    out = ROOT / "build" / "host_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"loading": ld, "verify": ver, "recorder": rec, "cpus": os.cpu_count()}, indent=2))
    print(f"\nfigures written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
