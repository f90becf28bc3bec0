"""The HIL pytest plugin: one test, any board (DESIGN.md principle 7).

`board` is the board under test: a virtual board (`python -m thermoguard.virtual`) by
default, the real board on a serial port with `--port /dev/ttyACM0 --board NAME`.
`@pytest.mark.board(speed=..., scenario=..., config=...)` sets up a virtual board (a real
board keeps what it has). A virtual board has `board.control`, its control channel
(thermoguard.vcontrol): tests that set temperatures or faults, cut the power or read the
pins are marked `@pytest.mark.needs_control` and skipped on a real board, which has none.
`virtual_board` starts virtual boards only (`virtual_board(scenario=..., speed=...)`), for
tests of the virtual board itself.

Boards are stopped after the test; each board's serial log (everything it sent, frames
summarised) goes into the report of a failed test. Clients talk to the board only through
its port, as they would to a real one: pyserial here, mpremote as a subprocess (always
under a timeout: on a pty it waits forever for an answer that does not come).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import serial
from tgfw import codes
from thermoguard import protocol
from thermoguard.vcontrol import Control

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15
MPREMOTE_TIMEOUT_S = 20


def mpremote_command() -> list[str]:
    beside = Path(sys.executable).with_name("mpremote")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "mpremote"]


class BoardTimeout(AssertionError):
    pass


class SerialClient:
    """A pyserial client on a board's port: what the tests read and send, any board."""

    virtual = False
    control: Control | None = None  # the control channel: only a virtual board has one
    port: str

    def _client(self) -> None:
        self.ser: serial.SerialBase | None = None
        self.decoder = protocol.Decoder()
        self.raw = bytearray()  # everything this client read
        self.items: list[protocol.Item] = []

    # The serial client

    def open(self) -> SerialClient:
        if self.ser is None:
            self.ser = serial.serial_for_url(self.port, timeout=0.05)
        return self

    def close_port(self) -> None:
        if self.ser is not None:
            self.ser.close()
            self.ser = None

    def flush(self) -> tuple[int, int]:
        """Forget what waits unread in the port (stale output); returns a mark after it."""
        self.open().ser.reset_input_buffer()
        self.decoder = protocol.Decoder()
        return self.mark()

    def send(self, data: bytes) -> None:
        self.open().ser.write(data)

    def command(self, verb: str, args: str = "") -> None:
        self.send(protocol.encode_command(verb, args))

    def pump(self) -> None:
        data = self.open().ser.read(65536)
        if data:
            self.raw += data
            self.items += self.decoder.feed(data)

    def mark(self) -> tuple[int, int]:
        """Where the bytes and items read so far end: wait_* look only after a mark."""
        return len(self.raw), len(self.items)

    def wait_item(self, pred, timeout: float = 10, since: tuple[int, int] | None = None, what: str = "item"):
        k = (since or self.mark())[1]
        end = time.monotonic() + timeout
        while True:
            while k < len(self.items):
                item = self.items[k]
                k += 1
                if pred(item):
                    return item
            if time.monotonic() > end:
                raise BoardTimeout(f"no {what} within {timeout} s")
            self.pump()

    def telemetry(self, pred=lambda t: True, timeout: float = 10, since=None, what: str = "telemetry"):
        return self.wait_item(lambda i: isinstance(i, protocol.Telemetry) and pred(i), timeout, since, what)

    def event(self, name: str, timeout: float = 10, since=None) -> protocol.Event:
        return self.wait_item(lambda i: isinstance(i, protocol.Event) and i.event_name == name,
                              timeout, since, f"{name} event")

    def reply(self, verb: str, timeout: float = 10, since=None) -> protocol.Reply:
        return self.wait_item(lambda i: isinstance(i, protocol.Reply) and i.verb == verb,
                              timeout, since, f"reply to {verb}")

    def wait_bytes(self, pattern: bytes, timeout: float = 10, since: tuple[int, int] | None = None) -> int:
        start = (since or self.mark())[0]
        end = time.monotonic() + timeout
        while True:
            k = self.raw.find(pattern, start)
            if k >= 0:
                return k
            if time.monotonic() > end:
                raise BoardTimeout(f"no {pattern!r} within {timeout} s; got {bytes(self.raw[start:])[-300:]!r}")
            self.pump()

    # mpremote

    def mpremote(self, *args: str, timeout: float = MPREMOTE_TIMEOUT_S, check: bool = True):
        """Run mpremote on this board's port (the test's own client closes it first)."""
        self.close_port()
        cmd = mpremote_command() + ["connect", self.port, *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise BoardTimeout(f"mpremote {' '.join(args)} did not finish within {timeout} s: {e.stdout!r}") from None
        if check and proc.returncode:
            raise AssertionError(f"mpremote {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    # Life cycle and the log

    def stderr(self) -> str:
        return ""

    def stop(self) -> None:
        self.close_port()

    def log_text(self) -> str:
        return render_log(bytes(self.raw))


class RealBoard(SerialClient):
    """A board on a serial port (--port): its log is what this client read from it."""

    def __init__(self, port: str, name: str) -> None:
        self.port = port
        self.name = name
        self._client()

    def prepare(self) -> None:
        """A known start: the firmware running and not ARMED. A real board keeps its state
        between tests (a virtual one starts fresh); a trip stays unless RESET clears it."""
        try:
            t = self.telemetry(timeout=3, since=self.flush())
        except BoardTimeout:  # stopped at the REPL by an earlier test: a soft reset runs main.py
            self.send(b"\r\x02\x04")
            t = self.telemetry(timeout=10)
        if t.state == codes.ARMED:
            self.command("DISARM")
        elif t.state == codes.TRIPPED:
            self.command("RESET", "hil test setup")
        self.flush()

    def stop(self) -> None:
        """A real board is never left permitting RF by a test: DISARM (refused, and harmless,
        when it is not ARMED), then close the port."""
        try:
            self.command("DISARM")
        except (OSError, serial.SerialException):
            pass
        self.close_port()


class VirtualBoard(SerialClient):
    """A running `thermoguard virtual`, a pyserial client on its port, and its control channel."""

    virtual = True

    def __init__(self, workdir: Path, scenario: str | Path | None = None, config: str | Path | None = None,
                 speed: str | float = 1, board_dir: Path | None = None, socket: bool = False) -> None:
        self.workdir = workdir
        self.board_dir = board_dir
        self.log_path = workdir / f"serial-{id(self):x}.log"
        # A unix socket path has at most 107 bytes: pytest's folders can be longer.
        self._ctl_dir = tempfile.mkdtemp(prefix="tg-hil-")
        self.control_path = Path(self._ctl_dir) / "control.sock"
        self._control: Control | None = None
        args = [sys.executable, "-m", "thermoguard.virtual", "--speed", str(speed), "--log", str(self.log_path),
                "--control", str(self.control_path)]
        if scenario is not None:
            args += ["--scenario", str(scenario)]
        if config is not None:
            args += ["--config", str(config)]
        if board_dir is not None:
            args += ["--board-dir", str(board_dir)]
        if socket:
            args += ["--socket", "0"]
        self._client()
        self.port = ""
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(ROOT))
            self.port = self._first_line()
        except BaseException:
            self.stop()
            raise

    def _first_line(self) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            raise BoardTimeout(f"thermoguard virtual printed no port: {self.stderr()}")
        return line

    @property
    def control(self) -> Control:  # type: ignore[override]
        if self._control is None:
            self._control = Control(self.control_path)
        return self._control

    def stderr(self) -> str:
        """What the bridge printed on stderr so far."""
        stream = self.proc.stderr if self.proc is not None else None
        if stream is None or stream.closed:
            return ""
        os.set_blocking(stream.fileno(), False)
        try:
            data = stream.read()
        except BlockingIOError:
            data = None
        return (data or b"").decode(errors="replace")

    def stop(self) -> None:
        self.close_port()
        if self._control is not None:
            self._control.close()
            self._control = None
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
        shutil.rmtree(self._ctl_dir, ignore_errors=True)

    def log_text(self) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no serial log)"
        return render_log(data)


