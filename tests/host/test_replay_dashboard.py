"""`thermoguard replay LOG --dashboard`: a recorded session on the monitor's dashboard, in a
real terminal (tmux), fed by the log through the replay's consumers."""

from __future__ import annotations

import re
import subprocess

from test_monitor import EXE, Tmux


def test_a_replayed_session_shows_its_trip_on_the_dashboard(tmp_path):
    scenario = tmp_path / "s.csv"
    # foramen warms at 1.5 C/s (under its 2 C/s rate limit) and crosses 45 C at about 5.7 s
    scenario.write_text("t_s,tip,foramen\n0,37,37\n1,40,38\n7,40,47\n9,40,47\n")
    recorded = tmp_path / "s.tglog"
    sim = subprocess.run([EXE, "sim", str(scenario), "--out", str(recorded), "--speed", "10"],
                         capture_output=True, text=True, timeout=60)
    assert sim.returncode == 0 and "foramen:high" in sim.stdout, sim.stderr
    command = f"{EXE} replay {recorded} --dashboard --speed 0.4 2>{tmp_path / 'err.txt'}; echo EXIT=$?; sleep 60"
    t = Tmux(tmp_path, command, {"TERM": "xterm-256color", "PATH": "/usr/bin:/bin"})
    try:
        screen = t.wait(r"thermoguard replay", r"ARMED\s+RF permitted", r"foramen\s+protective\s+[34]\d\.\d\d")
        assert "TRIPPED" not in screen
        screen = t.wait(r"TRIPPED\s+RF off - first cause foramen:high at 5\.\d s device time",
                        r"\d\.\d s\s+TRIP foramen:high", r"EXIT=0")
        # the replay's own summary under the last picture
        assert re.search(r"replayed 9\d telemetry frames, .*; last state TRIPPED", screen), screen
    finally:
        t.close()
    assert (tmp_path / "err.txt").read_text() == ""


def test_the_dashboard_needs_a_terminal(tmp_path):
    proc = subprocess.run([EXE, "replay", str(tmp_path / "none.tglog"), "--dashboard"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("thermoguard: --dashboard needs a terminal")
