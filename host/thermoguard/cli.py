"""The `thermoguard` command (DESIGN.md, "Public contracts")."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tgfw import VERSION as FIRMWARE_VERSION
from tgfw import codes, config

import thermoguard
from thermoguard import paths, protocol
from thermoguard.simrun import SessionRunner
from thermoguard.vboard import ScenarioBoard


class UserError(Exception):
    """A problem with what the user asked for: one sentence, non-zero exit, no traceback."""


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or max, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be above 0")
    return value


def load_config(path: str | None) -> dict:
    if path is None:
        return json.loads((paths.DATA / "demo_config.json").read_text())
    try:
        return config.load(path)
    except config.ConfigError as e:
        raise UserError(f"configuration {path}: {e}") from None


def check_scenario(path: str) -> Path:
    sys.path.insert(0, str(paths.HIL_DEVICE))
    try:
        import scenario
    finally:
        sys.path.pop(0)
    p = Path(path)
    if not p.is_file():
        raise UserError(f"scenario {path} does not exist")
    try:
        scenario.load(str(p))
    except scenario.ScenarioError as e:
        raise UserError(f"scenario {path}: {e}") from None
    return p


def open_log(path: Path, cfg: dict, force: bool, board: str):
    from thermoguard import log

    meta = {  # the writer adds thermoguard's version, the host and the start time
        "firmware": FIRMWARE_VERSION,
        "board": board,
        "config": cfg,
        "config_hash": f"{config.config_hash(config.validate(cfg)):08x}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return log.LogWriter.create(path, meta, force=force)
    except FileExistsError:
        raise UserError(f"{path} exists: choose another --out or add --force to overwrite it") from None


def default_log(prefix: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("out") / f"{prefix}-{stamp}.tglog"


def cmd_sim(args) -> int:
    scenario_path = check_scenario(args.scenario)
    cfg = load_config(args.config)
    out = Path(args.out) if args.out else default_log("sim-" + scenario_path.stem)
    recorder = open_log(out, cfg, args.force, "virtual")
    board = ScenarioBoard(cfg, scenario_path, args.speed)
    try:
        result = SessionRunner(board, recorder, arm=not args.no_arm).run()
        errors = board.errors()
    finally:
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


def demo_line(t: protocol.Telemetry, names: list[str]) -> str:
    parts = [f"{t.t_dev_s:7.1f} s", f"{t.state_name:<8}", "RF permitted" if t.interlock_on else "RF off      "]
    for name, ch in zip(names, t.channels, strict=False):
        if ch.temp_c is None:
            value = f"{ch.fault_word or 'no reading':>9}"
        else:
            value = f"{ch.temp_c:7.2f} C"
        flag = " warn" if ch.warn else ""
        parts.append(f"{name} {value}{flag}")
    return "  ".join(parts)


def cmd_demo(args) -> int:
    cfg = load_config(None)
    names = [ch["name"] for ch in cfg["channels"]]
    scenario_path = paths.DATA / "demo_scenario.csv"
    out = Path(args.out) if args.out else default_log("demo")
    recorder = open_log(out, cfg, args.force, "virtual")
    speed_text = "as fast as it runs" if args.speed is None else f"{args.speed:g}x real time"
    print(f"thermoguard demo: the firmware on the virtual board ({speed_text}), RF ablation scenario")
    print("  tip: ablation probe thermocouple; foramen: protective, trips at 45 C")
    next_line = [0.0]

    def show(item):
        if isinstance(item, protocol.Telemetry) and item.t_dev_s >= next_line[0]:
            print(demo_line(item, names), flush=True)
            next_line[0] = item.t_dev_s + args.every
        elif isinstance(item, protocol.Event) and item.event in (protocol.EV_ARM, protocol.EV_TRIP):
            what = "ARMED: RF permitted" if item.event == protocol.EV_ARM else f"TRIP: {item.text}: RF off"
            print(f"{item.t_dev_s:7.1f} s  *** {what} ***", flush=True)
        elif isinstance(item, protocol.Text):
            print(f"  board: {item.text}", flush=True)

    board = ScenarioBoard(cfg, scenario_path, args.speed)
    started = time.monotonic()
    try:
        result = SessionRunner(board, recorder, arm=True, on_item=show).run()
    finally:
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


def cmd_verify(args) -> int:
    from thermoguard import log

    try:
        report = log.verify(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    print(report.summary())
    return 0 if report.ok else 1


def cmd_export(args) -> int:
    from thermoguard import export, log

    targets = [(fmt, Path(p)) for fmt, p in (("csv", args.csv), ("npz", args.npz)) if p]
    if not targets:
        raise UserError("say what to write: --csv OUT and/or --npz OUT")
    for _, out in targets:
        if out.exists() and not args.force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")
    try:
        rows, meta, damage = export.telemetry(args.log)
    except log.LogError as e:
        raise UserError(str(e)) from None
    names = export.channel_names(meta, rows[0][1] if rows else None)
    for fmt, out in targets:
        count = export.write_csv(rows, names, out) if fmt == "csv" else export.write_npz(rows, names, out)
        print(f"{out}: {count} rows")
    for what in damage:
        print(f"thermoguard: warning: the log is damaged ({what}); every intact record was exported",
              file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thermoguard", description="Temperature-safety monitor for RF ablation.")
    parser.add_argument("--version", action="version", version=f"thermoguard {thermoguard.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the virtual board on the built-in ablation scenario")
    demo.add_argument("--speed", type=parse_speed, default=20.0, help="real-time multiple, or max (default 20)")
    demo.add_argument("--out", help="log file (default out/demo-<time>.tglog)")
    demo.add_argument("--force", action="store_true", help="overwrite an existing log")
    demo.add_argument("--every", type=float, default=5.0, help="seconds of device time between lines (default 5)")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("sim", help="run the firmware on a virtual board through a scenario")
    sim.add_argument("scenario", help="scenario CSV (or an exported CSV)")
    sim.add_argument("--config", help="configuration JSON (default: the demo configuration)")
    sim.add_argument("--out", help="log file (default out/sim-<scenario>-<time>.tglog)")
    sim.add_argument("--speed", type=parse_speed, default=None, help="real-time multiple, or max (default)")
    sim.add_argument("--no-arm", action="store_true", help="do not arm the board")
    sim.add_argument("--force", action="store_true", help="overwrite an existing log")
    sim.set_defaults(func=cmd_sim)

    verify = sub.add_parser("verify", help="check a log's integrity; non-zero exit on any damage")
    verify.add_argument("log")
    verify.set_defaults(func=cmd_verify)

    export = sub.add_parser("export", help="convert a log to CSV or NumPy arrays")
    export.add_argument("log")
    export.add_argument("--csv", help="CSV file (DESIGN.md columns)")
    export.add_argument("--npz", help="NumPy .npz file: arrays per channel plus time, state and interlock")
    export.add_argument("--force", action="store_true", help="overwrite existing outputs")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"thermoguard: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thermoguard: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
