"""`thermoguard flash --port P --board NAME [--config C] [--mpy]`: deploy the firmware,
the board file and the configuration with mpremote, then verify (thermoguard.deploy)."""

from __future__ import annotations

from thermoguard.cli.common import UserError


def register(sub) -> None:
    from thermoguard.deploy import boards

    p = sub.add_parser("flash", help="deploy firmware, board file and configuration with mpremote, then verify")
    p.add_argument("--port", required=True, help="the board's port: a device, /dev/pts/N, socket://host:port")
    p.add_argument("--board", required=True, help=f"one of {', '.join(boards())}")
    p.add_argument("--config", help="configuration JSON (default: the demo configuration)")
    p.add_argument("--mpy", action="store_true", help="copy the tgfw package compiled by mpy-cross")
    p.set_defaults(func=run)


def run(args) -> int:
    from thermoguard.deploy import DeployError, flash

    try:
        info = flash(args.port, args.board, args.config, args.mpy)
    except DeployError as e:
        raise UserError(str(e)) from None
    print(f"flashed and verified: board {info['board']}, firmware {info['firmware']}, "
          f"configuration {info['config_hash']}, {info['state']}")
    return 0
