"""`thermoguard report LOG -o OUT.png [--html OUT.html]`: the session figure and its summary,
run as users run it (the installed entry point, in a subprocess), checked against the log."""

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from thermoguard import frames, paths

EXE = str(Path(sys.executable).with_name("thermoguard"))
CONFIG = json.loads((paths.DATA / "demo_config.json").read_text())  # the configuration of DESIGN.md
# foramen warms at 1 C/s from 37 C at 5 s and reaches its 45.0 C limit near 13 s; the tip
# heats to 60 C (dose, no trip); foramen is open for 0.5 s at 14.6 s, after the trip.
SCENARIO = "t_s,tip,foramen\n0,37,37\n5,37,37\n8,60,40\n14.5,50,46.5\n14.6,50,open\n15.1,50,38\n16,45,38\n"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "s.csv").write_text(SCENARIO)
    sim = run("sim", str(d / "s.csv"), "--config", str(d / "config.json"), "--out", str(d / "run.tglog"),
              "--speed", "max")
    assert sim.returncode == 0, sim.stderr
    trips = re.findall(r"trip at ([0-9.]+) s: (\S+)", sim.stdout)
    assert trips, sim.stdout
    return d, trips


def _summary_values(stdout: str) -> dict:
    peaks = {m[0]: (float(m[1]), float(m[2])) for m in re.findall(r"^peak (\S+): ([-0-9.]+) C at ([0-9.]+) s$",
                                                                  stdout, re.M)}
    trips = re.findall(r"^trip: ([0-9.]+) s: (\S+)$", stdout, re.M)
    return {"peaks": peaks, "trips": trips}


@pytest.mark.req("SR-RPT-01")
def test_report_draws_a_png_whose_summary_matches_the_log(session):
    d, sim_trips = session
    out = d / "run.png"
    proc = run("report", str(d / "run.tglog"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000
    img = matplotlib.image.imread(str(out))
    assert img.shape[0] >= 600 and img.shape[1] >= 1000 and img.shape[2] in (3, 4), img.shape
    assert img[..., :3].std() > 0.05  # drawn, not a blank page

    fr = frames.load_telemetry(d / "run.tglog")
    got = _summary_values(proc.stdout)
    # The trips are the ones sim printed, same device time and cause.
    assert got["trips"] == sim_trips, proc.stdout
    assert sim_trips[0][1] == "foramen:high"
    assert re.search(rf"^first TRIPPED frame: {re.escape(sim_trips[0][0])} s: foramen:high$", proc.stdout, re.M)
    # Peaks are the maxima of the valid readings (a missing reading is never a value).
    assert set(got["peaks"]) == set(fr.names) == {"tip", "foramen"}
    for c, name in enumerate(fr.names):
        peak, at = got["peaks"][name]
        assert abs(peak - float(np.nanmax(fr.temp_c[:, c]))) <= 0.005, (name, peak)
        k = int(np.nanargmax(fr.temp_c[:, c]))
        assert abs(at - float(fr.t_dev_s[k])) <= 0.005
    assert np.isnan(fr.temp_c[:, 1]).any()  # the open thermocouple left readings missing
    assert re.search(r"^no reading foramen: [1-9]\d* frames", proc.stdout, re.M)
    # Duration, final state, time at the limit, gaps.
    dur = float(re.search(r"^duration: ([0-9.]+) s", proc.stdout, re.M)[1])
    assert abs(dur - float(fr.t_dev_s[-1] - fr.t_dev_s[0])) <= 0.005
    assert re.search(r"^final state: TRIPPED, interlock open: RF off$", proc.stdout, re.M)
    above = float(re.search(r"^limits foramen: >= high 45 C: ([0-9.]+) s", proc.stdout, re.M)[1])
    valid = fr.temp_c[:, 1]
    expected = 0.1 * np.count_nonzero(valid[~np.isnan(valid)] >= 45.0)
    assert abs(above - expected) <= 0.051
    assert re.search(r"^gaps: 0 frames lost, 0 log gaps", proc.stdout, re.M)


@pytest.mark.req("SR-RPT-01")
def test_report_html_is_one_self_contained_page(session):
    d, sim_trips = session
    proc = run("report", str(d / "run.tglog"), "-o", str(d / "h.png"), "--html", str(d / "h.html"))
    assert proc.returncode == 0, proc.stderr
    page = (d / "h.html").read_text()
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m and base64.b64decode(m[1]) == (d / "h.png").read_bytes()
    assert f"<td>{sim_trips[0][0]} s: {sim_trips[0][1]}</td>" in page
    assert "<th>final state</th>" in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere


@pytest.mark.req("SR-RPT-01")
def test_report_refuses_bad_input_in_one_sentence(session):
    d, _ = session
    log = d / "run.tglog"
    before = log.read_bytes()
    cases = [
        (("report", str(d / "none.tglog"), "-o", str(d / "x.png")), "no such log file"),
        (("report", str(log), "-o", str(log), "--force"), "is the log itself"),
        (("report", str(log), "-o", str(d / "y.png"), "--html", str(log)), "is the log itself"),
        (("report", str(log), "-o", str(d / "z.png"), "--html", str(d / "z.png")), "two outputs"),
    ]
    (d / "corrupt.tglog").write_bytes(b"not a log at all\n" * 10)
    cases.append((("report", str(d / "corrupt.tglog"), "-o", str(d / "c.png")), "not a thermoguard log"))
    (d / "taken.png").write_bytes(b"mine")
    cases.append((("report", str(log), "-o", str(d / "taken.png")), "--force"))
    for args, words in cases:
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert log.read_bytes() == before
    assert (d / "taken.png").read_bytes() == b"mine"
    assert not any(p.name.endswith(".part") for p in d.iterdir())
    forced = run("report", str(log), "-o", str(d / "taken.png"), "--force")
    assert forced.returncode == 0 and (d / "taken.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.req("SR-RPT-01")
def test_report_of_a_damaged_log_shows_the_lost_frames_as_gaps(session):
    d, _ = session
    data = bytearray((d / "run.tglog").read_bytes())
    data[len(data) // 2] ^= 0x40
    (d / "damaged.tglog").write_bytes(bytes(data))
    proc = run("report", str(d / "damaged.tglog"), "-o", str(d / "damaged.png"))
    assert proc.returncode == 0, proc.stderr
    assert "damaged" in proc.stderr and (d / "damaged.png").read_bytes()[:8] == PNG_MAGIC
    fr = frames.load_telemetry(d / "damaged.tglog")
    lost = int(re.search(r"^gaps: (\d+) frames lost", proc.stdout, re.M)[1])
    steps = np.diff(fr.seq.astype(np.int64))
    assert lost >= 1 and (steps > 1).any()
    assert re.search(r"^damage: ", proc.stdout, re.M)


def test_a_saturated_board_dose_is_reported_as_at_least_the_ceiling():
    from thermoguard import report

    def channel(name, dose):
        return report.ChannelSummary(name, 95.0, 15.0, None, 90.0, 1.0, 0.0, 0.0, dose, 0)

    summary = report.Summary("x.tglog", 10, 0.0, 1.0, 0.1, [channel("tip", report.DOSE_CEILING),
                                                             channel("foramen", 7.25)], [], None, 0, [], 0,
                             "ARMED", True)
    rows = dict(summary.rows())
    assert rows["dose tip"] == ">= 1.05e+06 CEM43 (the board's ceiling) (no limit)"
    assert rows["dose foramen"] == "7.25 CEM43 (no limit)"
