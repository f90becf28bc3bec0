"""Exports of a log whose channel set changes mid-log (the board was flashed with another
configuration during a gap): one column per channel name of every configuration, in
order of first appearance; a channel a frame does not have is empty in CSV, NaN with
fault -1 in npz, and has no message in MCAP; the user is told."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap import reader as mcap_reader
from tgfw import codes, config
from thermoguard import export, frames, log, protocol

EXE = str(Path(sys.executable).with_name("thermoguard"))


def cfg(*names):
    return config.validate({"sample_hz": 10, "stale_ms": 300, "host_timeout_s": 5, "channels": [
        {"name": n, "chip": "max31855", "cs": 10 + i, "tc_type": "K", "role": "protective", "high_c": 45.0,
         "low_c": 10.0} for i, n in enumerate(names)]})


A = cfg("tip", "foramen")
B = cfg("tip", "root_l", "root_r")
HASH_A, HASH_B = config.config_hash(A), config.config_hash(B)


def frame(seq: int, n: int, chash: int, temp_c: float = 37.0) -> bytes:
    t_us = 5_000_000 + seq * 100_000
    temps = [int(round((temp_c + c) * 1024)) for c in range(n)]
    return protocol.encode_telemetry(
        seq, t_us // 1_000_000, t_us % 1_000_000, 2, 1, 0, 255, 0, 0, 10, 0, 0, temps, [25 * 1024] * n, [0] * n,
        [0] * n, [0] * n, [0] * n, [1024 * (c + 1) for c in range(n)], [0] * n, config_hash=chash)


def write_log(path, *, get_b: bool = False, tighten: bool = False, second: int = 5, b_hash: int = HASH_B):
    """5 frames of A (tip, foramen); then a gap and `second` frames of B (tip, root_l, root_r),
    optionally with B's GET answer; or, with tighten, a CONFIG event and frames of A with a new hash."""
    with log.LogWriter.create(path, {"config": A, "config_hash": f"{HASH_A:08x}"}) as w:
        for i in range(5):
            w.write_bytes(frame(i, 2, HASH_A), 1_000 + i)
        if tighten:
            w.write_bytes(protocol.encode_event(5, 5, 500_000, protocol.EV_CONFIG, 2, "foramen.high_c=44"), 1_100)
            for i in range(5, 5 + second):
                w.write_bytes(frame(i, 2, 0x0BADF00D), 1_100 + i)
            return
        w.note_gap("port lost: reflashed", 2_000)
        if get_b:
            text = config.canonical(B)
            parts = [text[k:k + 180] for k in range(0, len(text), 180)]
            for k, part in enumerate(parts):
                w.write_bytes(protocol.encode_reply(0, 1, 0, f"OK GET {k + 1}/{len(parts)} {part}"), 2_001)
        for i in range(second):
            w.write_bytes(frame(i, 3, b_hash, 40.0), 3_000 + i)


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def export_all(path: Path):
    d = path.parent
    proc = run("export", str(path), "--csv", str(d / "o.csv"), "--npz", str(d / "o.npz"), "--mcap", str(d / "o.mcap"))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((d / "o.csv").open()))
    with np.load(d / "o.npz") as z:
        npz = {k: z[k] for k in z.files}
    with open(d / "o.mcap", "rb") as f:
        msgs = [(ch.topic, json.loads(m.data)) for _, ch, m in mcap_reader.make_reader(f).iter_messages()]
    return proc, rows, npz, msgs


