"""`thermoguard config --port P [show | set KEY=VALUE ...]`: read or change a board's configuration.

`show` prints the board's configuration as pretty JSON; `set` sends one SET with every pair
(the board applies all of them or none, checks the values against the firmware's rules and
ceilings, and while armed accepts only changes that tighten). Only the KEY=VALUE shape is
checked here; the board's refusal is printed and exits 1.
"""

from __future__ import annotations

import json
import re
import sys

from thermoguard import protocol
from thermoguard.cli.common import UserError
from thermoguard.cli.operator import add_port_arguments, answer, ask, open_board, port_of
from thermoguard.transport import PortError, PortLost

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_PAIR = re.compile(rf"({_NAME}(?:\.{_NAME})?)=([\x21-\x7e]+)")


def register(sub) -> None:
    p = sub.add_parser("config", help="read or change the board's configuration")
    add_port_arguments(p)
    p.add_argument("action", nargs="?", choices=("show", "set"), default="show",
                   help="show (default) or set")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE",
                   help="for set: sample_hz=8, foramen.high_c=44.5 (a channel's key is <name>.<key>)")
    p.set_defaults(func=run)


def check_pairs(pairs: list[str]) -> str:
    """The SET arguments, or UserError naming the first pair that is not KEY=VALUE."""
    if not pairs:
        raise UserError("config set needs KEY=VALUE pairs, e.g. config set foramen.high_c=44.5")
    for pair in pairs:
        if not _PAIR.fullmatch(pair):
            raise UserError(f"{pair!r} is not KEY=VALUE: write a key (sample_hz, or a channel's "
                            "foramen.high_c), =, and a value without spaces, e.g. foramen.high_c=44.5")
    args = " ".join(pairs)
    try:
        protocol.encode_command("SET", args)
    except protocol.CommandError:  # the pairs have the shape: only the length can be wrong
        raise UserError(f"these pairs make a command longer than {protocol.MAX_LINE} bytes: "
                        "set them with two config set commands") from None
    return args


def run(args) -> int:
    if args.action == "show":
        if args.pairs:
            raise UserError("config show takes no KEY=VALUE pairs (did you mean config set?)")
        with open_board(args.port, args.timeout) as board:
            return show(board, args.timeout)
    text = check_pairs(args.pairs)
    with open_board(args.port, args.timeout) as board:
        return answer(ask(board, "SET", text, args.timeout))


def show(board, timeout: float) -> int:
    try:
        text, reply = board.get_config(timeout)
    except PortLost as e:
        raise UserError(f"{port_of(board)} failed while reading the configuration: {e}") from None
    except PortError as e:
        raise UserError(str(e)) from None
    if text is None:
        return answer(reply)
    try:
        cfg = json.loads(text)
    except ValueError:
        print(f"thermoguard: the board's configuration is not JSON: {text[:80]!r}", file=sys.stderr)
        return 1
    print(json.dumps(cfg, indent=2))
    return 0
