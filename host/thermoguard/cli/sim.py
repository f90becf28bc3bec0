"""`thermoguard sim SCENARIO`: the real firmware on a virtual board through a scenario."""

from __future__ import annotations

from pathlib import Path

from thermoguard.cli.common import (
    UserError,
    check_names,
    check_scenario,
    default_log,
    load_config,
    open_log,
    parse_speed,
)
from thermoguard.simrun import SessionRunner
from thermoguard.vboard import ScenarioBoard


def register(sub) -> None:
    p = sub.add_parser("sim", help="run the firmware on a virtual board through a scenario")
    p.add_argument("scenario", help="scenario CSV, an exported CSV, a session log (.tglog) or a plant (.json)")
    p.add_argument("--config", help="configuration JSON (default: the demo configuration)")
    p.add_argument("--out", help="log file (default out/sim-<scenario>-<time>.tglog)")
    p.add_argument("--speed", type=parse_speed, default=None, help="real-time multiple, or max (default)")
    p.add_argument("--no-arm", action="store_true", help="do not arm the board")
    p.add_argument("--force", action="store_true", help="overwrite an existing log")
    p.set_defaults(func=run)


def run(args) -> int:
    scenario_path = check_scenario(args.scenario)
    cfg = load_config(args.config)
    check_names(scenario_path, cfg)
    out = Path(args.out) if args.out else default_log("sim-" + scenario_path.stem)
    recorder = open_log(out, cfg, args.force, "virtual")
    board = None
    try:
        board = ScenarioBoard(cfg, scenario_path, args.speed)
        result = SessionRunner(board, recorder, arm=not args.no_arm).run()
        errors = board.errors()
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    finally:
        if board is not None:
            board.close()
        recorder.close()
    for trip in result.trips:
        print(f"trip at {trip.t_dev_s:.2f} s: {trip.causes}")
    if not result.trips:
        print("no trip")
    if result.frames == 0:
        raise UserError("the virtual board sent no telemetry: " + (errors.strip() or "no output"))
    print(f"log: {out}")
    return 0


