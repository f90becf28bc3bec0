"""Operator commands for a port that another thermoguard program holds.

A port has one reader: `record` and `monitor` open it exclusively, keep the board's
heartbeat and log every byte. So that `thermoguard arm --port P` still reaches the board
while they run, the holder serves a local socket for its port, and the operator commands
try that socket before they try the port:

    with relay.serve(url, recorder.request):     # the holder (record, monitor)
        recorder.run()

    client = relay.find(url)                     # arm, disarm, reset, config
    if client is not None:
        reply = client.command("ARM")

The socket is a Unix socket in a folder only the user can enter ($XDG_RUNTIME_DIR or
/tmp/thermoguard-<uid>), named after the port; one JSON line asks, one JSON line answers.
When the holder keeps a log, the board's answer is in it like any other bytes, and the
command as a note of what was sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from thermoguard import protocol
from thermoguard.board import NoReply, NotSent, join_pieces

ANSWER_SLACK_S = 1.0  # the holder may wait a whole read and a heartbeat before it sends
MAX_LINE = 64 * 1024
LONGEST_WAIT_S = 3600.0  # sockets refuse far longer timeouts
ORIGIN = "another thermoguard command"  # in the holder's log: `sent ARM ... for <origin>`


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "thermoguard"
    return Path(tempfile.gettempdir()) / f"thermoguard-{os.getuid()}"


def port_key(url: str) -> str:
    """One name per port, however it was written (a symlink, a relative path, a host name
    or an address of the same host)."""
    if "://" not in url:
        return os.path.realpath(url) if os.path.exists(url) else url
    scheme, _, rest = url.partition("://")
    hostport, sep, tail = rest.partition("/") if "/" in rest else rest.partition("?")
    host, colon, port = hostport.rpartition(":")
    if not colon:
        return url
    return f"{scheme.lower()}://{_host_key(host.strip('[]'))}:{port}{sep}{tail}"


def _host_key(host: str) -> str:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return host.lower()
    addrs = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if addrs and all(a.is_loopback for a in addrs):
        return "localhost"  # 127.0.0.1, ::1 and localhost are one machine
    v4 = [a for a in addrs if a.version == 4]
    return str((v4 or addrs)[0]) if addrs else host.lower()


def _private_dir(path: Path) -> None:
    """OSError unless path is a folder of ours that nobody else can enter (the sockets in
    it pass commands to a board: another user must not be able to plant one)."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{path} is not a private folder of this user (owner {st.st_uid}, mode "
                      f"{stat.S_IMODE(st.st_mode):o})")


def _ours(path: Path) -> bool:
    try:
        _private_dir(path.parent)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid()


def socket_path(url: str) -> Path:
    digest = hashlib.sha256(port_key(url).encode()).hexdigest()[:16]  # a path of any length fits AF_UNIX
    return runtime_dir() / f"port-{digest}.sock"


Request = Callable[[str, str, float], list[protocol.Reply]]


class Server:
    """Answers commands for one port by handing them to `request` (the holder's sender)."""

    def __init__(self, url: str, request: Request) -> None:
        self.url = url
        self.request = request
        self.path = socket_path(url)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_dir(self.path.parent)
        if self._answered():
            raise OSError(f"another program already serves commands for {url}")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left behind by a holder that was killed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.listen(4)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="thermoguard-relay", daemon=True)
        self._thread.start()

    def _answered(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(str(self.path))
            return True
        except OSError:
            return False

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.exists():
                self.path.unlink()
        self._thread.join(timeout=2.0)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                ask = json.loads(_read_line(conn))
                verb, args, timeout = str(ask["verb"]), str(ask.get("args", "")), float(ask.get("timeout", 2.0))
            except (OSError, ValueError, KeyError, TypeError):
                return  # not one of ours: nothing is sent to the board
            try:
                replies = self.request(verb, args, timeout)
                answer = {"replies": [[r.seq, r.t_s, r.t_us, r.text] for r in replies]}
            except protocol.CommandError as e:
                answer = {"refused": [e.kind, str(e)]}
            except NoReply as e:
                answer = {"error": str(e), "sent": not isinstance(e, NotSent)}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(answer).encode() + b"\n")


@contextlib.contextmanager
def serve(url: str, request: Request, warn: Callable[[str], None] | None = None) -> Iterator[Server | None]:
    """Serve commands for url while the block runs; None (after a warning) when it cannot."""
    try:
        server = Server(url, request)
    except OSError as e:
        if warn is not None:
            warn(f"operator commands from other programs will not reach {url}: {e}")
        yield None
        return
    try:
        yield server
    finally:
        server.close()


class Client:
    """The operator's side: the same calls as board.Board, through the holder of the port."""

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def close(self) -> None:
        pass

    def commands(self, verb: str, args: str = "", timeout: float = 2.0) -> list[protocol.Reply]:
        ask = json.dumps({"verb": verb, "args": args, "timeout": timeout}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(min(timeout, LONGEST_WAIT_S) + ANSWER_SLACK_S)
                s.connect(str(self.path))
                s.sendall(ask)
                answer = json.loads(_read_line(s))
        except (OSError, ValueError) as e:
            raise NoReply(f"the program holding {self.url} did not pass on {verb}: {e}; "
                          "it may have been sent, so check the board's state") from None
        if "replies" in answer:
            return [protocol.Reply(*r) for r in answer["replies"]]
        if "refused" in answer:
            raise protocol.CommandError(*answer["refused"])
        error = answer.get("error", f"the program holding {self.url} gave no answer to {verb}")
        raise NotSent(error) if answer.get("sent") is False else NoReply(error)

    def command(self, verb: str, args: str = "", timeout: float = 2.0) -> protocol.Reply:
        return self.commands(verb, args, timeout)[-1]

    def get_config(self, timeout: float = 2.0) -> tuple[str | None, protocol.Reply]:
        return join_pieces(self.url, self.commands("GET", "", timeout))


def find(url: str) -> Client | None:
    """A client for url when a thermoguard program holds that port and serves commands."""
    path = socket_path(url)
    if not _ours(path):
        return None  # none, or not one this user made: the port is tried instead
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
    except OSError:
        return None  # a socket left by a holder that was killed: the port itself is free
    return Client(url, path)


def _read_line(conn: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_LINE:
            raise ValueError("answer too long")
    return bytes(data)
