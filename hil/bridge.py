"""The virtual board as a serial port: the MicroPython Unix port on a raw pty, bridged to a
second pty (or a TCP socket) that clients open like a board's USB serial port.

    client (pyserial, mpremote, thermoguard)
        |  /dev/pts/N (the bridge keeps its own handle open) or socket://127.0.0.1:PORT
    Bridge  (this module, CPython)            <- control socket (ControlServer, thermoguard.vcontrol)
        |  a fresh raw pty for each run of the board (no client can open it: private_pty),
        |  plus a control pipe each way; the board dies with the bridge
    micropython -i hil/device/vstart.py   (the board folder mounted at /, and its control thread)

The bridge does what a board's reset circuitry and USB-serial chip would do and the Unix
port cannot (docs/virtual-board.md):
- soft reset: Ctrl-D at the REPL ends the process; the bridge prints `MPY: soft reboot`,
  starts the next run in the REPL mode the board was in (raw: boot.py only, then `\\x01`
  so the raw banner follows) with the virtual clock carried over;
- hard and watchdog resets: the board asks for them on the control pipe
  (machine.reset(), a watchdog left unfed in virtual time); the bridge ends the process
  and starts the next with machine.reset_cause() set;
- Ctrl-C: a `\\x03` from the client becomes SIGINT while the process has a SIGINT handler
  (it is running code), as a board's UART interrupt would; otherwise it is a byte;
- output is dropped when the client does not read (never blocks the board), input while
  the board is resetting is lost, as on a UART;
- the bench around the board, for tests: the control socket sets the chips' temperatures
  and faults (kept across resets), reads the pins and the clock, cuts and restores the
  power (power-on reset, nothing out while dark) and hangs the firmware.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import math
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE = ROOT / "hil" / "device"
FIRMWARE = ROOT / "firmware"
BOARD_FILE = ROOT / "boards" / "virtual.py"
VSTART = DEVICE / "vstart.py"
LIB_FILES = ("machine.py", "time.py", "scenario.py", "plant.py", "vchips.py")
LIB_PACKAGES = ("chipmodels",)

# machine.reset_cause() values (hil/device/machine.py).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
SOFT_RESET = 5
RESET_KINDS = {"HARD": HARD_RESET, "WDT": WDT_RESET, "SOFT": SOFT_RESET}

SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()" for more information.\r\n'
CTRL_A = b"\x01"
CTRL_C = 0x03
HOLD_AFTER_INTERRUPT_S = 0.3  # input waits this long at most for a Ctrl-C to take effect
MAX_PENDING = 1 << 20  # bytes of client input kept while the board does not read them
CRASH_BACKOFF_S = 1.0  # a board that dies at once is restarted no faster than this
READY_TIMEOUT_S = 10.0  # input flows after this even if the board never said it was set up
ANSWER_TIMEOUT_S = 2.0  # a control request the board's thread has not answered by then fails
PR_SET_PDEATHSIG = 1  # prctl(2)
FAULT_WORDS = ("open", "short_gnd", "short_vcc", "zeros", "ones", "stuck", "absent")  # scenario words


def _ignore_pycache(_dir, names):
    return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".mpy"))]


def prepare_board_dir(board_dir: Path, config_text: str | None) -> Path:
    """Put the firmware in a board folder as a deployment puts it on a board's flash.

    boot.py, main.py, tgfw/ and board.py (boards/virtual.py) are always refreshed from the
    checkout; /lib gets the emulated machine and time modules, the chip models and the
    scenario parser. config.json is written when config_text is given; trip.json and any
    other file stay, as in flash.
    """
    board_dir = Path(board_dir)
    board_dir.mkdir(parents=True, exist_ok=True)
    for name in ("boot.py", "main.py"):
        shutil.copyfile(FIRMWARE / name, board_dir / name)
    shutil.copytree(FIRMWARE / "tgfw", board_dir / "tgfw", dirs_exist_ok=True, ignore=_ignore_pycache)
    shutil.copyfile(BOARD_FILE, board_dir / "board.py")
    lib = board_dir / "lib"
    lib.mkdir(exist_ok=True)
    for name in LIB_FILES:
        shutil.copyfile(DEVICE / name, lib / name)
    for name in LIB_PACKAGES:
        shutil.copytree(DEVICE / name, lib / name, dirs_exist_ok=True, ignore=_ignore_pycache)
    if config_text is not None:
        (board_dir / "config.json").write_text(config_text)
    return board_dir


def micropython_command() -> str:
    beside = Path(sys.executable).with_name("micropython")
    found = str(beside) if beside.exists() else shutil.which("micropython")
    if not found:
        raise FileNotFoundError("the MicroPython Unix port (micropython) is not installed: run `make setup`")
    return found


def _nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def raw_pty() -> tuple[int, int]:
    """A pty pair in raw mode (no echo, no line editing, no signal keys, no CR/LF mapping)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    _nonblocking(master)
    return master, slave


