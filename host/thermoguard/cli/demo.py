"""`thermoguard demo`: the virtual board on the built-in ablation scenario, the live
dashboard (plain lines without a terminal), the log, and at the end the session report
(PNG and HTML beside the log)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from tgfw import codes

from thermoguard import paths, protocol
from thermoguard.cli import session
from thermoguard.cli.common import (
    UserError,
    check_outputs,
    default_log,
    load_config,
    open_log,
    parse_speed,
    positive_seconds,
)
from thermoguard.cli.monitor import accumulator, add_dose_arguments
from thermoguard.replay import status_line
from thermoguard.simrun import SessionRunner
from thermoguard.vboard import ScenarioBoard


def register(sub) -> None:
    p = sub.add_parser("demo", help="the virtual board on the built-in ablation scenario, live, then the report")
    p.add_argument("--speed", type=parse_speed, default=20.0, help="real-time multiple, or max (default 20)")
    p.add_argument("--out", help="log file (default out/demo-<time>.tglog); the report goes beside it")
    p.add_argument("--force", action="store_true", help="overwrite an existing log and report")
    p.add_argument("--every", type=positive_seconds, default=5.0,
                   help="without a terminal: seconds of device time between lines (default 5)")
    add_dose_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(None)
    names = [ch["name"] for ch in cfg["channels"]]
    scenario_path = paths.DATA / "demo_plant.json"  # closed loop: a trip stops the heating
    out = Path(args.out) if args.out else default_log("demo")
    png, page = out.with_suffix(".png"), out.with_suffix(".html")
    check_outputs(out, [png, page], args.force)
    arrh = accumulator(args)
    recorder = open_log(out, cfg, args.force, "virtual")
    interactive = sys.stdout.isatty()
    speed_text = "as fast as it runs" if args.speed is None else f"{args.speed:g}x real time"
    print(f"thermoguard demo: the firmware on the virtual board ({speed_text}), RF ablation of a vertebra")
    print("  tip: ablation probe thermocouple; foramen: protective, trips at 45 C")
    print("  the tissue heats only while the interlock permits RF, and cools when it does not")
    board = None
    started = time.monotonic()
    try:
        board = ScenarioBoard(cfg, scenario_path, args.speed)
        if interactive:
            result = _live(board, recorder, cfg, arrh)
        else:
            result = SessionRunner(board, recorder, arm=True, on_item=_printer(names, args.every)).run()
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    finally:
        if board is not None:
            board.close()
        recorder.close()
    elapsed = time.monotonic() - started
    last = result.last
    print()
    if result.trips:
        first = result.trips[0]
        print(f"Tripped at {first.t_dev_s:.1f} s of device time: {first.causes}. The interlock opened in that cycle")
        print("and stayed open: the trip is latched until an operator resets it with a reason.")
    else:
        print("No trip.")
    if last is not None:
        state = codes.STATE_NAMES[last.state]
        print(f"Final state {state}, {result.frames} telemetry frames in {elapsed:.1f} s, "
              f"{result.decoder.crc_errors} CRC errors, {result.decoder.lost} frames lost.")
    print(f"Log: {out}")
    if result.frames:
        _report(out, png, page, args.force)
    return 0


def _printer(names: list[str], every: float):
    """Without a terminal: a status line every `every` s of device time, ARM and TRIP at once."""
    next_line = [0.0]

    def show(item):
        if isinstance(item, protocol.Telemetry) and item.t_dev_s >= next_line[0]:
            print(status_line(item, names), flush=True)
            next_line[0] = item.t_dev_s + every
        elif isinstance(item, protocol.Event) and item.event in (protocol.EV_ARM, protocol.EV_TRIP):
            what = "ARMED: RF permitted" if item.event == protocol.EV_ARM else f"TRIP: {item.text}: RF off"
            print(f"{item.t_dev_s:7.1f} s  *** {what} ***", flush=True)
        elif isinstance(item, protocol.Text):
            print(f"  board: {item.text}", flush=True)

    return show


def _live(board: ScenarioBoard, recorder, cfg: dict, arrh):
    """The dashboard while the session runner drives the board on another thread; q or
    Ctrl-C ends the demo early (the log is closed either way)."""
    from rich.console import Console

    from thermoguard.dashboard import live, view
    from thermoguard.dashboard.keys import Keys
    from thermoguard.dashboard.model import Model

    inbox = live.Inbox()
    model = Model(cfg, arrhenius=arrh, started=time.monotonic())
    runner = SessionRunner(board, recorder, arm=True, on_item=lambda item: inbox.items([item]))
    stop = threading.Event()
    failure: list[BaseException] = []

    def drive():
        try:
            runner.run()
        except BaseException as e:  # noqa: BLE001 - raised again on the main thread
            failure.append(e)
        finally:
            inbox.done.set()

    def link(m: Model, now: float) -> None:
        d = runner.decoder
        m.link(now, crc_errors=d.crc_errors, lost=d.lost, garbage=d.garbage)

    thread = threading.Thread(target=drive, name="demo-board", daemon=True)
    title = "thermoguard demo  virtual board, closed-loop ablation (the session runner arms it)"
    try:
        with session.stop_on_signals(stop):
            thread.start()
            console = Console()
            live.run_live(model, inbox, stop, console=console, screen=False, keys=Keys(commands=False), link=link,
                          render=lambda m, now, keys: view.render(m, now, keys, title=title, width=console.width))
    finally:
        if thread.is_alive():
            board.proc.kill()  # ends the runner's read: the board's output closes
            thread.join()
    if failure:
        raise failure[0]
    return runner.result


def _report(out: Path, png: Path, page: Path, force: bool) -> None:
    """The session report, as `thermoguard report LOG -o PNG --html HTML` makes it."""
    from thermoguard.cli import report

    print()
    report.run(argparse.Namespace(log=str(out), out=str(png), html=str(page), force=force))
