"""A fake thermoguard board for host tests: a pty (or a TCP socket for pyserial's
`socket://`) fed by a thread with the golden frames of tests/vectors/protocol.json and
telemetry at `rate_hz`, answering INFO, GET, HB and the operator commands minimally.

    with FakeBoard() as fb:                 # fb.port is the pty's slave path
        ... run `thermoguard record --port fb.port` ...
        fb.heartbeats                        # monotonic times of the HB lines received

`FakeBoard(mode="socket")` serves socket://127.0.0.1:PORT; `drop()` closes the client's
connection and accepts the next one after a pause (a port that closes and comes back).
`silent=True` sends and answers nothing; `text=b">>> "` sends only that text (a REPL);
`link=PATH` serves the pty under a symlink that `hangup()` removes (an unplugged device).
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import threading
import time
import tty
from pathlib import Path

from tgfw import config
from thermoguard import protocol

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "protocol.json").read_text())
GOLDEN_WIRE = [bytes.fromhex(v["wire_hex"]) for kind in ("telemetry", "events") for v in VECTORS[kind]]
TELEMETRY = VECTORS["telemetry"][0]["inputs"]  # one channel, healthy, disarmed
CONFIG = {
    "sample_hz": 10, "stale_ms": 300, "host_timeout_s": 5,
    "channels": [{"name": "tip", "chip": "max31856", "cs": 17, "tc_type": "K", "role": "ablation",
                  "high_c": 95.0, "low_c": 15.0, "rate_c_per_s": 10.0}],
}
STATES = {1: "DISARMED", 2: "ARMED", 3: "TRIPPED"}


class FakeBoard:
    def __init__(self, mode: str = "pty", rate_hz: float = 20.0, silent: bool = False, text: bytes = b"",
                 answers: dict[str, str] | None = None, golden: bool = True, link: Path | None = None) -> None:
        self.mode = mode
        self.rate_hz = rate_hz
        self.silent = silent
        self.text = text
        self.answers = answers or {}  # verb -> reply text, instead of the default answer
        self.golden = golden  # send the golden frames once, after the first heartbeat
        self.cfg = config.validate(json.loads(json.dumps(CONFIG)))
        self.canonical = config.canonical(self.cfg)
        self.state = 1
        self.commands: list[protocol.Command] = []
        self.heartbeats: list[float] = []
        self.sent = bytearray()  # every byte the client's side accepted
        self.connections = 0
        self._seq = 0
        self._t0 = time.monotonic()
        self._line = bytearray()
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._hold_until = 0.0  # no accept before this (after drop)
        self._golden_sent = False
        self._lock = threading.Lock()
        self._link = link
        self._hung_up = False
        if mode == "pty":
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)  # no echo, no CR/LF mapping: bytes go through as they are
            os.set_blocking(self._master, False)
            self.port = os.ttyname(self._slave)
            if link is not None:
                # Like /dev/serial/by-id/...: the name goes away with the device, while a
                # /dev/pts/N is soon given to the next pty (another test's board).
                os.symlink(self.port, link)
                self.port = str(link)
        else:
            self._server = socket.create_server(("127.0.0.1", 0))
            self._server.setblocking(False)
            self.port = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="fakeboard", daemon=True)
        self._thread.start()

    # Test controls

    def drop(self, pause_s: float = 0.3) -> None:
        """Close the client's connection; accept the next one after pause_s."""
        with self._lock:
            self._hold_until = time.monotonic() + pause_s
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def hangup(self) -> None:
        """Close the pty for good: the client's reads fail and the port cannot be reopened."""
        self._stop.set()
        self._thread.join(5)
        if self.mode == "pty" and not self._hung_up:
            self._hung_up = True  # close each fd once: its number may be reused at once
            if self._link is not None and os.path.lexists(self._link):
                os.unlink(self._link)
            os.close(self._master)
            os.close(self._slave)

    def close(self) -> None:
        self.hangup()
        if self.mode == "socket":
            self.drop()
            self._server.close()

    def __enter__(self) -> FakeBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def verbs(self) -> list[str]:
        return [c.verb for c in self.commands]

    # The board

    def _serve(self) -> None:
        next_frame = time.monotonic()
        while not self._stop.is_set():
            self._accept()
            data = self._read()
            for b in data:
                if b == 0x0A:
                    self._handle(bytes(self._line))
                    self._line.clear()
                else:
                    self._line.append(b)
            now = time.monotonic()
            if now >= next_frame:
                next_frame = now + 1 / self.rate_hz
                if self.text:
                    self._send(self.text)
                elif not self.silent:
                    self._send(self._telemetry())
            self._stop.wait(0.005)

    def _accept(self) -> None:
        if self.mode != "socket" or self._conn is not None or time.monotonic() < self._hold_until:
            return
        try:
            conn, _ = self._server.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        with self._lock:
            self._conn = conn
            self.connections += 1
        self._line.clear()

    def _read(self) -> bytes:
        try:
            if self.mode == "pty":
                ready, _, _ = select.select([self._master], [], [], 0)
                return os.read(self._master, 4096) if ready else b""
            with self._lock:
                conn = self._conn
            if conn is None:
                return b""
            data = conn.recv(4096)
            if not data:  # the client closed its end
                with self._lock:
                    if self._conn is conn:
                        conn.close()
                        self._conn = None
            return data
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF, errno.ECONNRESET, errno.ENOTCONN):
                return b""
            raise

    def _send(self, data: bytes) -> None:
        # Like a UART with nobody reading: what the other side has no room for is dropped.
        try:
            if self.mode == "pty":
                n = os.write(self._master, data)
            else:
                with self._lock:
                    if self._conn is None:
                        return
                    n = self._conn.send(data)
        except (BlockingIOError, OSError):
            return
        self.sent += data[:n]

    def _next(self) -> tuple[int, int, int]:
        seq = self._seq
        self._seq = (self._seq + 1) % protocol.SEQ_MOD
        t = time.monotonic() - self._t0
        return seq, int(t), int((t % 1) * 1e6)

    def _telemetry(self) -> bytes:
        seq, t_s, t_us = self._next()
        i = dict(TELEMETRY, seq=seq, t_s=t_s, t_us=t_us, state=self.state)
        n = i.pop("n_channels")
        assert n == len(i["temp"])
        return protocol.encode_telemetry(**i)

    def _reply(self, text: str) -> None:
        self._send(protocol.encode_reply(*self._next(), text))

    def _handle(self, line: bytes) -> None:
        if self.silent or self.text:
            return
        try:
            cmd = protocol.parse_command(line)
        except protocol.CommandError as e:
            self._reply(f"ERR ? {e}")
            return
        if cmd is None:
            return
        self.commands.append(cmd)
        if cmd.verb == "HB":
            self.heartbeats.append(time.monotonic())
            if self.golden and not self._golden_sent:
                self._golden_sent = True
                for wire in GOLDEN_WIRE:
                    self._send(wire)
            return
        if cmd.verb in self.answers:
            self._reply(self.answers[cmd.verb])
            return
        if cmd.verb == "INFO":
            chash = config.config_hash(self.cfg)
            self._reply(f"OK INFO fw=0.1.0 board=fake config={chash:08x} state={STATES[self.state]}")
        elif cmd.verb == "GET" and not cmd.args:
            parts = [self.canonical[k:k + 180] for k in range(0, len(self.canonical), 180)]
            for k, part in enumerate(parts):
                self._reply(f"OK GET {k + 1}/{len(parts)} {part}")
        elif cmd.verb == "ARM":
            self.state = 2
            self._reply("OK ARM")
        elif cmd.verb == "DISARM":
            self.state = 1
            self._reply("OK DISARM")
        elif cmd.verb == "RESET":
            self._reply("OK RESET" if self.state == 3 else "ERR RESET not tripped")
        else:
            self._reply(f"OK {cmd.verb} {cmd.args}".rstrip())
