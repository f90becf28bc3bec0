"""`thermoguard demo`: the virtual board on the built-in ablation scenario."""

from __future__ import annotations

import time
from pathlib import Path

from tgfw import codes

from thermoguard import paths, protocol
from thermoguard.cli.common import UserError, default_log, load_config, open_log, parse_speed, positive_seconds
from thermoguard.replay import status_line
from thermoguard.simrun import SessionRunner
from thermoguard.vboard import ScenarioBoard


def register(sub) -> None:
    p = sub.add_parser("demo", help="the virtual board on the built-in ablation scenario")
    p.add_argument("--speed", type=parse_speed, default=20.0, help="real-time multiple, or max (default 20)")
    p.add_argument("--out", help="log file (default out/demo-<time>.tglog)")
    p.add_argument("--force", action="store_true", help="overwrite an existing log")
    p.add_argument("--every", type=positive_seconds, default=5.0,
                   help="seconds of device time between lines (default 5)")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(None)
    names = [ch["name"] for ch in cfg["channels"]]
    scenario_path = paths.DATA / "demo_plant.json"  # closed loop: a trip stops the heating
    out = Path(args.out) if args.out else default_log("demo")
    recorder = open_log(out, cfg, args.force, "virtual")
    speed_text = "as fast as it runs" if args.speed is None else f"{args.speed:g}x real time"
    print(f"thermoguard demo: the firmware on the virtual board ({speed_text}), RF ablation of a vertebra")
    print("  tip: ablation probe thermocouple; foramen: protective, trips at 45 C")
    print("  the tissue heats only while the interlock permits RF, and cools when it does not")
    next_line = [0.0]

    def show(item):
        if isinstance(item, protocol.Telemetry) and item.t_dev_s >= next_line[0]:
            print(status_line(item, names), flush=True)
            next_line[0] = item.t_dev_s + args.every
        elif isinstance(item, protocol.Event) and item.event in (protocol.EV_ARM, protocol.EV_TRIP):
            what = "ARMED: RF permitted" if item.event == protocol.EV_ARM else f"TRIP: {item.text}: RF off"
            print(f"{item.t_dev_s:7.1f} s  *** {what} ***", flush=True)
        elif isinstance(item, protocol.Text):
            print(f"  board: {item.text}", flush=True)

    board = None
    started = time.monotonic()
    try:
        board = ScenarioBoard(cfg, scenario_path, args.speed)
        result = SessionRunner(board, recorder, arm=True, on_item=show).run()
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
    return 0


