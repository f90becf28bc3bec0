"""`thermoguard demo` run as users run it: without a terminal the plain lines and then the
report beside the log; in a terminal (tmux) the dashboard, ending by itself at the end of
the scenario, with the trip, the log and the report's paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_monitor import Tmux
from thermoguard import log

EXE = str(Path(sys.executable).with_name("thermoguard"))


def test_demo_without_a_terminal_ends_with_the_report_beside_the_log(tmp_path):
    out = tmp_path / "demo.tglog"
    proc = subprocess.run([EXE, "demo", "--speed", "max", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\*\*\* TRIP: foramen:high: RF off \*\*\*", proc.stdout)
    assert f"Log: {out}" in proc.stdout
    for made in (tmp_path / "demo.png", tmp_path / "demo.html"):
        assert f"wrote {made}" in proc.stdout and made.stat().st_size > 1000
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "foramen:high" in (tmp_path / "demo.html").read_text()
    assert log.read_log(out).closed
    again = subprocess.run([EXE, "demo", "--speed", "max", "--out", str(out)], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr


def test_demo_in_a_terminal_shows_the_dashboard_and_ends_by_itself(tmp_path):
    out = tmp_path / "live.tglog"
    t = Tmux(tmp_path, f"{EXE} demo --speed max --out {out} 2>{tmp_path / 'err.txt'}; echo EXIT=$?; sleep 60",
             {**os.environ, "TERM": "xterm-256color"}, height=60)
    try:
        screen = t.wait(r"EXIT=\d+", timeout=90)
    finally:
        t.close()
    assert "EXIT=0" in screen, screen + (tmp_path / "err.txt").read_text()
    # The dashboard's last picture stays on the screen, then the closing words and the report.
    assert re.search(r"TRIPPED\s+RF off - first cause foramen:high at \d+\.\d s device time", screen), screen
    assert re.search(r"foramen\s+protective", screen) and "TRIP high" in screen
    assert f"Log: {out}" in screen and f"wrote {out.with_suffix('.png')}" in screen
    assert out.with_suffix(".html").exists()
