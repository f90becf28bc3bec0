"""Record a board's stream into a session log (docs/log-format.md) and keep its heartbeat.

The recorder writes every byte as it arrives (LogWriter.write_bytes with the receive
time), decodes a copy for the live counters, sends `HB` once a second (an armed board
trips when its host falls silent, DESIGN.md principle 1), and when the port fails it
writes a GAP record with the reason and reopens the port with a bounded backoff.

It owns the port, so other parts of the program (the dashboard's keys, the command relay
of relay.py) reach the board through it: `request(verb, args)` from any thread sends the
command between two reads and returns the board's replies. `on_items` sees every decoded
item, for a live view.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from thermoguard import protocol
from thermoguard.board import REPLY_TIMEOUT_S, BoardInfo, NoReply, NotSent, parse_info
from thermoguard.log import LogWriter
from thermoguard.transport import PortLost, Transport

HEARTBEAT_S = 1.0
STATUS_S = 0.25  # how often on_status is called
RECONNECT_TIMEOUT_S = 60.0  # long enough to plug a cable back in
# After a reconnect only INFO is sent until the port answers as the same board: this often
# at first, then seldom (the path may now lead to a device that is no board at all).
INFO_AGAIN_S = 0.7
INFO_AGAIN_LATE_S = 5.0
INFO_EAGER_S = 5.0
# A command that was sent and then given up still takes its reply for this long, and throws
# it away: taken by the next command of that verb, a late "ERR ARM" would tell the operator
# a later ARM was refused while the board armed.
LATE_REPLY_S = 10.0
SET_GRACE_S = 10.0  # a SET this recent before a gap may explain a new configuration after it
LONGEST_WAIT_S = 3600.0  # a longer timeout is taken as this (threading's waits have a limit)
_PIECE = re.compile(r"(\d+)/(\d+) .*", re.DOTALL)  # `OK GET 1/3 ...`: one piece of several


@dataclass
class Stats:
    """What the recorder has seen so far; counters summed over the stream's pieces between gaps."""

    started: float = field(default_factory=time.monotonic)
    bytes: int = 0
    frames: int = 0
    telemetry: int = 0
    events: int = 0
    replies: int = 0
    text_lines: int = 0
    crc_errors: int = 0
    garbage: int = 0
    lost: int = 0
    restarts: int = 0
    gaps: int = 0
    heartbeats: int = 0
    heartbeats_refused: int = 0  # the port would not take the heartbeat in time
    state: str = ""  # the board's state in its latest telemetry
    gave_up: str = ""  # why the recording ended without the port, or ""
    _done: dict = field(default_factory=dict, repr=False)  # counters of the decoders before the last gap

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def count(self, items: list[protocol.Item], decoder: protocol.Decoder) -> None:
        for item in items:
            if isinstance(item, protocol.Telemetry):
                self.telemetry += 1
                self.state = item.state_name
            elif isinstance(item, protocol.Event):
                self.events += 1
                self.state = item.state_name
            elif isinstance(item, protocol.Reply):
                self.replies += 1
        for name in ("frames", "text_lines", "crc_errors", "garbage", "lost", "restarts"):
            setattr(self, name, self._done.get(name, 0) + getattr(decoder, name))

    def close_segment(self) -> None:
        """A gap: the next bytes are a new stream, counted by a new decoder."""
        self._done = {name: getattr(self, name) for name in
                      ("frames", "text_lines", "crc_errors", "garbage", "lost", "restarts")}


def _hash_word(config_hash: str | None) -> str:
    """INFO's configuration hash as telemetry's would print: `none` without a valid one."""
    return config_hash or "none"


