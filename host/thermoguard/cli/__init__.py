"""The `thermoguard` command (DESIGN.md, "Public contracts"): one module per command, each
with `register(subparsers)`; COMMANDS lists them in the order `--help` shows."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import thermoguard
from thermoguard.cli.common import UserError

COMMANDS = ("demo", "sim", "virtual", "monitor", "record", "operator", "config", "ports", "flash", "verify", "export",
            "replay", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thermoguard", description="Temperature-safety monitor for RF ablation.")
    parser.add_argument("--version", action="version", version=f"thermoguard {thermoguard.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"thermoguard.cli.{name}").register(sub)
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
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
