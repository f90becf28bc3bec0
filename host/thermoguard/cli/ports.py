"""`thermoguard ports [PORT ...]`: list serial ports and say which answer as a thermoguard board."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from serial.tools import list_ports

from thermoguard import relay
from thermoguard.board import connect, parse_info
from thermoguard.cli.common import positive_seconds
from thermoguard.transport import PortError, PortLost

PROBE_TIMEOUT_S = 1.0


def register(sub) -> None:
    p = sub.add_parser("ports", help="list serial ports and which of them is a thermoguard board")
    p.add_argument("extra", nargs="*", metavar="PORT",
                   help="also ask these (a /dev/pts/N of a virtual board, socket://host:port)")
    p.add_argument("--timeout", type=positive_seconds, default=PROBE_TIMEOUT_S,
                   help=f"seconds to wait for each port's INFO answer (default {PROBE_TIMEOUT_S:g})")
    p.set_defaults(func=run)


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """(is a board, what to say about it). Sends INFO, which changes nothing on a board."""
    holder = relay.find(url)
    if holder is not None:  # a recording or monitor holds it: ask through them
        try:
            reply = holder.command("INFO", "", timeout)
        except PortError as e:
            return False, f"{url}: held by thermoguard record or monitor, which did not pass on INFO ({e})"
        if reply.ok:
            held = "held by thermoguard record or monitor"
            return True, f"{url}: thermoguard {parse_info(reply.detail).describe()} ({held})"
        return False, f"{url}: held by thermoguard record or monitor; the board refused INFO: {reply.detail}"
    try:
        with connect(url, timeout=timeout) as board:
            return True, f"{url}: thermoguard {board.info.describe()}"
    except (PortError, PortLost) as e:
        return False, str(e)


def run(args) -> int:
    found = [(p.device, p.description) for p in sorted(list_ports.comports(), key=lambda p: p.device)]
    known = {device for device, _ in found}
    found += [(url, "") for url in args.extra if url not in known]
    if not found:
        print("no serial ports found (a virtual board's /dev/pts/N is not listed: give it as an argument)")
        return 0
    timeout = max(args.timeout, 0.1)
    with ThreadPoolExecutor(max_workers=min(16, len(found))) as pool:  # each probe mostly waits
        results = list(pool.map(lambda entry: probe(entry[0], timeout), found))
    for (_, description), (_, text) in zip(found, results, strict=True):
        extra = f"  [{description}]" if description and description != "n/a" else ""
        print(text + extra)
    boards = sum(ok for ok, _ in results)
    print(f"{boards} thermoguard board{'' if boards == 1 else 's'} among {len(found)} "
          f"port{'' if len(found) == 1 else 's'}")
    return 0
