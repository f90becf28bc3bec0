"""`thermoguard sim`: the real firmware on the virtual board through a scenario, run as
users run it (the installed entry point, in a subprocess)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tgfw import codes
from thermoguard import frames, paths

EXE = str(Path(sys.executable).with_name("thermoguard"))

CONFIG = json.loads((paths.DATA / "demo_config.json").read_text())  # the configuration of DESIGN.md
# foramen warms at 1 C/s from 37 C at 5 s: it reaches 45.0 C at 13.0 s.
SCENARIO = "t_s,tip,foramen\n0,37,37\n5,37,37\n15,40,47\n"


def run(*args, cwd=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "s.csv").write_text(SCENARIO)
    return tmp_path


@pytest.mark.req("SR-HIL-02", "SR-GRD-03")
def test_sim_trips_when_the_protective_channel_reaches_its_limit(files):
    proc = run("sim", str(files / "s.csv"), "--config", str(files / "config.json"),
               "--out", str(files / "run.tglog"), "--speed", "max")
    assert proc.returncode == 0, proc.stderr
    trips = re.findall(r"trip at ([0-9.]+) s: (\S+)", proc.stdout)
    assert len(trips) == 1, proc.stdout
    t, cause = float(trips[0][0]), trips[0][1]
    assert cause == "foramen:high"
    # The reading that reaches 45.0 C trips in the cycle that reads it: within one cycle
    # plus the chip's conversion time and its 0.25 C step (0.25 s at 1 C/s).
    assert 12.9 <= t <= 13.5, t
    assert (files / "run.tglog").stat().st_size > 0


@pytest.mark.req("SR-HIL-02")
def test_sim_without_arming_reports_no_trip(files):
    proc = run("sim", str(files / "s.csv"), "--config", str(files / "config.json"),
               "--out", str(files / "run.tglog"), "--no-arm")
    assert proc.returncode == 0, proc.stderr
    assert "no trip" in proc.stdout


@pytest.mark.req("SR-CFG-01")
def test_sim_refuses_bad_input_in_one_sentence(files):
    missing = run("sim", str(files / "nope.csv"))
    assert missing.returncode == 2 and "nope.csv does not exist" in missing.stderr
    bad = dict(CONFIG, sample_hz="fast")
    (files / "bad.json").write_text(json.dumps(bad))
    proc = run("sim", str(files / "s.csv"), "--config", str(files / "bad.json"))
    assert proc.returncode == 2 and "sample_hz: must be a whole number" in proc.stderr
    (files / "broken.csv").write_text("t_s,a\n0,warm\n")
    proc = run("sim", str(files / "broken.csv"), "--config", str(files / "config.json"))
    assert proc.returncode == 2 and "line 2" in proc.stderr
    (files / "taken.tglog").write_text("mine")
    proc = run("sim", str(files / "s.csv"), "--config", str(files / "config.json"), "--out",
               str(files / "taken.tglog"))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (files / "taken.tglog").read_text() == "mine"
    for p in (missing, proc):
        assert "Traceback" not in p.stderr


@pytest.mark.req("SR-HIL-02")
def test_demo_runs_the_built_in_scenario_to_its_trip(tmp_path):
    proc = run("demo", "--speed", "max", "--out", str(tmp_path / "demo.tglog"))
    assert proc.returncode == 0, proc.stderr
    assert "*** ARMED: RF permitted ***" in proc.stdout
    assert re.search(r"\*\*\* TRIP: foramen:high: RF off \*\*\*", proc.stdout)
    assert "Final state TRIPPED" in proc.stdout
    assert f"Log: {tmp_path / 'demo.tglog'}" in proc.stdout


@pytest.mark.req("SR-LOG-06", "SR-LOG-01")
def test_a_sim_log_verifies_and_damage_fails_verify(files):
    log = files / "run.tglog"
    assert run("sim", str(files / "s.csv"), "--config", str(files / "config.json"), "--out", str(log)).returncode == 0
    ok = run("verify", str(log))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout.splitlines()[-1]
    assert re.search(r"1[45]\d frames \(1[45]\d telemetry", ok.stdout), ok.stdout  # 15 s at 10 Hz
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x40
    (files / "bad.tglog").write_bytes(bytes(data))
    bad = run("verify", str(files / "bad.tglog"))
    assert bad.returncode == 1 and "DAMAGE" in bad.stdout
    missing = run("verify", str(files / "none.tglog"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def first_trip(log: Path) -> tuple:
    """(seq, device time, cause) of the first TRIPPED frame of a log."""
    fr = frames.load_telemetry(log)
    i = int(np.flatnonzero(fr.state == codes.TRIPPED)[0])
    t = fr.telemetry(i)
    return t.seq, t.t_s, t.t_us, t.first_cause_text(fr.names)


@pytest.mark.req("SR-HIL-19", "SR-HIL-02")
def test_a_session_log_is_a_scenario_and_trips_at_the_same_cycle(files):
    first = run("sim", str(files / "s.csv"), "--config", str(files / "config.json"),
                "--out", str(files / "a.tglog"), "--speed", "max")
    assert first.returncode == 0, first.stderr
    again = run("sim", str(files / "a.tglog"), "--config", str(files / "config.json"),
                "--out", str(files / "b.tglog"), "--speed", "max")
    assert again.returncode == 0, again.stderr
    trip = [line for line in first.stdout.splitlines() if line.startswith("trip at")]
    assert trip == ["trip at 13.10 s: foramen:high"]
    assert trip == [line for line in again.stdout.splitlines() if line.startswith("trip at")]
    assert first_trip(files / "a.tglog") == first_trip(files / "b.tglog")  # same sequence, same device time
    assert first_trip(files / "a.tglog")[3] == "foramen:high"


@pytest.mark.req("SR-HIL-19")
def test_a_file_that_is_no_log_is_refused_in_one_sentence(files):
    (files / "x.tglog").write_text("t_s,tip\n0,37\n")
    proc = run("sim", str(files / "x.tglog"), "--config", str(files / "config.json"))
    assert proc.returncode == 2 and "scenario" in proc.stderr and "x.tglog" in proc.stderr
    assert "Traceback" not in proc.stderr
