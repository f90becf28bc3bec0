"""Ports and the transport: a port that is missing, busy, not serial or silent gives one
sentence and a non-zero exit (the real `thermoguard` entry point in a subprocess); reads
never block; a lost port is reported and reopened with a bounded backoff."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from fakeboard import FakeBoard
from thermoguard import board, protocol
from thermoguard.transport import PortError, PortLost, Transport

EXE = str(Path(sys.executable).with_name("thermoguard"))


def run(*args, timeout=20):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def one_sentence(proc) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake():
    with FakeBoard() as fb:
        yield fb


@pytest.mark.req("SR-HOST-01")
@pytest.mark.parametrize("command", [["arm"], ["config"], ["record", "--out", "{tmp}/x.tglog"]])
@pytest.mark.parametrize("port,expected", [
    ("/dev/thermoguard-no-such-port", "does not exist"),
    ("/dev/null", "is not a serial port"),
    ("socket://127.0.0.1:{free}", "nothing accepts connections"),
    ("socket://localhost", "HOST:PORT"),
    ("rfc2217://127.0.0.1:{free}", "nothing accepts connections"),
])
def test_a_port_that_cannot_be_opened_is_one_sentence(tmp_path, command, port, expected):
    port = port.format(free=free_tcp_port())
    proc = run(*[c.format(tmp=tmp_path) for c in command], "--port", port)
    line = one_sentence(proc)
    assert line.startswith("thermoguard: ") and expected in line, line
    assert not (tmp_path / "x.tglog").exists()


@pytest.mark.req("SR-HOST-01")
def test_a_busy_port_is_one_sentence(fake, tmp_path):
    holder = serial.serial_for_url(fake.port, exclusive=True)  # a recording already has it
    try:
        for command in (["arm"], ["record", "--out", str(tmp_path / "x.tglog")]):
            line = one_sentence(run(*command, "--port", fake.port))
            assert "is busy" in line, line
    finally:
        holder.close()
    assert fake.commands == []
    assert not (tmp_path / "x.tglog").exists()


@pytest.mark.req("SR-HOST-01")
def test_a_port_with_no_board_is_one_sentence_within_2_s(tmp_path):
    # One board per command: two commands on one port at once would find it busy.
    boards = [FakeBoard(silent=True), FakeBoard(silent=True), FakeBoard(text=b">>> \r\n"), FakeBoard(text=b">>> ")]
    try:
        cases = [(b, command, expected) for b, command, expected in zip(boards, [
            ["disarm"], ["record", "--out", str(tmp_path / "x.tglog")]] * 2, [
            "it sent nothing within 2 s"] * 2 + ["only text, no frame"] * 2, strict=True)]
        t0 = time.monotonic()
        procs = [subprocess.Popen([EXE, *command, "--port", b.port], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for b, command, _ in cases]
        for proc, (_, _, expected) in zip(procs, cases, strict=True):
            out, err = proc.communicate(timeout=20)
            line = one_sentence(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
            assert "answers as no thermoguard board" in line and expected in line, line
        assert time.monotonic() - t0 < 15  # all four at once, start-ups included (a busy machine)
    finally:
        for b in boards:
            b.close()
    assert not (tmp_path / "x.tglog").exists()
    # The decision itself, without a process's start-up: 2 s.
    with FakeBoard(silent=True) as silent:
        t0 = time.monotonic()
        with pytest.raises(board.NotABoard, match="sent nothing within 2 s"):
            board.connect(silent.port)
        assert 1.9 < time.monotonic() - t0 < 3.5


def test_ports_says_which_port_is_a_board(fake):
    with FakeBoard(silent=True) as silent:
        proc = run("ports", fake.port, silent.port, "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith(f"{fake.port}: thermoguard board fake, firmware 0.1.0") for line in lines), lines
    assert any(line.startswith(f"{silent.port} answers as no thermoguard board") for line in lines), lines


def test_a_read_never_blocks():
    with FakeBoard(silent=True) as fb, Transport(fb.port) as t:
        t0 = time.monotonic()
        assert t.read() == b""
        assert time.monotonic() - t0 < 0.5


def test_board_client_identifies_and_joins_the_configuration(fake):
    with board.connect(fake.port) as b:
        assert b.info.board == "fake" and b.info.firmware == "0.1.0" and b.info.state == "DISARMED"
        text, reply = b.get_config()
        assert reply.ok and text == fake.canonical and len(text) > 180  # joined from several pieces
        assert b.command("ARM").text == "OK ARM"


def test_info_parsing():
    info = board.parse_info("fw=0.1.0 board=rp2_pico config=none state=DISARMED error=channels[0].cs: in use")
    assert (info.firmware, info.board, info.config_hash, info.state) == ("0.1.0", "rp2_pico", None, "DISARMED")
    assert info.error == "channels[0].cs: in use"


@pytest.mark.req("SR-HOST-02")
def test_a_lost_pty_is_reported_and_reopening_it_gives_up_in_time(tmp_path):
    fb = FakeBoard(link=tmp_path / "ttyBOARD")
    t = Transport(fb.port).open()
    try:
        fb.hangup()
        with pytest.raises(PortLost):
            for _ in range(100):
                t.read()
        t0 = time.monotonic()
        assert not t.reconnect(0.5)
        assert 0.4 < time.monotonic() - t0 < 2.0
        assert "does not exist" in t.last_error, t.last_error
    finally:
        t.close()
        fb.close()


@pytest.mark.req("SR-HOST-02")
def test_a_dropped_socket_is_reopened():
    with FakeBoard(mode="socket") as fb, Transport(fb.port) as t:
        decoder = protocol.Decoder()
        deadline = time.monotonic() + 5
        while not decoder.frames and time.monotonic() < deadline:
            decoder.feed(t.read())
        fb.drop(pause_s=0.3)
        with pytest.raises(PortLost, match="socket disconnected"):
            while time.monotonic() < deadline:
                t.read()
        assert t.reconnect(5)
        frames = decoder.frames
        while decoder.frames == frames and time.monotonic() < deadline + 5:
            decoder.feed(t.read())
        assert decoder.frames > frames and fb.connections == 2


def test_open_errors_are_port_errors():
    with pytest.raises(PortError, match="does not exist"):
        Transport("/dev/thermoguard-no-such-port").open()
