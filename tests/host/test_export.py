"""`thermoguard export`: the CSV of DESIGN.md (missing readings empty, never 0 or -1) and
NumPy arrays, from a log recorded by `thermoguard sim`."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli_sim import CONFIG

EXE = str(Path(sys.executable).with_name("thermoguard"))
# foramen opens (thermocouple unplugged) from 3 s to 4 s, then reads again.
SCENARIO = "t_s,tip,foramen\n0,37,37\n3,37,open\n4,37,38\n6,37,38\n"


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "s.csv").write_text(SCENARIO)
    proc = run("sim", str(d / "s.csv"), "--config", str(d / "config.json"), "--out", str(d / "run.tglog"))
    assert proc.returncode == 0, proc.stderr
    return d


@pytest.mark.req("SR-EXP-01", "SR-LNK-04")
def test_csv_has_the_contract_columns_and_empty_missing_values(session):
    out = session / "run.csv"
    proc = run("export", str(session / "run.tglog"), "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["seq", "t_dev_s", "t_host_s", "state", "interlock", "cause",
                             "tip_c", "tip_fault", "tip_cem43", "foramen_c", "foramen_fault", "foramen_cem43"]
    assert len(rows) >= 55  # 6 s at 10 Hz
    faulted = [r for r in rows if r["foramen_fault"]]
    assert faulted, "the open thermocouple never showed"
    for r in faulted:
        assert r["foramen_c"] == ""  # never 0, never -1
    assert {r["foramen_fault"] for r in faulted} == {"open"}
    tripped = [r for r in rows if r["state"] == "TRIPPED"]
    assert tripped and tripped[0]["cause"] == "foramen:open" and tripped[0]["interlock"] == "0"
    armed = [r for r in rows if r["state"] == "ARMED"]
    assert armed and all(r["interlock"] in ("0", "1") for r in armed)
    assert any(r["interlock"] == "1" for r in armed)
    t = [float(r["t_dev_s"]) for r in rows]
    assert t == sorted(t) and abs(t[1] - t[0] - 0.1) < 1e-9


@pytest.mark.req("SR-EXP-01")
def test_npz_arrays_match_the_csv(session):
    out = session / "run.npz"
    assert run("export", str(session / "run.tglog"), "--npz", str(out)).returncode == 0
    rows = list(csv.DictReader((session / "run.csv").open())) if (session / "run.csv").exists() else None
    data = np.load(out)
    assert {"seq", "t_dev_s", "t_host_ns", "state", "interlock", "foramen_c", "foramen_fault"} <= set(data.files)
    assert np.isnan(data["foramen_c"][data["foramen_fault"] != 0]).all()
    if rows is not None:
        assert len(rows) == len(data["seq"])


@pytest.mark.req("SR-EXP-01", "SR-HIL-01")
def test_an_export_replays_into_the_virtual_board(session):
    out = session / "replay.csv"
    assert run("export", str(session / "run.tglog"), "--csv", str(out), "--force").returncode == 0
    proc = run("sim", str(out), "--config", str(session / "config.json"), "--out", str(session / "replay.tglog"))
    assert proc.returncode == 0, proc.stderr
    assert "foramen:open" in proc.stdout


@pytest.mark.req("SR-LOG-04")
def test_export_refuses_to_overwrite_and_reads_only_logs(session):
    (session / "taken.csv").write_text("keep")
    proc = run("export", str(session / "run.tglog"), "--csv", str(session / "taken.csv"))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (session / "taken.csv").read_text() == "keep"
    proc = run("export", str(session / "taken.csv"), "--csv", str(session / "x.csv"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.req("SR-EXP-01", "SR-LOG-03")
def test_a_damaged_log_exports_every_intact_record_and_warns(session):
    data = bytearray((session / "run.tglog").read_bytes())
    data[len(data) // 2] ^= 0x20
    (session / "damaged.tglog").write_bytes(bytes(data))
    out = session / "damaged.csv"
    proc = run("export", str(session / "damaged.tglog"), "--csv", str(out), "--force")
    assert proc.returncode == 0, proc.stderr
    assert "warning: the log is damaged" in proc.stderr
    intact = list(csv.DictReader((session / "run.csv").open())) if (session / "run.csv").exists() else None
    rows = list(csv.DictReader(out.open()))
    assert rows and (intact is None or len(intact) - 2 <= len(rows) < len(intact) + 1)


@pytest.mark.req("SR-HIL-15", "SR-EXP-01")
def test_a_recorded_session_replays_to_the_same_trip_cycle(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "s.csv").write_text("t_s,tip,foramen\n0,37,37\n5,37,37\n15,40,47\n")
    first = run("sim", str(tmp_path / "s.csv"), "--config", str(tmp_path / "config.json"),
                "--out", str(tmp_path / "a.tglog"))
    assert first.returncode == 0, first.stderr
    assert run("export", str(tmp_path / "a.tglog"), "--csv", str(tmp_path / "a.csv")).returncode == 0
    again = run("sim", str(tmp_path / "a.csv"), "--config", str(tmp_path / "config.json"),
                "--out", str(tmp_path / "b.tglog"))
    assert again.returncode == 0, again.stderr
    trip = [line for line in first.stdout.splitlines() if line.startswith("trip at")]
    assert trip and trip == [line for line in again.stdout.splitlines() if line.startswith("trip at")]


@pytest.mark.req("SR-LOG-04")
def test_export_never_writes_over_the_log_or_into_a_missing_folder(session):
    log_copy = session / "copy.tglog"
    log_copy.write_bytes((session / "run.tglog").read_bytes())
    same = run("export", str(log_copy), "--csv", str(log_copy), "--force")
    assert same.returncode == 2 and "is the log itself" in same.stderr
    assert run("verify", str(log_copy)).returncode == 0
    twice = run("export", str(log_copy), "--csv", str(session / "a.out"), "--npz", str(session / "a.out"))
    assert twice.returncode == 2 and "two outputs" in twice.stderr
    missing = run("export", str(log_copy), "--csv", str(session / "no" / "such" / "x.csv"))
    assert missing.returncode == 2 and "cannot write" in missing.stderr and "Traceback" not in missing.stderr
    folder = run("export", str(log_copy), "--csv", str(session), "--force")
    assert folder.returncode == 2 and "is a folder" in folder.stderr