class Request:
    """A command sent on behalf of another thread, and the replies that answer it.

    The asker gives up after its timeout: the request is then abandoned, never sent later
    (an ARM the operator was told failed must not arm the board a minute on). One that was
    sent stays in line for LATE_REPLY_S, so that its late reply is not taken for the
    answer to the next command of the same verb.
    """

    def __init__(self, verb: str, args: str, line: bytes, origin: str) -> None:
        self.verb = verb
        self.args = args
        self.line = line
        self.origin = origin
        self.replies: list[protocol.Reply] = []
        self.error = ""  # why no complete answer came (port lost, port not taking bytes)
        self.done = threading.Event()
        self.lock = threading.Lock()  # sent and abandoned change under it
        self.sent = False
        self.sent_at = 0.0
        self.abandoned = False

    def wants(self, reply: protocol.Reply) -> bool:
        """Whether reply can be this request's next: its verb, and for an answer in pieces
        (GET) the piece after those it holds."""
        if reply.verb != self.verb or self.done.is_set():
            return False
        m = _PIECE.fullmatch(reply.detail) if reply.ok else None
        return m is None or int(m.group(1)) == len(self.replies) + 1

    def take(self, reply: protocol.Reply) -> None:
        self.replies.append(reply)
        m = _PIECE.fullmatch(reply.detail) if reply.ok else None
        if m is None or m.group(1) == m.group(2):  # a single reply, a refusal, or the last piece
            self.done.set()

    def fail(self, why: str) -> None:
        if not self.done.is_set():  # an answer already taken stays the answer
            self.error = why
            self.done.set()


