"""`thermoguard record` against a fake board (tests/host/fakeboard.py), run as users run it:
the raw bytes and the board's identity in the log, the heartbeat, a dropped port reopened
with a gap in the log, a port that never comes back, Ctrl-C."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeboard import GOLDEN_WIRE, FakeBoard
from tgfw import config
from thermoguard import log
from thermoguard.cli.record import StatusLine
from thermoguard.recorder import Stats

EXE = str(Path(sys.executable).with_name("thermoguard"))


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([EXE, "record", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 15) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"record did not end within {timeout} s: {out}{err}") from None
    return proc.returncode, out, err


def wait_for(pred, timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def device_stream(contents: log.LogContents) -> bytes:
    return b"".join(r.data for r in contents.records if r.kind == log.Kind.DEVICE)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """One 3.5 s recording of a fake board on a pty."""
    out = tmp_path_factory.mktemp("rec") / "session.tglog"
    with FakeBoard() as fb:
        code, stdout, stderr = finish(start("--port", fb.port, "--out", str(out), "--duration", "3.5"))
    return fb, out, code, stdout, stderr


def test_record_keeps_the_raw_bytes_and_the_boards_identity(recording):
    fb, out, code, stdout, stderr = recording
    assert code == 0, stderr
    assert "Traceback" not in stderr
    contents = log.read_log(out)
    assert contents.closed and not contents.damage
    stream = device_stream(contents)
    # Byte for byte what the board sent while the recorder had the port, golden frames included.
    assert len(stream) > 1000 and stream in bytes(fb.sent)
    assert all(wire in stream for wire in GOLDEN_WIRE)
    meta = contents.meta
    assert (meta["board"], meta["firmware"], meta["port"]) == ("fake", "0.1.0", fb.port)
    assert meta["config"] == json.loads(fb.canonical)
    assert meta["config_hash"] == f"{config.config_hash(fb.cfg):08x}"
    assert "recorded" in stdout and f"log: {out}" in stdout
    verify = subprocess.run([EXE, "verify", str(out)], capture_output=True, text=True, timeout=30)
    assert verify.returncode == 0 and verify.stdout.rstrip().endswith("OK"), verify.stdout


@pytest.mark.req("SR-HOST-04")
def test_record_sends_a_heartbeat_every_second(recording):
    fb = recording[0]
    hb = fb.heartbeats
    assert len(hb) >= 3, hb
    gaps = [b - a for a, b in zip(hb, hb[1:], strict=False)]
    # A second after the last one; a beat held back by a busy machine makes its gap longer
    # only (the board waits host_timeout_s, 5 s by default, before it trips).
    assert 0.9 <= min(gaps) <= 1.15 and max(gaps) <= 2.0, gaps


@pytest.mark.req("SR-HOST-02")
def test_record_reopens_a_dropped_port_and_logs_the_gap(tmp_path):
    out = tmp_path / "gap.tglog"
    with FakeBoard(mode="socket") as fb:
        proc = start("--port", fb.port, "--out", str(out), "--duration", "3")
        wait_for(lambda: fb.heartbeats, what="heartbeat")
        time.sleep(0.5)
        dropped_at = time.monotonic()
        fb.drop(pause_s=0.4)
        code, stdout, stderr = finish(proc)
        connections = fb.connections
        after = [t for t in fb.heartbeats if t > dropped_at]
    assert code == 0, stderr
    assert connections == 2
    assert after, "no heartbeat after the port came back"
    contents = log.read_log(out)
    gaps = [r for r in contents.records if r.kind == log.Kind.GAP]
    assert len(gaps) == 1, gaps
    assert gaps[0].data.decode().startswith("port lost: ") and b"socket disconnected" in gaps[0].data, gaps
    kinds = [r.kind for r in contents.records]
    gap_at = kinds.index(log.Kind.GAP)
    assert kinds[gap_at + 1:].count(log.Kind.DEVICE) > 5  # the recording went on
    assert "port lost" in stderr and "reconnected" in stderr and "warning" not in stderr
    assert "gaps 1" in stdout
    verify = subprocess.run([EXE, "verify", str(out)], capture_output=True, text=True, timeout=30)
    assert verify.returncode == 0, verify.stdout
    assert "gap at offset" in verify.stdout and "socket disconnected" in verify.stdout


@pytest.mark.req("SR-HOST-02")
def test_after_a_gap_another_board_gets_nothing_but_info(tmp_path):
    # The path now leads to a board with another configuration (reflashed, or another board
    # given the same name): no heartbeat keeps it armed, no queued command reaches it.
    out = tmp_path / "other.tglog"
    with FakeBoard(mode="socket") as fb:
        proc = start("--port", fb.port, "--out", str(out), "--duration", "3")
        wait_for(lambda: fb.heartbeats, what="heartbeat")
        time.sleep(0.3)
        fb.cfg = dict(fb.cfg, sample_hz=8)  # another configuration answers after the gap
        sent_before = len(fb.commands)
        fb.drop(pause_s=0.4)
        code, stdout, stderr = finish(proc)
        after = fb.verbs()[sent_before:]
    assert code == 0, stderr
    assert after and set(after) == {"INFO"}, after
    notes = [r.data.decode() for r in log.read_log(out).records if r.kind == log.Kind.NOTE]
    assert any(n.startswith("after the gap socket://") and "answers as board fake" in n and "nothing more is sent"
               in n for n in notes), notes
    assert "warning: after the gap" in stderr


@pytest.mark.req("SR-HOST-02")
def test_record_gives_up_on_a_port_that_does_not_come_back(tmp_path):
    out = tmp_path / "lost.tglog"
    fb = FakeBoard(link=tmp_path / "ttyBOARD")
    try:
        proc = start("--port", fb.port, "--out", str(out), "--reconnect-timeout", "0.5")
        wait_for(lambda: fb.heartbeats, what="heartbeat")
        fb.hangup()
        code, stdout, stderr = finish(proc, timeout=10)
    finally:
        fb.close()
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert "could not reopen it within 0.5 s" in stderr.strip().splitlines()[-1], stderr
    contents = log.read_log(out)
    assert contents.closed and not contents.damage
    assert [r.kind for r in contents.records].count(log.Kind.GAP) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_a_kill_or_a_closed_terminal_ends_the_recording_with_the_log_closed(tmp_path, sig):
    out = tmp_path / "int.tglog"
    with FakeBoard() as fb:
        proc = start("--port", fb.port, "--out", str(out))
        wait_for(lambda: fb.heartbeats, what="heartbeat")
        proc.send_signal(sig)
        code, stdout, stderr = finish(proc, timeout=5)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "recorded" in stdout
    contents = log.read_log(out)
    assert contents.closed and not contents.damage and contents.records[-1].kind == log.Kind.END


def test_a_file_where_the_logs_folder_should_be_is_one_sentence(tmp_path):
    (tmp_path / "notafolder").write_text("x")
    with FakeBoard() as fb:
        code, stdout, stderr = finish(start("--port", fb.port, "--out", str(tmp_path / "notafolder" / "x.tglog")))
    assert code == 2 and stderr.strip() == (f"thermoguard: cannot create {tmp_path}/notafolder/x.tglog: "
                                            f"{tmp_path}/notafolder is not a folder")


def test_an_existing_log_is_refused_before_the_port_is_touched(tmp_path):
    out = tmp_path / "old.tglog"
    out.write_bytes(b"keep me")
    with FakeBoard() as fb:
        code, stdout, stderr = finish(start("--port", fb.port, "--out", str(out), "--duration", "1"))
        assert fb.commands == []
    assert code == 2 and stderr.strip() == f"thermoguard: {out} exists: choose another --out or add --force to " \
                                          "overwrite it"
    assert out.read_bytes() == b"keep me"


def test_status_line_in_place_on_a_terminal_and_plain_lines_otherwise():
    stats = Stats(frames=12, gaps=1, crc_errors=2, state="ARMED")
    tty = io.StringIO()
    line = StatusLine(tty, interactive=True)
    line._last = 0.0
    line.update(stats)
    line.message("port lost")
    assert tty.getvalue().startswith("\r00:00:00  12 frames") and "\x1b[K" in tty.getvalue()
    assert "gaps 1  CRC errors 2" in tty.getvalue() and "ARMED" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[Kport lost\n")
    pipe = io.StringIO()
    plain = StatusLine(pipe, interactive=False, plain_every=10)
    plain.update(stats)  # too soon after the start: nothing
    assert pipe.getvalue() == ""
    plain._last -= 10
    plain.update(stats)
    assert pipe.getvalue().count("\n") == 1 and "\r" not in pipe.getvalue()