def _printable(data: bytes) -> str:
    """Text as printed, other bytes as \\xNN (line ends kept, carriage returns dropped)."""
    out = []
    for ch in data.decode("utf-8", "surrogateescape"):
        if ch == "\n" or (ch.isprintable() and ch < "\udc80"):
            out.append(ch)
        elif ch != "\r":
            code = ord(ch) - 0xDC00 if ch >= "\udc80" else ord(ch)
            out.append(f"\\x{code:02x}")
    return "".join(out)


def render_log(data: bytes) -> str:
    """The board's output for people: text as printed, frames one line each, runs of
    telemetry folded into one line."""
    out: list[str] = []
    run: list[protocol.Telemetry] = []
    text = bytearray()

    def fold():
        if run:
            a, b = run[0], run[-1]
            out.append(f"[telemetry x{len(run)} t={a.t_dev_s:.1f}..{b.t_dev_s:.1f} s "
                       f"{b.state_name} interlock={int(b.interlock_on)} "
                       f"temps={[c.temp_c for c in b.channels]}]")
            run.clear()
        if text:
            out.append(_printable(bytes(text)))
            text.clear()

    chunks = data.split(b"\x00")
    frames = [protocol.decode_frame(c) if c else None for c in chunks]
    for k, (chunk, item) in enumerate(zip(chunks, frames, strict=True)):
        if item is None:
            if chunk:
                if run:
                    fold()
                text += chunk
                if k + 1 < len(chunks) and chunks[k + 1] and frames[k + 1] is None:
                    text += b"\x00"  # a zero inside text (raw-paste answers have one)
            continue
        if text:
            fold()
        if isinstance(item, protocol.Telemetry):
            run.append(item)
        else:
            fold()
            out.append(f"[{type(item).__name__.lower()} t={item.t_dev_s:.2f} {item}]")
    fold()
    return "\n".join(out)


