"""The dashboard's loop: items arrive from another thread (the recorder, the session runner)
through an Inbox; this thread alone feeds the Model, draws it, reads the keys and hands
the commands to worker threads, so a slow answer never freezes the screen.

A command goes to `send(verb, args)`, which returns the board's answer as (ok, text) (not
ok: the board refused, text is its reason), raises NotSent (or protocol.CommandError, a
command that cannot be encoded) when the command never left the host, and raises anything
else when no answer came (it may have been sent).
"""

from __future__ import annotations

import os
import queue
import select
import sys
import threading
import time
from collections.abc import Callable

from thermoguard.board import NotSent
from thermoguard.dashboard.keys import ESC, QUIT, Keys
from thermoguard.dashboard.model import NO_ANSWER, NOT_SENT, OK, REFUSED, Model
from thermoguard.dashboard.plain import Plain
from thermoguard.protocol import CommandError

TICK_S = 0.1  # redraw and key polling: the NO DATA alarm shows well within 1 s
SAFE = "DISARM"  # sent at once, whatever else is waiting for an answer


class Inbox:
    """What other threads hand to the dashboard, with the host times it arrived."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self.done = threading.Event()  # the source has ended (the scenario, the recording)

    def items(self, items: list) -> None:
        self._q.put(("items", time.monotonic(), time.time(), items))

    def message(self, text: str, priority: str | None = None) -> None:
        self._q.put(("message", time.monotonic(), time.time(), (text, priority)))

    def answer(self, verb: str, outcome: str, text: str) -> None:
        """What came of a command: model.OK, REFUSED, NO_ANSWER or NOT_SENT, and why."""
        self._q.put(("answer", time.monotonic(), time.time(), (verb, outcome, text)))

    def config(self, config: dict) -> None:
        """The board's configuration, read again after it changed."""
        self._q.put(("config", time.monotonic(), time.time(), config))

    def drain(self, model: Model) -> list:
        """Feed the model everything waiting; returns the items and messages, in order."""
        got = []
        while True:
            try:
                kind, now, wall, what = self._q.get_nowait()
            except queue.Empty:
                return got
            if kind == "items":
                model.feed(what, now, wall)
                got += what
            elif kind == "message":
                model.note(*what)
                got.append(what[0])
            elif kind == "config":
                model.configure(what)
            else:
                model.answered(*what, now)
                got.append(what)


def key_chunks(data: bytes) -> list[str]:
    """Keys from one read of a terminal in cbreak mode; an escape sequence (an arrow key)
    is dropped whole, a lone Esc is a key."""
    text = data.decode("utf-8", "ignore")
    if text.startswith(ESC) and len(text) > 1:
        return []
    return list(text)


class Commander:
    """Sends operator commands on worker threads; what came of each goes to the inbox.

    One command at a time waits for its answer, and another pressed meanwhile is not sent
    (the operator is told), except DISARM: it only ever makes things safer, so it is sent
    at once on a worker of its own, whatever is waiting.
    """

    def __init__(self, send: Callable[[str, str], tuple[bool, str]], inbox: Inbox) -> None:
        self.send = send
        self.inbox = inbox
        self._lock = threading.Lock()
        self._in_flight: list[str] = []

    @property
    def busy(self) -> str | None:
        """The command waiting for its answer (the oldest, when DISARMs are too), or None."""
        with self._lock:
            return self._in_flight[0] if self._in_flight else None

    def start(self, verb: str, args: str) -> bool:
        """Send verb on a worker; False (and the inbox told why) when it is not sent."""
        with self._lock:
            waiting = self._in_flight[0] if self._in_flight else None
            if waiting is not None and verb != SAFE:
                refused = waiting
            else:
                refused = None
                self._in_flight.append(verb)
        if refused is not None:
            self.inbox.answer(verb, NOT_SENT, f"still waiting for the answer to {refused}")
            return False
        threading.Thread(target=self._work, args=(verb, args), name=f"command-{verb}", daemon=True).start()
        return True

    def _work(self, verb: str, args: str) -> None:
        try:
            outcome, text = self._outcome(verb, args)
        finally:
            with self._lock:
                self._in_flight.remove(verb)
        self.inbox.answer(verb, outcome, text)

    def _outcome(self, verb: str, args: str) -> tuple[str, str]:
        try:
            ok, text = self.send(verb, args)
        except (NotSent, CommandError) as e:
            return NOT_SENT, str(e) or type(e).__name__
        except Exception as e:  # noqa: BLE001 - the dashboard must not die of a command; said on the screen
            return NO_ANSWER, str(e) or type(e).__name__
        return (OK if ok else REFUSED), text


