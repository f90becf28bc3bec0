"""`rfc2217://` ports (a serial port served over the network by an RFC 2217 server, such as
ser2net): the fake board's pty is served by pyserial's own RFC 2217 port manager, and the
real `thermoguard` entry point finds, commands and records the board through it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import serial
import serial.rfc2217
from fakeboard import FakeBoard
from thermoguard import log, protocol

EXE = str(Path(sys.executable).with_name("thermoguard"))


class _Writer:
    """The connection as PortManager wants it: something with write()."""

    def __init__(self, conn: socket.socket) -> None:
        self.write = conn.sendall


class _NoModemLines:
    """A pty has no modem lines (their ioctls fail): they read inactive and setting them does
    nothing; the rest is the port's."""

    cts = dsr = ri = cd = False
    _LINES = frozenset({"dtr", "rts", "break_condition"})

    def __init__(self, ser) -> None:
        object.__setattr__(self, "_ser", ser)

    def __getattr__(self, name):
        return getattr(self._ser, name)

    def __setattr__(self, name, value) -> None:
        if name not in self._LINES:
            setattr(self._ser, name, value)


class Rfc2217Server:
    """One client at a time, bridged to a local serial port (pyserial's example server, trimmed)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, serial.serial_for_url(self.device, timeout=0.05) as ser:
                conn.settimeout(0.05)
                manager = serial.rfc2217.PortManager(_NoModemLines(ser), _Writer(conn))
                self._bridge(conn, ser, manager)

    def _bridge(self, conn, ser, manager) -> None:
        while not self.stop.is_set():
            data = ser.read(4096)
            if data:
                conn.sendall(b"".join(manager.escape(data)))
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return  # the client closed
            ser.write(b"".join(manager.filter(data)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def run(*args, timeout=30):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_a_board_behind_an_rfc2217_server_is_found_commanded_and_recorded(tmp_path):
    with FakeBoard() as fb:
        server = Rfc2217Server(fb.port)
        try:
            listed = run("ports", server.url)
            assert f"{server.url}: thermoguard board" in listed.stdout, listed.stdout + listed.stderr
            armed = run("arm", "--port", server.url)
            assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
            out = tmp_path / "net.tglog"
            rec = run("record", "--port", server.url, "--out", str(out), "--duration", "1.5")
            assert rec.returncode == 0, rec.stderr
        finally:
            server.close()
    assert "ARM" in fb.verbs() and "HB" in fb.verbs()
    items = [item for _, item in log.decoded_items(out)]
    assert sum(isinstance(i, protocol.Telemetry) for i in items) >= 10
    assert log.verify(out).ok