def pytest_addoption(parser):
    group = parser.getgroup("thermoguard HIL")
    group.addoption("--port", help="run the HIL tests on the board on this serial port (default: a virtual board)")
    group.addoption("--board", help="the name of the board on --port (boards/NAME.py)")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_control: the test sets the sensors, the power or reads pins "
                            "through the virtual board's control channel; skipped on a real board (--port)")
    config.addinivalue_line("markers", "board(speed=1, scenario=None, config=None): how the `board` fixture "
                            "starts a virtual board")
    if config.getoption("--port") and not config.getoption("--board"):
        raise pytest.UsageError("--port needs --board NAME (the board file the port's board runs)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    boards = getattr(item, "_virtual_boards", None)
    if report.failed and boards:
        for k, board in enumerate(boards):
            report.sections.append((f"board {k} serial log ({board.port})", board.log_text()))
            err = board.stderr()
            if err:
                report.sections.append((f"board {k} stderr", err))


@pytest.fixture
def virtual_board(request, tmp_path):
    """Start a virtual board: `board = virtual_board(scenario=..., speed=..., socket=...)`."""
    boards: list[SerialClient] = request.node.__dict__.setdefault("_virtual_boards", [])

    def start(**kwargs) -> VirtualBoard:
        board = VirtualBoard(tmp_path, **kwargs)
        boards.append(board)
        return board

    try:
        yield start
    finally:
        stop_all(boards)


def stop_all(boards: list[SerialClient]) -> None:
    """Stop every board, even when stopping one of them fails (the first failure is raised
    once all are stopped)."""
    error: BaseException | None = None
    for board in boards:
        try:
            board.stop()
        except BaseException as e:  # noqa: BLE001 - raised below, after the other boards
            error = error or e
    if error is not None:
        raise error


@pytest.fixture
def board(request, tmp_path):
    """The board under test: virtual by default, the one on --port otherwise. Whatever
    fails while it is set up, the board is stopped (its port closed, a real board disarmed)."""
    port = request.config.getoption("--port")
    if port and request.node.get_closest_marker("needs_control"):
        pytest.skip("needs the virtual board's control channel; the board on --port has none")
    boards: list[SerialClient] = request.node.__dict__.setdefault("_virtual_boards", [])
    mine: list[SerialClient] = []
    try:
        if port:
            b: SerialClient = RealBoard(port, request.config.getoption("--board"))
            boards.append(b)
            mine.append(b)
            b.prepare()
        else:
            marker = request.node.get_closest_marker("board")
            b = VirtualBoard(tmp_path, **(marker.kwargs if marker else {}))
            boards.append(b)
            mine.append(b)
        yield b
    finally:
        stop_all(mine)


@pytest.fixture
def scenario_file(tmp_path):
    """Write a scenario CSV: `scenario_file("t_s,foramen", "0,37", ...)`."""

    def write(*lines: str) -> Path:
        path = tmp_path / f"scenario-{len(os.listdir(tmp_path))}.csv"
        path.write_text("\n".join(lines) + "\n")
        return path

    return write
