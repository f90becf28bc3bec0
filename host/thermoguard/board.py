"""A small client of a thermoguard board: send a command, wait for its REPLY (docs/protocol.md).

    with connect("/dev/ttyACM0") as board:      # PortError: missing, busy, or no board
        print(board.info.board, board.info.firmware)
        reply = board.command("ARM")            # NoReply after the timeout
        print(reply.text)                       # `OK ARM` or `ERR ARM <reason>`

Every byte read goes through `on_bytes(data, t_ns)` when given, so a recorder can log what
arrived before it opened its log.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from thermoguard import protocol
from thermoguard.transport import PortError, Transport

IDENTIFY_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 2.0
INFO_RESEND_S = 0.7  # a board that was booting may have missed the first INFO
_PIECE = re.compile(r"(\d+)/(\d+) (.*)", re.DOTALL)


class NotABoard(PortError):
    """The port opened, but nothing on it answers as a thermoguard board."""


class NoReply(PortError):
    """The board did not answer a command in time."""


class NotSent(NoReply):
    """The command never left the host (the port was lost, or would not take the bytes)."""


@dataclass(frozen=True)
class BoardInfo:
    """What INFO says: `fw=0.1.0 board=virtual config=af0809de state=DISARMED [error=<why>]`."""

    firmware: str | None
    board: str | None
    config_hash: str | None  # 8 hex digits, None when the board has no valid configuration
    state: str | None
    error: str | None  # why the board has no valid configuration
    text: str

    def describe(self) -> str:
        config = self.config_hash or f"none ({self.error or 'no valid configuration'})"
        return f"board {self.board}, firmware {self.firmware}, configuration {config}, {self.state}"


def parse_info(detail: str) -> BoardInfo:
    fields: dict[str, str] = {}
    rest = detail.strip()
    while rest:
        key, eq, value = rest.partition("=")
        if not eq or " " in key:
            break
        if key == "error":  # free text: the rest of the line
            fields[key] = value
            break
        value, _, rest = value.partition(" ")
        fields[key] = value
        rest = rest.strip()
    chash = fields.get("config")
    return BoardInfo(fields.get("fw"), fields.get("board"), None if chash in (None, "none") else chash,
                     fields.get("state"), fields.get("error"), detail)


class Board:
    """A board on an open transport."""

    def __init__(self, transport: Transport, on_bytes: Callable[[bytes, int], None] | None = None) -> None:
        self.transport = transport
        self.on_bytes = on_bytes
        self.decoder = protocol.Decoder()
        self.info: BoardInfo | None = None
        self._pending: list[protocol.Item] = []
        self.seen_text: list[str] = []

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, verb: str, args: str = "") -> None:
        if not self.transport.write(protocol.encode_command(verb, args)):
            raise NotSent(f"{self.transport.url} does not take the bytes of {verb}: the board is not reading")

    def pump(self) -> list[protocol.Item]:
        """Read once (at most the transport's read timeout) and decode."""
        data = self.transport.read()
        if not data:
            return []
        if self.on_bytes is not None:
            self.on_bytes(data, time.time_ns())
        items = self.decoder.feed(data)
        self.seen_text += [i.text for i in items if isinstance(i, protocol.Text)]
        return items

    def identify(self, timeout: float = IDENTIFY_TIMEOUT_S, require_reply: bool = True) -> BoardInfo | None:
        """Ask INFO; the board's answer, or None when frames arrive but no reply (require_reply False).

        Raises NotABoard with one sentence when nothing answers as a thermoguard board.
        """
        url = self.transport.url
        start = time.monotonic()
        deadline = start + timeout
        next_send = start
        frames = False
        while time.monotonic() < deadline:
            if time.monotonic() >= next_send:
                self.send("INFO")
                next_send = time.monotonic() + INFO_RESEND_S
            for item in self.pump():
                if isinstance(item, protocol.Reply) and item.verb == "?":
                    continue  # a stale half-line on the board got the blame; INFO is sent again
                if isinstance(item, protocol.Reply) and item.verb == "INFO":
                    if not item.ok:
                        raise NotABoard(f"{url} refused INFO: {item.text}")
                    self.info = parse_info(item.detail)
                    return self.info
                if not isinstance(item, protocol.Text):
                    frames = True
        if frames and not require_reply:
            return None
        raise NotABoard(self._silence(url, timeout, frames))

    def _silence(self, url: str, timeout: float, frames: bool) -> str:
        d = self.decoder
        # A prompt (`>>> `) has no line end: the decoder still holds it.
        self.seen_text += [i.text for i in d.flush() if isinstance(i, protocol.Text)]
        if frames:
            return f"{url} sends thermoguard frames but did not answer INFO within {timeout:g} s"
        if self.seen_text:
            last = self.seen_text[-1].strip()[:60]
            return (f"{url} answers as no thermoguard board within {timeout:g} s: only text, no frame "
                    f"(last line {last!r}; is the firmware running?)")
        if d.garbage or d.crc_errors:
            return (f"{url} answers as no thermoguard board within {timeout:g} s: only bytes that are no "
                    "frames (another device, or the wrong baud rate?)")
        return f"{url} answers as no thermoguard board: it sent nothing within {timeout:g} s"

    def command(self, verb: str, args: str = "", timeout: float = REPLY_TIMEOUT_S) -> protocol.Reply:
        """Send one command and return its reply (`ERR ? ...` when the line arrived damaged)."""
        self.send(verb, args)
        return self._reply(verb, timeout)

    def get_config(self, timeout: float = REPLY_TIMEOUT_S) -> tuple[str | None, protocol.Reply]:
        """The board's canonical configuration JSON, joined from its `OK GET i/n` pieces.

        Returns (text, last reply); text is None when the board refused (the reply says why).
        """
        self.send("GET")
        replies: list[protocol.Reply] = []
        deadline = time.monotonic() + timeout
        while True:
            reply = self._reply("GET", max(0.0, deadline - time.monotonic()))
            replies.append(reply)
            m = _PIECE.fullmatch(reply.detail) if reply.ok else None
            if m is None or m.group(1) == m.group(2):
                return join_pieces(self.transport.url, replies)

    def _reply(self, verb: str, timeout: float) -> protocol.Reply:
        deadline = time.monotonic() + timeout
        while True:
            while self._pending:
                item = self._pending.pop(0)
                if isinstance(item, protocol.Reply) and item.verb in (verb, "?"):
                    return item
            if time.monotonic() >= deadline:
                raise NoReply(f"{self.transport.url} did not answer {verb} within {timeout:g} s; it was sent, "
                              "so the board may have acted on it: check its state")
            self._pending += self.pump()


def join_pieces(url: str, replies: list[protocol.Reply]) -> tuple[str | None, protocol.Reply]:
    """GET's answer as (configuration text, last reply); text None when the board refused."""
    pieces: list[str] = []
    for reply in replies:
        if not reply.ok:
            return None, reply
        m = _PIECE.fullmatch(reply.detail)
        if m is None or int(m.group(1)) != len(pieces) + 1:
            raise NoReply(f"{url} answered GET out of order: {reply.text[:60]!r}")
        pieces.append(m.group(3))
    last = replies[-1]
    m = _PIECE.fullmatch(last.detail)
    if m is None or m.group(1) != m.group(2):
        raise NoReply(f"{url} sent only part of its configuration ({len(pieces)} pieces)")
    return "".join(pieces), last


def connect(url: str, timeout: float = IDENTIFY_TIMEOUT_S, require_reply: bool = True,
            on_bytes: Callable[[bytes, int], None] | None = None) -> Board:
    """Open url and check a thermoguard board answers there; PortError (one sentence) if not."""
    board = Board(Transport(url).open(), on_bytes)
    try:
        board.identify(timeout, require_reply)
    except BaseException:
        board.close()
        raise
    return board
