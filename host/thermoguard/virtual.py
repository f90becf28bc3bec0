"""`thermoguard virtual`: serve a virtual board as a serial port (docs/virtual-board.md).

    python -m thermoguard.virtual [--scenario F] [--config C] [--speed X|max]
                                  [--board-dir D] [--socket PORT] [--log FILE] [--control PATH]

The first line printed is the port to open (`/dev/pts/N`, or `socket://127.0.0.1:PORT`
with --socket); it runs until interrupted (Ctrl-C, SIGTERM). Anything that opens a board's
serial port works with it: thermoguard's own commands, pyserial, mpremote. Beside it, a
control socket the firmware cannot see (thermoguard.vcontrol) sets the chips' temperatures
and faults, reads pins and the clock, and cuts the power; its path goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import tempfile
from pathlib import Path

from tgfw import config

from thermoguard import paths
from thermoguard.cli.common import UserError, check_scenario, parse_speed

HELP = "serve a virtual board; the first line of output is its serial device path"


def register(sub) -> None:
    """`thermoguard virtual` (thermoguard.cli: COMMANDS)."""
    p = sub.add_parser("virtual", help=HELP, description=HELP)
    add_arguments(p)
    p.set_defaults(func=cmd_virtual)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", help="scenario CSV, exported CSV, session log (.tglog) or closed-loop plant "
                        "(.json) the chips follow (default: every channel at 37 C)")
    parser.add_argument("--config", help="configuration JSON (default: the demo configuration)")
    parser.add_argument("--speed", type=parse_speed, default=1.0,
                        help="real-time multiple, or max (default 1)")
    parser.add_argument("--board-dir", help="the board's flash: a folder kept between runs (default: temporary)")
    parser.add_argument("--socket", type=tcp_port, metavar="PORT",
                        help="serve socket://127.0.0.1:PORT instead of a pty (0: any free port)")
    parser.add_argument("--log", help="append everything the board sends to this file")
    parser.add_argument("--control", metavar="PATH",
                        help="the control channel's unix socket (default: control.sock in a temporary folder)")


def tcp_port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a TCP port is a whole number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a TCP port is 0 to 65535")
    return value


def load_bridge():
    """hil/bridge.py of this checkout (the virtual board lives beside the firmware)."""
    spec = importlib.util.spec_from_file_location("thermoguard_hil_bridge", paths.ROOT / "hil" / "bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_text(path: str | None) -> str:
    if path is None:
        return (paths.DATA / "demo_config.json").read_text()
    try:
        config.load(path)
    except config.ConfigError as e:
        raise UserError(f"configuration {path}: {e}") from None
    return Path(path).read_text()


class _Stop(Exception):
    pass


def _stop(signum, frame):
    raise _Stop


def cmd_virtual(args) -> int:
    scenario = check_scenario(args.scenario) if args.scenario else None
    tmp = None
    if args.board_dir:
        board_dir = Path(args.board_dir)
        # An existing board keeps its configuration (as flash does) unless one is given.
        text = config_text(args.config) if args.config or not (board_dir / "config.json").exists() else None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="thermoguard-virtual-")
        board_dir = Path(tmp.name)
        text = config_text(args.config)
    bridge_mod = load_bridge()
    try:
        bridge_mod.prepare_board_dir(board_dir, text)
    except OSError as e:
        raise UserError(f"cannot use {board_dir} as the board's folder: {e.strerror or e}") from None
    try:
        port = bridge_mod.SocketPort(args.socket) if args.socket is not None else bridge_mod.PtyPort()
    except OSError as e:
        raise UserError(f"cannot open the board's port: {e}") from None
    speed = args.speed or 0.0  # parse_speed gives None for max
    ctl_tmp = None
    if args.control:
        control = Path(args.control)
    else:
        ctl_tmp = tempfile.TemporaryDirectory(prefix="tg-control-")
        control = Path(ctl_tmp.name) / "control.sock"
    if len(os.fsencode(str(control))) > 100:
        port.close()
        raise UserError(f"the control socket path {control} is too long for a unix socket (at most 100 bytes)")
    try:
        bridge = bridge_mod.Bridge(board_dir, port, scenario=scenario, speed=speed,
                                   log=Path(args.log) if args.log else None, control=control)
    except OSError as e:
        if hasattr(port, "close"):
            port.close()
        raise UserError(f"cannot start the virtual board: {e.strerror or e} ({e.filename or ''})") from None
    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        print(port.url, flush=True)
        pace = f"{speed:g}x real time" if speed else "as fast as it runs"
        print(f"thermoguard virtual: board folder {board_dir}, {pace}"
              f"{', scenario ' + str(scenario) if scenario else ''}; Ctrl-C ends it", file=sys.stderr, flush=True)
        print(f"thermoguard virtual: control socket {control}", file=sys.stderr, flush=True)
        bridge.run()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        bridge.close()
        if tmp is not None:
            tmp.cleanup()
        if ctl_tmp is not None:
            ctl_tmp.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="thermoguard virtual", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_virtual(args)
    except UserError as e:
        print(f"thermoguard: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
