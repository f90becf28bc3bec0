"""Every trip cause end to end through the host, as the operator sees it: the real firmware
on the virtual board, driven by scenarios through `thermoguard sim`, or served as a port and
commanded with the `thermoguard` commands (the demo configuration: tip ablation high 95,
low 15, rate 10; foramen protective high 45, low 10, rate 2, dose 40 CEM43; host timeout
5 s). The watchdog (a hang), the interlock readback and power are in test_control.py, the sensor faults in
test_fault_matrix.py."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from thermoguard import log, protocol, relay

EXE = str(Path(sys.executable).with_name("thermoguard"))


def thermoguard(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


# name: (scenario rows, first cause, device time window of the trip)
CAUSES = {
    "high": (["t_s,tip,foramen", "0,37,37", "2,37,37", "12,37,46", "14,37,46"], "foramen:high", (10.8, 11.3)),
    "low": (["t_s,tip,foramen", "0,37,37", "2,37,37", "22,37,5", "24,37,5"], "foramen:low", (18.7, 19.2)),
    "rate": (["t_s,tip,foramen", "0,37,37", "2,37,37", "4,80,37", "6,80,37"], "tip:rate", (2.5, 4.2)),
    # 44.5 C: 2.83 CEM43 a minute, 40 in about 14 min, below the 45 C limit all along
    "dose": (["t_s,tip,foramen", "0,37,37", "2,37,37", "12,37,44.5", "1500,37,44.5"], "foramen:dose",
             (800.0, 900.0)),
}


@pytest.mark.req("SR-HIL-20")
@pytest.mark.parametrize("name", list(CAUSES))
def test_each_channel_cause_trips_and_is_reported_by_sim(name, scenario_file, tmp_path):
    rows, cause, (lo, hi) = CAUSES[name]
    out = tmp_path / f"{name}.tglog"
    proc = thermoguard("sim", str(scenario_file(*rows)), "--out", str(out), "--speed", "max")
    assert proc.returncode == 0, proc.stderr
    trips = re.findall(r"trip at ([\d.]+) s: (\S+)", proc.stdout)
    assert trips, proc.stdout
    t, causes = float(trips[0][0]), trips[0][1]
    assert causes.split(",")[0] == cause and lo <= t <= hi, (t, causes)
    frames = [item for _, item in log.decoded_items(out) if isinstance(item, protocol.Telemetry)]
    first = next(f for f in frames if f.state_name == "TRIPPED")
    assert first.first_cause_text(["tip", "foramen"]) == cause and not first.interlock_on
    assert all(f.state_name == "TRIPPED" and not f.interlock_on for f in frames[frames.index(first):])  # latched


@pytest.mark.req("SR-HIL-20")
def test_a_silent_host_trips_an_armed_board_and_the_operator_sees_why(virtual_board, tmp_path):
    board = virtual_board(speed=4)
    board.telemetry()
    board.close_port()
    armed = thermoguard("arm", "--port", board.port)
    assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
    time.sleep(2.5)  # 10 s of device time without a heartbeat: past host_timeout_s (5 s)
    out = tmp_path / "after.tglog"
    rec = thermoguard("record", "--port", board.port, "--out", str(out), "--duration", "1")
    assert rec.returncode == 0 and "last state TRIPPED" in rec.stdout, rec.stdout + rec.stderr
    t = next(i for _, i in log.decoded_items(out) if isinstance(i, protocol.Telemetry))
    assert t.first_cause_text() == "host_timeout" and not t.interlock_on
    again = thermoguard("arm", "--port", board.port)
    assert again.returncode == 1 and again.stdout == ""
    assert again.stderr.startswith("thermoguard: the board refused ARM: ") and "tripped" in again.stderr


def recorded_trip(path) -> bool:
    """A TRIP event is in the log being recorded at path (read as it grows: a torn tail ends it)."""
    try:
        return any(isinstance(i, protocol.Event) and i.event_name == "TRIP" for _, i in log.decoded_items(path))
    except log.LogError:
        return False  # not written yet


@pytest.mark.req("SR-HIL-20")
def test_arm_and_reset_refusals_as_the_operator_sees_them(virtual_board, scenario_file, tmp_path):
    # foramen open at first: no arming; later above its limit: a trip that cannot be reset.
    # Each step has seconds to spare: a command's start can take that on a busy machine.
    board = virtual_board(scenario=scenario_file("t_s,tip,foramen", "0,37,open", "8,37,open", "8.5,37,37",
                                                 "20,37,37", "26,37,46", "100,37,46"), speed=2)
    board.telemetry()
    board.close_port()
    refused = thermoguard("arm", "--port", board.port)
    assert refused.returncode == 1 and refused.stdout == "", refused.stderr
    assert refused.stderr == "thermoguard: the board refused ARM: foramen:open\n"
    board.telemetry(lambda t: t.t_dev_s > 8.6 and t.channels[1].temp_c is not None, timeout=15)
    board.close_port()
    # A recording keeps the heartbeat; the operator's commands go through it.
    out = tmp_path / "held.tglog"
    rec = subprocess.Popen([EXE, "record", "--port", board.port, "--out", str(out)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 15
        while relay.find(board.port) is None:
            assert rec.poll() is None and time.monotonic() < end, "the recording holds no relay"
            time.sleep(0.1)
        armed = thermoguard("arm", "--port", board.port)
        assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
        # foramen crosses 45 C at 25.3 s of device time: the trip, as the recording has it
        end = time.monotonic() + 30
        while not recorded_trip(out):
            assert time.monotonic() < end, "no trip within 30 s"
            time.sleep(0.2)
        reset = thermoguard("reset", "--port", board.port, "--reason", "probe moved")
        assert (reset.returncode, reset.stdout) == (1, "")
        assert reset.stderr.endswith("thermoguard: the board refused RESET: still active: foramen:high\n")
        plain = thermoguard("reset", "--port", board.port)
        assert plain.returncode == 2 and "reset needs --reason" in plain.stderr  # refused before the board
    finally:
        rec.send_signal(signal.SIGINT)
        try:
            rec.communicate(timeout=15)
        finally:
            if rec.poll() is None:
                rec.kill()
                rec.communicate()
    trips = [i.text for _, i in log.decoded_items(out) if isinstance(i, protocol.Event) and i.event_name == "TRIP"]
    assert trips == ["foramen:high"], trips