class Recorder:
    """Reads the transport into the log until stopped, the duration ends, or the port is gone."""

    def __init__(self, transport: Transport, writer: LogWriter, *, heartbeat_s: float = HEARTBEAT_S,
                 reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
                 on_status: Callable[[Stats], None] | None = None,
                 on_message: Callable[[str], None] | None = None, expected: BoardInfo | None = None,
                 on_items: Callable[[list[protocol.Item]], None] | None = None) -> None:
        self.transport = transport
        self.writer = writer
        self.heartbeat_s = heartbeat_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self.on_status = on_status or (lambda stats: None)
        self.on_message = on_message or (lambda text: None)
        self.on_items = on_items
        self.on_alarm: Callable[[str], None] | None = None  # the port leads to another board
        self.stats = Stats()
        self.decoder = protocol.Decoder()
        self.stop = threading.Event()
        self.expected = expected  # the board's INFO at the start: checked again after a reconnect
        self._config_hash: int | None = None  # of the latest telemetry: a SET changes it legitimately
        self._checking_since: float | None = None  # after a reconnect, until INFO answers as before
        self._trusted: set[str] = set()  # configuration hashes of the board before the gap
        self._set_sent_at: float | None = None  # a SET went out, its configuration not yet in telemetry
        self._lost_at = 0.0  # when the port was last lost
        self._next_info = 0.0
        self.foreign = ""  # why nothing is sent any more: the port leads to another board
        self._hb_now = False
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()  # from other threads
        self._waiting: list[Request] = []  # sent, not yet answered (the recording thread's own)

    def request(self, verb: str, args: str = "", timeout: float = REPLY_TIMEOUT_S,
                origin: str = "") -> list[protocol.Reply]:
        """Send a command through the recording (any thread) and return its replies.

        Several replies only for a command answered in pieces (GET). protocol.CommandError
        for a command that cannot be encoded; NoReply when no answer came within timeout
        (the command is then abandoned: if it was not sent yet, it never will be). origin
        says who asked, for the note the log keeps of every command sent.
        """
        req = Request(verb, args, protocol.encode_command(verb, args), origin)
        self._requests.put(req)
        if not req.done.wait(min(timeout, LONGEST_WAIT_S)):
            with req.lock:
                if not req.done.is_set():
                    req.abandoned = True
            if req.abandoned:
                if not req.sent:
                    why = f" ({self._holding()})" if self._holding() else ""
                    raise NotSent(f"{verb} was not sent within {timeout:g} s{why}; it will not be sent later")
                raise NoReply(f"{self.transport.url} did not answer {verb} within {timeout:g} s; it was sent, "
                              "so the board may have acted on it: check its state")
        if req.error:
            if not req.sent:
                raise NotSent(f"{verb} did not reach the board: {req.error}")
            raise NoReply(f"{verb} was sent but no answer came: {req.error}; the board may have acted on it: "
                          "check its state")
        return req.replies

    def _holding(self) -> str:
        """Why commands wait, or ""."""
        if self.foreign:
            return self.foreign
        if self._checking_since is not None:
            return "the port was reopened and has not yet answered INFO as the same board"
        return ""

    def _send_requests(self, now: float) -> None:
        self._waiting = [r for r in self._waiting
                         if not r.done.is_set() and not (r.abandoned and now - r.sent_at > LATE_REPLY_S)]
        if self._checking_since is not None and not self.foreign:
            return  # held until the board is known again (or given up by their askers)
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                return
            with req.lock:
                if req.abandoned:
                    continue
                if self.stop.is_set():
                    req.fail("the recording is ending")
                elif self.foreign:
                    req.fail(self.foreign)
                else:
                    try:
                        written = self.transport.write(req.line)
                    except PortLost as e:
                        req.fail(f"the port was lost ({e})")
                        raise
                    if written:
                        req.sent, req.sent_at = True, now
                        self._waiting.append(req)
                        if req.verb == "SET":
                            self._set_sent_at = now  # its new configuration may come before its telemetry
                        by = f" for {req.origin}" if req.origin else ""
                        self.writer.note(f"sent {req.verb} {req.args}".rstrip() + by)
                    else:
                        req.fail(f"{self.transport.url} does not take bytes: the board is not reading")

    def _answer(self, items: list[protocol.Item]) -> None:
        # `ERR ?` answers a line the board could not read: a heartbeat's, an INFO's or a
        # command's, which cannot be told apart; the command then gets no answer ("check
        # the board's state"), never another line's refusal.
        for item in items:
            if not isinstance(item, protocol.Reply) or item.verb == "?":
                continue
            for k, req in enumerate(self._waiting):
                with req.lock:
                    if not req.wants(item):
                        continue
                    req.take(item)  # an abandoned one takes it too: its asker is gone
                    if req.verb == "SET" and not item.ok:
                        self._set_sent_at = None  # refused: the configuration stays
                # The board answers in order: what was sent before this and is still
                # unanswered never reached it whole.
                for lost in self._waiting[:k]:
                    with lost.lock:
                        if not lost.done.is_set():
                            lost.fail(f"the board answered a later {item.verb} first: this {lost.verb} never "
                                      "reached it whole")
                break

    def _fail_requests(self, why: str) -> None:
        for req in self._waiting:
            with req.lock:
                req.fail(why)
        self._waiting = []
        while True:
            try:
                self._requests.get_nowait().fail(why)
            except queue.Empty:
                return

    def feed(self, data: bytes, t_ns: int | None = None) -> None:
        """Log and count bytes read from the port (also those read before the recorder ran)."""
        self.writer.write_bytes(data, t_ns)
        self.stats.bytes += len(data)
        items = self.decoder.feed(data)
        self.stats.count(items, self.decoder)
        if self._waiting:
            self._answer(items)
        # Until the port is known to lead to the same board, its readings are not this board's.
        if self.on_items is not None and items and self._checking_since is None and not self.foreign:
            self.on_items(items)
        for item in items:
            if self.foreign:
                break
            if isinstance(item, protocol.Telemetry):
                if self._checking_since is None:
                    if item.config_hash != self._config_hash:
                        self._set_sent_at = None
                    self._config_hash = item.config_hash
                elif not self._trusts(f"{item.config_hash:08x}"):
                    self._checking_since = None
                    self._declare_foreign(f"sends telemetry of configuration {item.config_hash:08x}")
            elif (self._checking_since is not None and isinstance(item, protocol.Reply)
                  and item.verb == "INFO" and item.ok):
                self._checking_since = None
                self._compare(parse_info(item.detail))

    def _compare(self, info: BoardInfo) -> None:
        # The same port may now lead to another board (a /dev/ttyACM0 given to the next device).
        was = self.expected
        same_board = was is None or (info.board, info.firmware) == (was.board, was.firmware)
        if same_board and self._trusts(_hash_word(info.config_hash)):
            if was is None:
                self.expected = info  # known from now on
            self._hb_now = True  # the same board: its heartbeat at once
            return
        self._declare_foreign(f"answers as {info.describe()}")

    def _trusts(self, config_hash: str) -> bool:
        # A SET sent just before the gap may have changed it (a SET only tightens): trusted too.
        recent_set = self._set_sent_at is not None and self._lost_at - self._set_sent_at < SET_GRACE_S
        return not self._trusted or config_hash in self._trusted or recent_set

    def _declare_foreign(self, what: str) -> None:
        self.foreign = (f"after the gap {self.transport.url} {what}, not as the board recorded before it; "
                        "nothing more is sent to it (no heartbeat: an armed board trips). Start a new recording "
                        "to use this board")
        self.writer.note(self.foreign)
        if self.on_alarm is not None:
            self.on_alarm(self.foreign)
        else:
            self.on_message(f"thermoguard: warning: {self.foreign}")
        self._fail_requests(self.foreign)

    def run(self, duration_s: float | None = None) -> Stats:
        end = None if duration_s is None else time.monotonic() + duration_s
        next_hb = next_status = time.monotonic()
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                try:
                    if self._checking_since is not None and not self.foreign:
                        self._ask_info(now)
                    elif (now >= next_hb or self._hb_now) and not self.foreign:
                        self._hb_now = False
                        self._heartbeat()
                        next_hb = now + self.heartbeat_s
                    self._send_requests(now)
                    data = self.transport.read()
                    if data:
                        self.feed(data)
                except PortLost as e:
                    self._fail_requests(f"the port was lost ({e})")
                    if not self._regain(str(e), end):
                        break
                    next_hb = time.monotonic()  # an armed board needs the heartbeat at once
                if time.monotonic() >= next_status:
                    self.on_status(self.stats)
                    next_status = time.monotonic() + STATUS_S
        finally:
            self._fail_requests("the recording ended")
        self.on_status(self.stats)
        return self.stats

    def _ask_info(self, now: float) -> None:
        if now >= self._next_info:
            line = protocol.encode_command("INFO")
            if self.transport.write(line):
                # In line like any command, so that its answer is not taken for another's.
                own = Request("INFO", "", line, "")
                own.sent, own.sent_at, own.abandoned = True, now, True
                self._waiting.append(own)
            late = now - self._checking_since > INFO_EAGER_S
            self._next_info = now + (INFO_AGAIN_LATE_S if late else INFO_AGAIN_S)

    def _heartbeat(self) -> None:
        if self.transport.write(protocol.encode_command("HB")):
            self.stats.heartbeats += 1
        else:
            self.stats.heartbeats_refused += 1

    def _check_identity(self, now: float) -> None:
        """After a reconnect: only INFO until the port answers as the same board, its name
        and firmware and one of the configurations it had (the start's, or the one a SET
        tightened it to since, as its telemetry said before the gap)."""
        self.foreign = ""
        self._trusted = set()
        if self.expected is not None:
            self._trusted.add(_hash_word(self.expected.config_hash))
        if self._config_hash is not None:
            self._trusted.add(f"{self._config_hash:08x}")
        if "none" in self._trusted or "00000000" in self._trusted:
            self._trusted |= {"none", "00000000"}  # no valid configuration: INFO says none, telemetry 0
        self._checking_since = self._next_info = now

    def _regain(self, reason: str, end: float | None) -> bool:
        """Note the gap and reopen the port; False when the recording should end."""
        self.writer.note_gap(f"port lost: {reason}")
        self.stats.gaps += 1
        self.stats.close_segment()
        self.decoder = protocol.Decoder()
        self.on_message(f"port lost: {reason}; reopening {self.transport.url}")
        lost_at = self._lost_at = time.monotonic()
        window = self.reconnect_timeout_s
        if end is not None:
            window = min(window, max(0.0, end - lost_at))
        if self.transport.reconnect(window, self.stop):
            waited = time.monotonic() - lost_at
            self.writer.note(f"reconnected to {self.transport.url} after {waited:.1f} s")
            self.on_message(f"reconnected after {waited:.1f} s")
            self._check_identity(time.monotonic())
            return True
        if not self.stop.is_set() and (end is None or time.monotonic() < end):
            self.stats.gave_up = (f"lost {self.transport.url} and could not reopen it within "
                                  f"{self.reconnect_timeout_s:g} s: {self.transport.last_error or reason}")
        return False
