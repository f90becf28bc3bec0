"""`thermoguard arm | disarm | reset | config` end to end: the installed entry point in a
subprocess, against the real firmware on the virtual board (`python -m thermoguard.virtual`)
and, for what the CLI decides alone, against the fake board."""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from fakeboard import FakeBoard
from thermoguard import log, protocol, relay

EXE = str(Path(sys.executable).with_name("thermoguard"))
ROOT = Path(__file__).resolve().parents[2]


def run(*args, timeout=20):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def virtual_board(folder):
    """A virtual board at real-time speed, its board files in folder; its /dev/pts/N."""
    proc = subprocess.Popen([sys.executable, "-m", "thermoguard.virtual", "--speed", "1",
                             "--board-dir", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        port = proc.stdout.readline().decode().strip() if ready else ""
        if not port:
            pytest.fail("the virtual board did not start: " + (proc.stderr.read1(4000).decode() if ready else ""))
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def virtual_port(tmp_path_factory):
    """A virtual board shared by the tests of this module; its /dev/pts/N."""
    with virtual_board(tmp_path_factory.mktemp("board")) as port:
        yield port


def board_state(port: str, timeout: float = 5.0) -> str:
    """The state in the board's telemetry, read through its port (with a heartbeat, as a host does)."""
    with serial.serial_for_url(port, timeout=0.05) as ser:
        ser.write(protocol.encode_command("HB"))
        decoder = protocol.Decoder()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for item in decoder.feed(ser.read(4096)):
                if isinstance(item, protocol.Telemetry):
                    return item.state_name
    raise AssertionError(f"no telemetry from {port} within {timeout} s")


@pytest.mark.req("SR-HOST-03")
def test_arm_disarm_and_a_refused_reset_on_the_virtual_board(virtual_port):
    armed = run("arm", "--port", virtual_port)
    assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
    assert board_state(virtual_port) == "ARMED"
    disarmed = run("disarm", "--port", virtual_port)
    assert (disarmed.returncode, disarmed.stdout) == (0, "OK DISARM\n"), disarmed.stderr
    assert board_state(virtual_port) == "DISARMED"
    refused = run("reset", "--port", virtual_port, "--reason", "x")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == "thermoguard: the board refused RESET: not tripped\n"


@pytest.mark.req("SR-HOST-03")
def test_config_show_and_set_on_the_virtual_board(virtual_port):
    shown = run("config", "--port", virtual_port)
    assert shown.returncode == 0, shown.stderr
    cfg = json.loads(shown.stdout)
    assert [ch["name"] for ch in cfg["channels"]] == ["tip", "foramen"]
    assert shown.stdout.startswith('{\n  "channels": [')  # pretty-printed
    refused = run("config", "--port", virtual_port, "set", "foramen.high_c=60")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("thermoguard: the board refused SET: channels[1] (foramen).high_c: "
                                      "60 is above the protective ceiling of 50.0")
    loosen = run("config", "--port", virtual_port, "set", "sample_hz=8")  # structure: flashed, not commanded
    assert loosen.returncode == 1 and "only tightening by command" in loosen.stderr
    accepted = run("config", "--port", virtual_port, "set", "foramen.high_c=44.5", "stale_ms=250")
    assert (accepted.returncode, accepted.stdout) == (0, "OK SET foramen.high_c=44.5 stale_ms=250\n")
    cfg = json.loads(run("config", "--port", virtual_port, "show").stdout)
    assert cfg["channels"][1]["high_c"] == 44.5 and cfg["stale_ms"] == 250 and cfg["sample_hz"] == 10


@pytest.mark.req("SR-HOST-04")
def test_an_armed_board_stays_armed_while_it_is_recorded(tmp_path):
    # With a 2 s host timeout an armed board trips unless the recorder keeps its heartbeat.
    # A board of its own: a command cannot loosen the timeout again. Armed through the
    # recording, so that no start of a command can fall inside the 2 s.
    out = tmp_path / "armed.tglog"
    with virtual_board(tmp_path / "board") as port:
        assert run("config", "--port", port, "set", "host_timeout_s=2").returncode == 0
        rec = subprocess.Popen([EXE, "record", "--port", port, "--out", str(out), "--duration", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 15
            while relay.find(port) is None:
                assert rec.poll() is None and time.monotonic() < end, "no relay"
                time.sleep(0.1)
            armed = run("arm", "--port", port)
            assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
            stdout, stderr = rec.communicate(timeout=30)
        finally:
            if rec.poll() is None:
                rec.kill()
                rec.wait()
    assert rec.returncode == 0, stderr
    assert "last state ARMED" in stdout, stdout
    items = [item for _, item in log.decoded_items(out)]
    states = [i.state_name for i in items if isinstance(i, protocol.Telemetry)]
    events = [i.event_name for i in items if isinstance(i, protocol.Event)]
    first = states.index("ARMED")
    assert set(states[first:]) == {"ARMED"} and "TRIP" not in events, (states, events)
    assert len(states) - first >= 30, "armed for under 3 s of the recording: not past the host timeout"


@pytest.mark.req("SR-HOST-03")
def test_a_refusal_exits_non_zero_with_the_boards_reason():
    with FakeBoard(answers={"ARM": "ERR ARM tip:open; foramen:high"}) as fb:
        proc = run("arm", "--port", fb.port)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "thermoguard: the board refused ARM: tip:open; foramen:high\n"


@pytest.mark.parametrize("args,expected", [
    (["reset"], "reset needs --reason"),
    (["reset", "--reason", "  "], "reset needs --reason"),
    (["reset", "--reason", "sonde déplacée"], "cannot send RESET: not ASCII"),
    (["config", "set", "foo"], "'foo' is not KEY=VALUE"),
    (["config", "set", "foramen.high_c="], "'foramen.high_c=' is not KEY=VALUE"),
    (["config", "set"], "config set needs KEY=VALUE pairs"),
    (["config", "show", "a=1"], "config show takes no KEY=VALUE pairs"),
    (["config", "set"] + [f"foramen.high_c={40 + i}" for i in range(12)], "longer than 200 bytes"),
])
def test_what_the_cli_refuses_is_never_sent(args, expected):
    with FakeBoard() as fb:
        proc = run(*args, "--port", fb.port)
        sent = fb.commands
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("thermoguard: ") and expected in lines[0], proc.stderr
    assert sent == []  # refused before the port was opened


@pytest.mark.req("SR-HOST-03")
def test_arm_and_disarm_take_an_optional_reason(virtual_port):
    armed = run("arm", "--port", virtual_port, "--reason", "start of ablation")
    assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
    disarmed = run("disarm", "--port", virtual_port, "--reason", "probe moved")
    assert (disarmed.returncode, disarmed.stdout) == (0, "OK DISARM\n"), disarmed.stderr
