"""`thermoguard arm | disarm | reset --port P [--reason R]`: operator commands.

Each prints the board's answer (`OK ARM`); a refusal (`ERR ARM tip:open`) exits 1 with the
board's reason. The board decides: the host only asks (DESIGN.md, principle 1).
"""

from __future__ import annotations

import sys

from thermoguard import protocol, relay
from thermoguard.board import REPLY_TIMEOUT_S, Board, connect
from thermoguard.cli.common import UserError, positive_seconds
from thermoguard.transport import PortError, PortLost

VERBS = {
    "arm": ("ARM", "arm the board: it permits RF after its next complete healthy cycle"),
    "disarm": ("DISARM", "disarm the board: the interlock opens at once"),
    "reset": ("RESET", "clear a trip (the board refuses while a cause is still active); needs --reason"),
}


def register(sub) -> None:
    for name, (verb, help_text) in VERBS.items():
        p = sub.add_parser(name, help=help_text)
        add_port_arguments(p)
        if verb == "RESET":
            p.add_argument("--reason", help="why the trip may be cleared (kept in the board's RESET event)")
        else:
            p.add_argument("--reason", help=f"why (optional; kept in the board's {verb} event)")
        p.set_defaults(func=run, verb=verb)


def add_port_arguments(p) -> None:
    p.add_argument("--port", required=True, help="the board's port: a device, /dev/pts/N, socket://host:port")
    p.add_argument("--timeout", type=positive_seconds, default=REPLY_TIMEOUT_S,
                   help=f"seconds to wait for the board's answer (default {REPLY_TIMEOUT_S:g})")


def command_line(verb: str, args: str = "") -> bytes:
    """The encoded line, or UserError with why it cannot be sent."""
    try:
        return protocol.encode_command(verb, args)
    except protocol.CommandError as e:
        raise UserError(f"cannot send {verb}: {e}") from None


def open_board(port: str, timeout: float) -> Board | relay.Client:
    """The board on port; or, while record or monitor holds the port, a way through them."""
    holder = relay.find(port)
    if holder is not None:
        print(f"thermoguard: {port} is held by thermoguard record or monitor: the command goes through it "
              "(and into its log, if it keeps one)", file=sys.stderr)
        return holder
    try:
        return connect(port, timeout=max(timeout, 0.1))
    except PortLost as e:
        raise UserError(f"{port} failed while asking INFO: {e}") from None
    except PortError as e:
        raise UserError(str(e)) from None


def ask(board: Board | relay.Client, verb: str, args: str, timeout: float) -> protocol.Reply:
    try:
        return board.command(verb, args, timeout)
    except PortLost as e:
        raise UserError(f"{port_of(board)} failed while waiting for the answer to {verb}: {e}") from None
    except PortError as e:
        raise UserError(str(e)) from None


def port_of(board: Board | relay.Client) -> str:
    return board.url if isinstance(board, relay.Client) else board.transport.url


def answer(reply: protocol.Reply) -> int:
    """Print the board's answer; 0 when it accepted, 1 when it refused."""
    if reply.ok:
        print(reply.text)
        return 0
    if reply.verb == "?":
        print(f"thermoguard: the board could not read the command: {reply.detail}", file=sys.stderr)
    else:
        print(f"thermoguard: the board refused {reply.verb}: {reply.detail}", file=sys.stderr)
    return 1


def run(args) -> int:
    text = (args.reason or "").strip()
    if args.verb == "RESET":
        if not text:
            raise UserError("reset needs --reason: say why the trip may be cleared, e.g. "
                            "--reason 'probe repositioned'")
    command_line(args.verb, text)  # refuse a reason the board could not read before opening the port
    with open_board(args.port, args.timeout) as board:
        return answer(ask(board, args.verb, text, args.timeout))