def request_sender(request: Callable[..., list]) -> Callable[[str, str], tuple[bool, str]]:
    """A Commander's send from Recorder.request: the board's last reply as (ok, text). Its
    exceptions pass on as they are: no answer (board.NoReply) is not a refusal."""

    def send(verb: str, args: str) -> tuple[bool, str]:
        r = request(verb, args)[-1]
        return r.ok, r.detail or r.text

    return send


def run_live(model: Model, inbox: Inbox, stop: threading.Event, *, console, render: Callable,
             keys: Keys | None = None, send: Callable[[str, str], tuple[bool, str]] | None = None,
             screen: bool = True, link: Callable[[Model, float], None] | None = None) -> None:
    """Draw until stop is set (q, a signal) or the inbox's source is done."""
    commander = Commander(send, inbox) if send is not None else None
    fd = sys.stdin.fileno() if keys is not None and sys.stdin.isatty() else None
    restore = _cbreak(fd) if fd is not None else None
    try:
        _draw(model, inbox, stop, console, render, keys, commander, fd, screen, link)
    except OSError:
        stop.set()  # the terminal is gone (closed window, hangup): the recording ends properly
    finally:
        if restore is not None:
            restore()


def _draw(model, inbox, stop, console, render, keys, commander, fd, screen, link) -> None:
    """Redraw every TICK_S, ring the bell on a new trip, hand key presses to the Keys."""
    from rich.live import Live

    rung = model.trips_seen
    with Live(console=console, screen=screen, auto_refresh=False, transient=False,
              redirect_stdout=False, redirect_stderr=False) as live:
        while True:
            finished = stop.is_set() or inbox.done.is_set()  # checked first: the last picture has everything
            inbox.drain(model)
            now = time.monotonic()
            if link is not None:
                link(model, now)
            if model.trips_seen > rung:
                rung = model.trips_seen
                console.bell()
            live.update(render(model, now, keys), refresh=True)
            if finished:
                return
            for key in _read_keys(fd, TICK_S):
                action = keys.press(key) if keys is not None else None
                if action == QUIT:
                    stop.set()
                elif action is not None and commander is not None:
                    commander.start(*action)  # not sent: the inbox says why, on the next drain


def run_plain(model: Model, inbox: Inbox, stop: threading.Event, out=None,
              link: Callable[[Model, float], None] | None = None) -> None:
    """Plain lines until stop is set or the source is done."""
    out = out if out is not None else sys.stdout
    plain = Plain(model)
    while True:
        finished = stop.is_set() or inbox.done.is_set()  # before the drain: nothing that came is left unsaid
        got = inbox.drain(model)
        now = time.monotonic()
        if link is not None:
            link(model, now)
        lines = plain.items([g for g in got if not isinstance(g, (str, tuple))])
        lines += [f"  ({g})" for g in got if isinstance(g, str)]
        lines += plain.tick(now)
        if lines:
            try:
                out.write("\n".join(lines) + "\n")
                out.flush()
            except (OSError, ValueError):
                pass  # a closed pipe must not end the recording
        if finished:
            return
        stop.wait(TICK_S)


def _read_keys(fd: int | None, timeout: float) -> list[str]:
    if fd is None:
        time.sleep(timeout)
        return []
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return key_chunks(os.read(fd, 64)) if ready else []
    except (OSError, ValueError):
        time.sleep(timeout)
        return []


def _cbreak(fd: int):
    """Keys one at a time, without echo; Ctrl-C still interrupts. Returns the undo."""
    import termios
    import tty

    try:
        old = termios.tcgetattr(fd)
        tty.setcbreak(fd)
    except termios.error:
        return None

    def restore() -> None:
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        except termios.error:
            pass  # the terminal is gone: nothing to restore

    return restore
