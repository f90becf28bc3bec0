"""`thermoguard monitor --port P [--log LOG] [--no-log] [--force] [--arrhenius ...]`: a live
dashboard of a board (docs/dashboard.md).

The monitor holds the port through a Recorder: it logs every byte (unless --no-log),
keeps the board's heartbeat, reconnects, and passes the keys' commands (and those of
`thermoguard arm --port P` from another shell, thermoguard.relay) to the board between
two reads. On a terminal it draws the dashboard; otherwise it prints plain lines.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from pathlib import Path

from thermoguard import dose, protocol, relay
from thermoguard.board import NoReply, join_pieces
from thermoguard.cli import session
from thermoguard.cli.common import UserError, default_log, positive_number, positive_seconds
from thermoguard.dashboard import live, view
from thermoguard.dashboard.keys import Keys
from thermoguard.dashboard.model import Model, configuration_hash
from thermoguard.recorder import RECONNECT_TIMEOUT_S, Recorder


def add_dose_arguments(p) -> None:
    p.add_argument("--arrhenius", action="store_true",
                   help="also show Arrhenius damage (Omega) per channel, computed here from the readings")
    p.add_argument("--tissue", choices=sorted(dose.TISSUES), default=dose.LIVER.name,
                   help="the tissue whose Arrhenius parameters are used (default liver)")
    p.add_argument("--arrhenius-a", type=positive_number, metavar="A",
                   help="frequency factor A in 1/s (instead of the tissue's; implies --arrhenius)")
    p.add_argument("--arrhenius-ea", type=positive_number, metavar="EA",
                   help="activation energy Ea in J/mol (instead of the tissue's; implies --arrhenius)")


def accumulator(args) -> dose.ArrheniusAccumulator | None:
    if not (args.arrhenius or args.arrhenius_a or args.arrhenius_ea):
        return None
    return dose.ArrheniusAccumulator(dose.TISSUES[args.tissue], args.arrhenius_a, args.arrhenius_ea)


def register(sub) -> None:
    p = sub.add_parser("monitor", help="live dashboard of a board (keys: a arm, d disarm, r reset, q quit)")
    p.add_argument("--port", required=True, help="the board's port: a device, /dev/pts/N, socket://host:port")
    p.add_argument("--log", help="the log to write (default out/monitor-<time>.tglog)")
    p.add_argument("--no-log", action="store_true", help="record nothing")
    p.add_argument("--force", action="store_true", help="overwrite an existing log")
    p.add_argument("--reconnect-timeout", type=positive_seconds, default=RECONNECT_TIMEOUT_S, metavar="S",
                   help=f"how long to try to reopen a lost port before giving up (default {RECONNECT_TIMEOUT_S:g} s)")
    add_dose_arguments(p)
    p.set_defaults(func=run)


REREAD_EVERY_S = 3.0  # at most this often while telemetry shows a configuration not yet read


def _watching_config(recorder: Recorder, inbox: live.Inbox, known: int | None = None):
    """on_items for the recorder: items to the dashboard; and when the board's configuration
    changed (a CONFIG event, or telemetry with another configuration hash than the one read:
    a SET tightened it, perhaps from another shell) it is read again with GET, on a thread
    of its own (the recording's thread is the one that sends it). `known` is the hash of
    the configuration the dashboard has."""
    state = {"known": known, "busy": False, "last": -REREAD_EVERY_S}

    def reread() -> None:
        try:
            text, reply = join_pieces(recorder.transport.url, recorder.request(
                "GET", "", origin="the dashboard (the board's configuration changed)"))
            if text is None:
                raise NoReply(f"the board refused GET: {reply.detail}")
            cfg = json.loads(text)
            state["known"] = configuration_hash(cfg)
            inbox.config(cfg)
        except (NoReply, ValueError) as e:
            inbox.message(f"warning: the board's new configuration could not be read ({e}); "
                          "its limits are not shown")
        finally:
            state["busy"] = False

    def on_items(items: list) -> None:
        inbox.items(items)
        changed = any(isinstance(i, protocol.Event) and i.event == protocol.EV_CONFIG for i in items) or any(
            isinstance(i, protocol.Telemetry) and i.config_valid and i.config_hash != state["known"]
            for i in items)
        now = time.monotonic()
        if changed and not state["busy"] and now - state["last"] >= REREAD_EVERY_S:
            state["busy"], state["last"] = True, now
            threading.Thread(target=reread, name="reread-config", daemon=True).start()

    return on_items


def _recording(recorder: Recorder, early, writer, inbox, failure: list[str]) -> None:
    try:
        for data, t_ns in early:
            recorder.feed(data, t_ns)
        recorder.run()
    except OSError as e:
        failure.append(f"cannot write {writer.path}: {e.strerror or e}")
    except BaseException as e:  # noqa: BLE001 - said in one sentence below, the log is closed
        failure.append(f"the recording stopped: {e}")
    finally:
        inbox.done.set()


def run(args) -> int:
    if args.no_log and args.log:
        raise UserError("--log and --no-log contradict each other: choose one")
    out = None if args.no_log else Path(args.log) if args.log else default_log("monitor")
    if out is not None and out.exists() and not args.force:
        raise session.exists_error(out, "--log")
    arrh = accumulator(args)
    interactive = sys.stdout.isatty()
    warnings: list[str] = []
    board, early = session.open_board(args.port)
    writer, meta = session.open_log(board, args.port, out, args.force, warnings.append, option="--log")
    inbox = live.Inbox()
    recorder = Recorder(board.transport, writer, reconnect_timeout_s=args.reconnect_timeout,
                        on_message=inbox.message, expected=board.info)
    recorder.on_items = _watching_config(recorder, inbox, configuration_hash(meta.get("config") or {}))
    recorder.on_alarm = lambda text: inbox.message(text, "high")
    failure: list[str] = []
    thread = threading.Thread(target=_recording, args=(recorder, early, writer, inbox, failure), name="recorder",
                              daemon=True)
    try:  # from here on the log is closed whatever happens
        model = Model(meta.get("config"), arrhenius=arrh, started=time.monotonic())
        for text in warnings:
            model.note(f"warning: {text}", "medium")
        info = board.info
        what = (f"board {info.board}, firmware {info.firmware}, configuration {info.config_hash or 'none'}"
                if info is not None else "board unknown")
        if not interactive:
            print(f"monitoring {args.port} ({what}); log {out if out is not None else 'none'}; Ctrl-C ends it",
                  flush=True)
            for text in warnings:
                print(f"thermoguard: warning: {text}", file=sys.stderr, flush=True)

        def link(m: Model, now: float) -> None:
            s = recorder.stats
            m.link(now, crc_errors=s.crc_errors, lost=s.lost, gaps=s.gaps, garbage=s.garbage)

        send = live.request_sender(functools.partial(recorder.request, origin="the dashboard's keys"))

        def title(m: Model) -> str:
            # The configuration the board reports now (a SET changes it), once frames came.
            if info is None or m.last is None or not m.last.config_valid:
                return f"thermoguard monitor  {args.port}  {what}"
            return (f"thermoguard monitor  {args.port}  board {info.board}, firmware {info.firmware}, "
                    f"configuration {m.last.config_hash:08x}")

        with session.stop_on_signals(recorder.stop), \
                relay.serve(recorder.transport.url, functools.partial(recorder.request, origin=relay.ORIGIN),
                            inbox.message):
            thread.start()
            if interactive:
                from rich.console import Console

                console = Console()
                live.run_live(model, inbox, recorder.stop, console=console,
                              render=lambda m, now, keys: view.render(m, now, keys, title=title(m),
                                                                      width=console.width),
                              keys=Keys(), send=send, link=link)
            else:
                live.run_plain(model, inbox, recorder.stop, link=link)
    finally:
        recorder.stop.set()
        try:
            if thread.is_alive():
                thread.join()
        finally:
            session.close(board, writer)
    try:
        print(session.summary(recorder.stats, out))
    except OSError:
        pass  # the terminal is gone; the log is closed
    if failure:
        raise UserError(failure[0])
    if recorder.stats.gave_up:
        print(f"thermoguard: {recorder.stats.gave_up}", file=sys.stderr)
        return 1
    return 0