def private_pty() -> tuple[int, int]:
    """A raw pty pair whose slave no client can open as a board: the bridge's own handle
    holds an exclusive flock on it (pyserial's exclusive=True, as thermoguard's host opens
    ports, then fails as busy) and the tty is in exclusive mode (TIOCEXCL: any other open
    fails with EBUSY, except by a process with CAP_SYS_ADMIN). A /dev/pts/N path once
    served to clients is reused by the system for later ptys, so a client reconnecting to
    an old board's path must not land on this one and read the board's bytes. A pair
    someone opened and locked in the moment before the lock is given up for another."""
    for _ in range(8):
        master, slave = raw_pty()
        try:
            fcntl.flock(slave, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(master)
            os.close(slave)
            continue
        fcntl.ioctl(slave, termios.TIOCEXCL)
        return master, slave
    raise OSError(errno.EBUSY, "every new pty was taken before the bridge could lock it")


def _die_with_parent():
    """A preexec_fn that ends the child when the process that started it dies, even by
    SIGKILL (Linux: PR_SET_PDEATHSIG), so that no board runs on without its bridge; None
    where prctl is missing (the board's control thread still ends it when its command pipe
    closes, hil/device/vstart.py). The signal comes when the thread that started the child
    ends: the bridge starts every run from the thread that runs its loop."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the bridge died before the request took hold
            os._exit(1)

    return preexec


# The client side.


class PtyPort:
    """A pty the client opens; the bridge keeps its own handle on the slave side open, so
    a client closing the port does not end the master (hil-notes)."""

    def __init__(self) -> None:
        self.master, self._slave = raw_pty()
        self.path = os.ttyname(self._slave)

    @property
    def url(self) -> str:
        return self.path

    def fds(self) -> list[int]:
        return [self.master]

    def readable(self, fd: int) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> None:
        """Best effort, as a UART: what the client has no room for is dropped."""
        try:
            os.write(self.master, data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            if e.errno != errno.EIO:
                raise

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class SocketPort:
    """A TCP server for pyserial's socket:// URL: one client at a time (a new connection
    takes over); output is dropped while nobody is connected or the client does not read."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.listener = socket.create_server((host, port))
        self.listener.setblocking(False)
        self.host = host
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def fds(self) -> list[int]:
        fds = [self.listener.fileno()]
        if self.conn is not None:
            fds.append(self.conn.fileno())
        return fds

    def readable(self, fd: int) -> bytes:
        if fd == self.listener.fileno():
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return b""
            self._drop_client()
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = conn
            return b""
        if self.conn is None or fd != self.conn.fileno():
            return b""
        try:
            data = self.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            self._drop_client()
        return data

    def write(self, data: bytes) -> None:
        if self.conn is None:
            return
        try:
            self.conn.send(data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop_client()

    def _drop_client(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self._drop_client()
        self.listener.close()


class ControlServer:
    """The control channel: a unix socket beside the serial port that tests (and people)
    connect to, one JSON object a line each way (thermoguard.vcontrol is the client).
    The firmware cannot see it: requests go to a thread of the board process, not to its
    serial port."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        if os.path.exists(self.path) and stat.S_ISSOCK(os.stat(self.path).st_mode):
            os.unlink(self.path)  # a socket left by a board that was killed
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.clients: dict[int, tuple[socket.socket, bytearray]] = {}

    def fds(self) -> list[int]:
        return [self.listener.fileno(), *self.clients]

    def readable(self, fd: int) -> list[tuple[socket.socket, object]]:
        """Requests that arrived on fd: (client, decoded JSON, or the error text)."""
        if fd == self.listener.fileno():
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return []
            conn.setblocking(False)
            self.clients[conn.fileno()] = (conn, bytearray())
            return []
        if fd not in self.clients:
            return []
        conn, buf = self.clients[fd]
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return []
        buf += data
        out = []
        while b"\n" in buf:
            k = buf.index(b"\n")
            line = bytes(buf[:k]).strip()
            del buf[:k + 1]
            if not line:
                continue
            try:
                request = json.loads(line)
            except ValueError:
                request = "a request is one JSON object a line"
            out.append((conn, request))
        return out

    def reply(self, conn: socket.socket, answer: dict) -> None:
        if conn.fileno() not in self.clients:
            return  # the client has gone
        data = (json.dumps(answer) + "\n").encode()
        try:
            conn.setblocking(True)
            conn.settimeout(1.0)  # answers are small; a client that never reads is dropped
            conn.sendall(data)
        except OSError:
            self.drop(conn)
            return
        conn.setblocking(False)

    def drop(self, conn: socket.socket) -> None:
        self.clients.pop(conn.fileno(), None)
        conn.close()

    def close(self) -> None:
        for conn, _ in list(self.clients.values()):
            conn.close()
        self.clients.clear()
        self.listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# The board side.


class BoardRun:
    """One run of the MicroPython Unix port, from a (virtual) power-on or reset to its end."""

    def __init__(self, command: list[str], board_dir: Path, env: dict[str, str], requests: bytes = b"") -> None:
        # The bridge keeps its locked handle on the slave until close(): the path stays
        # unopenable for as long as it exists (private_pty).
        self.master, self._slave = private_pty()
        ctl_r, ctl_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        if requests:  # what must hold from the first instruction on (the overrides)
            os.write(cmd_w, requests)
        env = dict(env, TG_VB_CTL=str(ctl_w), TG_VB_CMD=str(cmd_r))
        try:
            # A session of its own (the bridge ends the whole group), and it dies with the
            # bridge: a board left running after its bridge was killed would hold the
            # board folder and spin on a closed pty.
            self.proc = subprocess.Popen(
                command, stdin=self._slave, stdout=self._slave, stderr=self._slave, cwd=str(board_dir), env=env,
                pass_fds=(ctl_w, cmd_r), start_new_session=True, preexec_fn=_die_with_parent(),
            )
        except BaseException:
            for fd in (self.master, self._slave, ctl_r, cmd_w):
                os.close(fd)
            raise
        finally:
            os.close(ctl_w)
            os.close(cmd_r)
        self.ctl = ctl_r
        self.cmd = cmd_w
        _nonblocking(self.ctl)
        _nonblocking(self.cmd)
        self.answers: list[tuple[str, list[str]]] = []  # (request id, words) from the board
        self.started = time.monotonic()
        self.ready = False  # vstart has set the board up: client input may flow
        self.reset: tuple[str, int, int] | None = None  # (kind, clock_us, world_us) asked for
        self.clock: tuple[int, int] | None = None  # (clock_us, world_us) at exit
        self.ended = False
        self.ctl_open = True
        self._ctl_buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def handles_sigint(self) -> bool:
        """Whether the process has a SIGINT handler now (it does while it runs code)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
        except OSError:
            pass
        return False

    def read_output(self) -> bytes | None:
        """The board's output so far; None once the process has ended and all is read."""
        try:
            data = os.read(self.master, 65536)
        except (BlockingIOError, InterruptedError):
            return None if self.proc.poll() is not None and not self._readable() else b""
        except OSError as e:
            if e.errno == errno.EIO:  # the pty hung up: nothing more will come
                return None
            raise
        return data if data else None

    def _readable(self) -> bool:
        r, _, _ = select.select([self.master], [], [], 0)
        return bool(r)

    def read_ctl(self) -> list[str]:
        """Complete lines from the board's control pipe."""
        chunks = []
        while True:
            try:
                data = os.read(self.ctl, 4096)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                self.ctl_open = False
                break
            chunks.append(data)
        self._ctl_buf += b"".join(chunks)
        *lines, self._ctl_buf = self._ctl_buf.split(b"\n")
        out = [line.decode("ascii", "replace").strip() for line in lines]
        for line in out:
            words = line.split()
            if words[:1] == ["READY"]:
                self.ready = True
            elif words[:1] == ["RESET"] and len(words) == 4 and words[1] in RESET_KINDS:
                self.reset = (words[1], int(words[2]), int(words[3]))
            elif words[:1] == ["CLOCK"] and len(words) == 3:
                self.clock = (int(words[1]), int(words[2]))
            elif words[:1] == ["A"] and len(words) >= 2:
                self.answers.append((words[1], words[2:]))
        return out

    def ask(self, line: str) -> bool:
        """Send a request line to the board's control thread; False if it cannot take it."""
        try:
            return os.write(self.cmd, (line + "\n").encode()) > 0
        except (BlockingIOError, InterruptedError, BrokenPipeError):
            return False
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> int:
        self.kill()
        code = self.proc.wait()
        self.read_ctl()
        # The master first: closing it removes the slave's path, so the lock is let go only
        # once nothing can open the pty any more.
        for fd in (self.master, self._slave, self.ctl, self.cmd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.ended = True
        return code


class Bridge:
    """Serves one virtual board on `port` until stop() (or a signal) ends it."""

    def __init__(self, board_dir: Path, port: PtyPort | SocketPort, scenario: Path | None = None,
                 speed: float = 1.0, log: Path | None = None, heap: str = "4M",
                 micropython: str | None = None, control: Path | None = None) -> None:
        self.board_dir = Path(board_dir).resolve()
        self.port = port
        self.scenario = Path(scenario).resolve() if scenario else None
        self.speed = speed  # real-time multiple; 0: as fast as the firmware runs
        self.command = [micropython or micropython_command(), "-X", f"heapsize={heap}", "-i", str(VSTART)]
        self.log = open(log, "ab", buffering=0) if log else None  # noqa: SIM115 - closed in close()
        self.board: BoardRun | None = None
        self.mode = "friendly"  # the REPL mode the board is in, from what it prints
        self.clock_us = 0  # device clock at the next start
        self.world_us = 0  # scenario time when the device clock reads 0
        self.resets = 0  # restarts so far, of any kind
        self._tail = b""
        self._early = bytearray()  # client input before the board is ready
        self._pending = bytearray()  # input for the board that it has not taken yet
        self._held = bytearray()  # input after a Ctrl-C, until the interrupt took effect
        self._holding = False
        self._hold_until = 0.0
        self._restart_at: float | None = None
        self._restart: tuple[str, int] | None = None
        self._stopping = False
        # The control channel: overrides hold across resets and power cycles (the chips and
        # the patient are outside the board); requests wait here for the board's answer.
        self.control = ControlServer(control) if control is not None else None
        self.overrides: dict[str, tuple[float | None, str | None]] = {}
        self.powered = True
        self._requests: dict[str, tuple[socket.socket | None, str, float, BoardRun]] = {}
        self._next_id = 0

    # Life cycle

    def start(self, mode: str = "friendly", cause: int = PWRON_RESET) -> None:
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env.update(
            TG_VB_DIR=str(self.board_dir), TG_VB_MODE=mode, TG_VB_CAUSE=str(cause),
            TG_VB_CLOCK_US=str(self.clock_us), TG_VB_WORLD_US=str(self.world_us),
            TG_VB_SPEED=repr(float(self.speed)), TG_VB_SCENARIO=str(self.scenario or ""),
        )
        self.mode = mode
        self._tail = b""
        self._early.clear()
        self._pending.clear()
        self._held.clear()
        self._holding = False
        lines = [f"Q 0 {self._set_args(name, o)}" for name, o in self.overrides.items()]
        self.board = BoardRun(self.command, self.board_dir, env, "".join(x + "\n" for x in lines).encode())

    def stop(self) -> None:
        self._stopping = True

    def close(self) -> None:
        if self.board is not None and not self.board.ended:
            self.board.close()
        self.port.close()
        if self.control is not None:
            self.control.close()
        if self.log is not None:
            self.log.close()
            self.log = None

    def run(self) -> None:
        if self.board is None:
            self.start()
        while not self._stopping:
            self.step(0.05)

    def step(self, timeout: float) -> None:
        """One turn of the loop: wait up to timeout for something to do, then do it."""
        board = self.board
        port_fds = self.port.fds()
        control_fds = self.control.fds() if self.control is not None else []
        rlist = port_fds + control_fds
        wlist = []
        if board is not None and not board.ended:
            rlist.append(board.master)
            if board.ctl_open:
                rlist.append(board.ctl)
            if self._pending and board.ready:
                wlist.append(board.master)
        ending = board is not None and not board.ended and not board.ctl_open  # its end is near: see it soon
        if self._holding or self._restart_at is not None or self._requests or ending:
            timeout = min(timeout, 0.01)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except InterruptedError:
            return
        for fd in readable:
            if fd in port_fds:
                data = self.port.readable(fd)
                if data:
                    self._from_client(data)
            elif fd in control_fds and self.control is not None:
                for conn, request in self.control.readable(fd):
                    self._request(conn, request)
        if board is not self.board:
            return  # power came back during this turn: the new run is served from the next
        if board is not None and not board.ended:
            if board.ctl in readable:
                self._control(board)
            if not board.ended and board.master in readable:
                self._from_board(board)
            if not board.ended and board.master in writable:
                self._flush_pending()
            if not board.ended and board.proc.poll() is not None:
                self._from_board(board)  # reads what is left, then notices the end
        now = time.monotonic()
        if self._requests:
            self._expire_requests(now)
        if board is not None and not board.ended and not board.ready and now - board.started > READY_TIMEOUT_S:
            print("virtual board: no READY from the board; passing input on anyway", file=sys.stderr, flush=True)
            board.ready = True
            self._became_ready()
        if self._holding and (now >= self._hold_until or not self._interrupt_pending()):
            self._holding = False
            held = bytes(self._held)
            self._held.clear()
            self._from_client(held)
        if self._restart_at is not None and now >= self._restart_at:
            mode, cause = self._restart or ("friendly", PWRON_RESET)
            self._restart_at = self._restart = None
            self.start(mode, cause)

    # Board to client

    def _from_board(self, board: BoardRun) -> None:
        for _ in range(16):  # bounded: a board at full speed must not starve the client's input
            data = board.read_output()
            if data is None:
                self._ended(board)
                return
            if not data:
                return
            self._track_mode(data)
            self._to_client(data)

    def _to_client(self, data: bytes) -> None:
        if self.log is not None:
            self.log.write(data)
        self.port.write(data)

    def _track_mode(self, data: bytes) -> None:
        buf = self._tail + data
        raw, friendly = buf.rfind(RAW_BANNER), buf.rfind(FRIENDLY_BANNER)
        if raw > friendly:
            self.mode = "raw"
        elif friendly > raw:
            self.mode = "friendly"
        keep = max(len(RAW_BANNER), len(FRIENDLY_BANNER)) - 1
        self._tail = buf[-keep:]

    def _control(self, board: BoardRun) -> None:
        was_ready = board.ready
        board.read_ctl()
        while board.answers:
            rid, words = board.answers.pop(0)
            self._answered(rid, words)
        if board.reset is not None:
            board.kill()  # the board resets now; what it printed before is still read
        elif board.ready and not was_ready:
            self._became_ready()

    def _became_ready(self) -> None:
        early = bytes(self._early)
        self._early.clear()
        if self.mode == "raw":
            self._queue(CTRL_A)  # a board soft-reset in the raw REPL comes back in it
        if early:
            self._from_client(early)
        self._flush_pending()

    def _ended(self, board: BoardRun) -> None:
        code = board.close()
        for rid, (_, _, _, run) in list(self._requests.items()):
            if run is board:
                self._answered(rid, None)
        if self._stopping or not self.powered:
            return
        now = time.monotonic()
        self.resets += 1
        if board.reset is not None:
            kind, clock_us, world_us = board.reset
            if kind == "SOFT":
                self.clock_us, self.world_us = clock_us, world_us - clock_us
                self._to_client(SOFT_REBOOT)
                self._schedule(self.mode, SOFT_RESET, now)
            else:  # a hard or watchdog reset: the device clock starts again, the world goes on
                self.clock_us, self.world_us = 0, world_us
                self._schedule("friendly", RESET_KINDS[kind], now)
        elif code >= 0:  # Ctrl-D or sys.exit() at the REPL: a soft reset
            if board.clock is not None:
                clock_us, world_us = board.clock
                self.clock_us, self.world_us = clock_us, world_us - clock_us
            self._to_client(SOFT_REBOOT)
            self._schedule(self.mode, SOFT_RESET, now)
        else:  # killed by a signal: a crash, which a board would answer with a reset
            print(f"virtual board: the MicroPython process ended by signal {-code}; restarting it",
                  file=sys.stderr, flush=True)
            if board.clock is not None:
                self.world_us += board.clock[0]
            self.clock_us = 0
            delay = CRASH_BACKOFF_S if now - board.started < CRASH_BACKOFF_S else 0.0
            self._schedule("friendly", HARD_RESET, now + delay)

    def _schedule(self, mode: str, cause: int, at: float) -> None:
        self._restart = (mode, cause)
        self._restart_at = at

    # Client to board

    def _from_client(self, data: bytes) -> None:
        board = self.board
        if board is None or board.ended or board.reset is not None:
            return  # a board in reset takes no input
        if not board.ready:
            if len(self._early) + len(data) <= MAX_PENDING:
                self._early += data
            return
        if self._holding:
            self._held += data
            return
        start = 0
        while True:
            k = data.find(CTRL_C, start)
            if k < 0:
                self._queue(data[start:])
                return
            self._queue(data[start:k])
            start = k + 1
            if board.handles_sigint():
                # Running code: a board's UART turns Ctrl-C into KeyboardInterrupt and the
                # byte is not input. What follows waits until the interrupt took effect.
                self._flush_pending()
                os.kill(board.pid, signal.SIGINT)
                self._holding = True
                self._hold_until = time.monotonic() + HOLD_AFTER_INTERRUPT_S
                self._held += data[start:]
                return
            self._queue(b"\x03")

    def _interrupt_pending(self) -> bool:
        board = self.board
        return board is not None and not board.ended and board.handles_sigint()

    def _queue(self, data: bytes) -> None:
        if data and len(self._pending) + len(data) <= MAX_PENDING:
            self._pending += data
            self._flush_pending()

    def _flush_pending(self) -> None:
        board = self.board
        if not self._pending or board is None or board.ended or not board.ready:
            return
        try:
            n = os.write(board.master, self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        del self._pending[:n]

    # The control channel (ControlServer; docs/virtual-board.md)

    def _running(self) -> bool:
        """A run takes requests from its start (its pipe keeps them until it has set up)
        until it asks for a reset."""
        board = self.board
        return self.powered and board is not None and not board.ended and board.reset is None

    @staticmethod
    def _set_args(name: str, override: tuple[float | None, str | None]) -> str:
        celsius, word = override
        return f"SET {name} {'-' if celsius is None else repr(float(celsius))} {word or '-'}"

    def _channel_names(self) -> list[str]:
        try:
            cfg = json.loads((self.board_dir / "config.json").read_text())
            return [str(ch["name"]) for ch in cfg.get("channels", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []

    def _reply(self, conn: socket.socket | None, answer: dict) -> None:
        if conn is not None and self.control is not None:
            self.control.reply(conn, answer)

    def _request(self, conn: socket.socket, request: object) -> None:
        try:
            answer = self._serve(conn, request)
        except ControlError as e:
            answer = {"ok": False, "error": str(e)}
        if answer is not None:
            self._reply(conn, answer)

    def _serve(self, conn: socket.socket, request: object) -> dict | None:
        """Answer a request now (a dict), or send it to the board and answer later (None)."""
        if not isinstance(request, dict):
            raise ControlError(request if isinstance(request, str) else "a request is a JSON object")
        op = request.get("op")
        if op == "set":
            name = self._known_channel(request.get("channel"))
            celsius = request.get("temp_c")
            if celsius is not None and (isinstance(celsius, bool) or not isinstance(celsius, (int, float))
                                        or not math.isfinite(celsius)):
                raise ControlError(f"temp_c is a number of degrees C, not {celsius!r}")
            word = request.get("fault")
            if word in ("", "none"):
                word = None
            if word is not None and word not in FAULT_WORDS:
                raise ControlError(f"fault {word!r} is none of {', '.join(FAULT_WORDS)} (or none)")
            self.overrides[name] = (None if celsius is None else float(celsius), word)
            return self._ask(conn, "set", self._set_args(name, self.overrides[name]))
        if op == "clear":
            name = request.get("channel")
            if name is None:
                self.overrides.clear()
            else:
                self.overrides.pop(self._known_channel(name), None)
            return self._ask(conn, "clear", f"CLEAR {name or '*'}")
        if op == "readback":
            stuck = request.get("stuck")
            if stuck is not None and (type(stuck) is not int or stuck not in (0, 1)):
                raise ControlError("readback takes stuck: 0 (the relay contact stuck open), 1 (welded shut) "
                                   "or null (following the interlock again)")
            if not self.powered:
                raise ControlError("the board is off: it has no relay to break")
            return self._ask(conn, "readback", f"READBACK {'-' if stuck is None else stuck}")
        if op in ("pins", "clock", "hang"):
            if not self.powered:
                if op == "hang":
                    raise ControlError("the board is off: nothing runs to hang")
                return {"ok": True, "power": False, "pins": {}, "clock_us": None, "world_us": self.world_us,
                        "resets": self.resets}
            return self._ask(conn, op, op.upper())
        if op == "power":
            on = request.get("on")
            if not isinstance(on, bool):
                raise ControlError("power takes on: true or false")
            if on == self.powered:
                return {"ok": True, "power": on}
            if on:
                self.powered = True
                self.clock_us = 0  # power-on: the device clock starts again; the world went on
                self.resets += 1
                self.start("friendly", PWRON_RESET)
                return {"ok": True, "power": True}
            if self._running():
                return self._ask(conn, "power-off", "CLOCK")  # the world's time at the cut first
            self._dark(None)
            return {"ok": True, "power": False}
        if op == "status":
            return {"ok": True, "power": self.powered, "resets": self.resets, "port": self.port.url,
                    "overrides": {n: {"temp_c": c, "fault": w} for n, (c, w) in self.overrides.items()}}
        raise ControlError(f"unknown op {op!r}: set, clear, pins, clock, power, hang, readback, status")

    def _known_channel(self, name: object) -> str:
        names = self._channel_names()
        if not isinstance(name, str) or name not in names:
            raise ControlError(f"no channel {name!r} in the board's configuration (its channels: {', '.join(names)})")
        return name

    def _ask(self, conn: socket.socket | None, op: str, line: str) -> dict | None:
        if not self._running():
            if op in ("set", "clear"):  # kept by the bridge: on the chips from the next start
                return {"ok": True, "clock_us": None}
            raise ControlError("the board is resetting: ask again")
        self._next_id += 1
        rid = str(self._next_id)
        if not self.board.ask(f"Q {rid} {line}"):
            raise ControlError("the board's control thread takes no requests")
        self._requests[rid] = (conn, op, time.monotonic() + ANSWER_TIMEOUT_S, self.board)
        return None

    def _answered(self, rid: str, words: list[str] | None, why: str = "the board reset before it answered") -> None:
        """The board's answer to a request (None: none will come)."""
        pending = self._requests.pop(rid, None)
        if pending is None:
            return
        conn, op, _, _ = pending
        if op == "power-off":
            self._dark(int(words[1]) if words and len(words) >= 2 else None)
            self._reply(conn, {"ok": True, "power": False})
        elif op in ("set", "clear", "hang", "readback"):
            if words is None and op in ("hang", "readback"):
                self._reply(conn, {"ok": False, "error": why + "; ask again"})
            else:
                self._reply(conn, {"ok": True, "clock_us": int(words[0]) if words else None})
        elif words is None:
            self._reply(conn, {"ok": False, "error": why + "; ask again"})
        elif op == "pins":
            pins = {}
            for word in words:
                pin, _, level = word.partition("=")
                pins[pin] = int(level)
            self._reply(conn, {"ok": True, "power": True, "pins": pins})
        elif op == "clock":
            self._reply(conn, {"ok": True, "power": True, "clock_us": int(words[0]), "world_us": int(words[1]),
                               "reset_cause": int(words[2]), "resets": self.resets})

    def _expire_requests(self, now: float) -> None:
        for rid, (_, _, deadline, _) in list(self._requests.items()):
            if now > deadline:
                self._answered(rid, None, f"the board did not answer within {ANSWER_TIMEOUT_S:g} s")

    def _dark(self, world_us: int | None) -> None:
        """Power cut: the process ends, nothing restarts it, nothing comes out, input is lost."""
        self.powered = False
        board = self.board
        if world_us is not None:
            self.world_us = world_us  # at the next power-on the device clock reads 0 here
        elif board is not None and board.clock is not None:
            self.world_us += board.clock[0]
        self.clock_us = 0
        self._restart_at = self._restart = None
        self._pending.clear()
        self._early.clear()
        self._held.clear()
        self._holding = False
        if board is not None and not board.ended:
            board.kill()
            self._ended(board)  # closed now, restarting nothing: a power-on may follow at once


class ControlError(Exception):
    """A control request that cannot be served: its one-sentence reason goes to the client."""