@pytest.mark.req("SR-EXP-01", "SR-HOST-14")
def test_a_reflash_with_names_in_the_log_gives_the_union_of_channels_in_every_format(tmp_path):
    path = tmp_path / "r.tglog"
    write_log(path, get_b=True)
    proc, rows, npz, msgs = export_all(path)
    assert list(rows[0]) == ["seq", "t_dev_s", "t_host_s", "state", "interlock", "cause",
                             "tip_c", "tip_fault", "tip_cem43", "foramen_c", "foramen_fault", "foramen_cem43",
                             "root_l_c", "root_l_fault", "root_l_cem43", "root_r_c", "root_r_fault", "root_r_cem43"]
    assert len(rows) == 10 and all(len(r) == 18 and None not in r for r in rows)  # no short rows
    for r in rows[:5]:
        assert r["tip_c"] == "37.0" and r["foramen_c"] == "38.0" and r["foramen_cem43"] == "2.0"
        assert r["root_l_c"] == r["root_l_fault"] == r["root_l_cem43"] == "" and r["root_r_c"] == ""
    for r in rows[5:]:
        assert r["tip_c"] == "40.0" and r["root_l_c"] == "41.0" and r["root_r_c"] == "42.0"
        assert r["root_r_cem43"] == "3.0"  # channel 2 of B, not channel 2 of anything else
        assert r["foramen_c"] == r["foramen_fault"] == r["foramen_cem43"] == ""  # never 0, never -1
    # npz: NaN where a frame has no such channel, its fault the documented marker, never a fault code
    assert np.isnan(npz["root_l_c"][:5]).all() and np.isnan(npz["root_l_cem43"][:5]).all()
    assert (npz["root_l_fault"][:5] == export.NO_CHANNEL).all() and (npz["root_l_fault"][5:] == 0).all()
    assert np.isnan(npz["foramen_c"][5:]).all() and (npz["foramen_fault"][5:] == -1).all()
    assert npz["foramen_c"][:5].tolist() == [38.0] * 5 and (npz["foramen_fault"][:5] == 0).all()
    assert npz["tip_c"].tolist() == [37.0] * 5 + [40.0] * 5
    # mcap: a topic per channel name; a frame sends only on the topics of the channels it has
    per_topic = {}
    for topic, m in msgs:
        per_topic.setdefault(topic, []).append(m)
    assert [m["temp_c"] for m in per_topic["/thermoguard/channel/tip"]] == [37.0] * 5 + [40.0] * 5
    assert [m["temp_c"] for m in per_topic["/thermoguard/channel/foramen"]] == [38.0] * 5
    assert [m["temp_c"] for m in per_topic["/thermoguard/channel/root_r"]] == [42.0] * 5
    assert len(per_topic["/thermoguard/state"]) == 10
    # the user is told, in one sentence naming the change
    warnings = [line for line in proc.stderr.splitlines() if "channels change" in line]
    assert warnings == ["thermoguard: warning: the channels change at frame 5 (seq 0, device time 5.000000 s) "
                        "from tip, foramen to tip, root_l, root_r; the export has a column for every channel, "
                        "empty where a frame does not have it"]


@pytest.mark.req("SR-EXP-01")
def test_channels_of_a_configuration_the_log_does_not_name_get_columns_of_their_own(tmp_path):
    path = tmp_path / "u.tglog"
    write_log(path)  # no GET answer: B's names are not in the log
    proc, rows, npz, msgs = export_all(path)
    assert list(rows[0])[6:] == [f"{n}_{k}" for n in ("tip", "foramen", "ch0", "ch1", "ch2")
                                 for k in ("c", "fault", "cem43")]
    assert [r["tip_c"] for r in rows] == ["37.0"] * 5 + [""] * 5  # never glued to an unknown sensor
    assert [r["ch0_c"] for r in rows] == [""] * 5 + ["40.0"] * 5
    assert (npz["ch2_fault"] == [-1] * 5 + [0] * 5).all()
    assert "channel names the log does not record" in proc.stderr
    assert {t for t, _ in msgs} >= {"/thermoguard/channel/ch0", "/thermoguard/channel/tip"}


@pytest.mark.req("SR-EXP-01")
def test_a_tightened_limit_keeps_the_channels_and_warns_nothing(tmp_path):
    path = tmp_path / "t.tglog"
    write_log(path, tighten=True)
    proc, rows, npz, _ = export_all(path)
    assert list(rows[0])[6:] == [f"{n}_{k}" for n in ("tip", "foramen") for k in ("c", "fault", "cem43")]
    assert [r["foramen_c"] for r in rows] == ["38.0"] * 10
    assert "channels change" not in proc.stderr


@pytest.mark.req("SR-EXP-01", "SR-HOST-10")
@pytest.mark.parametrize("get_b", [True, False])
def test_the_array_writers_and_the_per_frame_writers_agree_on_a_changing_log(tmp_path, get_b):
    path = tmp_path / "a.tglog"
    write_log(path, get_b=get_b)
    fr = frames.load_telemetry(path)
    lay = frames.channel_layout(fr)
    rows = [(int(fr.t_host_ns[i]), fr.telemetry(i)) for i in range(len(fr))]
    export.write_csv(fr, lay, tmp_path / "a.csv")
    export._write_csv_rows(rows, lay, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    export.write_npz(fr, lay, tmp_path / "a.npz")
    export._write_npz_rows(rows, lay, tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a.files == b.files
        for k in a.files:
            assert np.array_equal(a[k], b[k], equal_nan=True), k


@pytest.mark.req("SR-EXP-01")
def test_a_cause_names_the_channel_of_the_frames_own_configuration(tmp_path):
    path = tmp_path / "c.tglog"
    with log.LogWriter.create(path, {"config": A, "config_hash": f"{HASH_A:08x}"}) as w:
        w.write_bytes(frame(0, 2, HASH_A), 1)
        w.note_gap("reflashed", 2)
        text = config.canonical(B)
        parts = [text[k:k + 180] for k in range(0, len(text), 180)]
        for k, part in enumerate(parts):
            w.write_bytes(protocol.encode_reply(0, 1, 0, f"OK GET {k + 1}/{len(parts)} {part}"), 3)
        body = protocol.telemetry_payload(1, 6, 0, 3, 0, 0, 1, codes.C_HIGH, 0, 10, 0, 0, [46 * 1024] * 3,
                                          [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3, [0] * 3,
                                          config_hash=HASH_B)
        w.write_bytes(protocol.encode_frame(body), 4)  # tripped on channel 1 of B: root_l
    fr = frames.load_telemetry(path)
    export.write_csv(fr, frames.channel_layout(fr), tmp_path / "c.csv")
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert rows[1]["cause"] == "root_l:high"  # not foramen, channel 1 of the first configuration


def test_a_log_whose_channels_change_replays_each_sensor_in_its_own_column(tmp_path):
    from thermoguard import vboard

    path = tmp_path / "r.tglog"
    write_log(path, get_b=True, second=2)
    lines = [line for line in vboard.log_scenario_text(path).splitlines() if not line.startswith("#")]
    assert lines[0] == "t_s,tip,foramen,root_l,root_r"
    assert lines[1] == "5.000000,37.0,38.0,,"  # A's frames: tip, foramen
    # B's frames after the reflash (device time restarts, moved on): tip, root_l, root_r
    assert lines[-1].split(",")[1:] == ["40.0", "", "41.0", "42.0"]


def test_the_report_of_a_log_whose_channels_change_keeps_each_sensor_apart(tmp_path):
    path = tmp_path / "r.tglog"
    write_log(path, get_b=True)
    proc = run("report", str(path), "-o", str(tmp_path / "r.png"))
    assert proc.returncode == 0, proc.stderr
    assert "the channels change at frame 5" in proc.stderr and "the report draws each channel" in proc.stderr
    summary = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    # foramen only in A's frames (38 C), root_r only in B's (42 C); tip in both (37 C, then 40 C)
    assert summary["peak tip"].startswith("40.00 C") and summary["peak foramen"].startswith("38.00 C")
    assert summary["peak root_l"].startswith("41.00 C") and summary["peak root_r"].startswith("42.00 C")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
