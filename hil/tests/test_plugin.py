"""The HIL plugin itself (conftest.py): a board whose setup fails is still released."""

from __future__ import annotations

import os
from pathlib import Path

from thermoguard import protocol

pytest_plugins = ("pytester",)

CONFTEST = Path(__file__).with_name("conftest.py")

# prepare() on a real board opens its port, then finds no firmware answering in time.
FAILING_PREPARE = '''

def _prepare_fails(self):
    self.flush()  # opens the port
    raise BoardTimeout("no telemetry within 3 s")


RealBoard.prepare = _prepare_fails
'''


def fds_on(path: str) -> list[int]:
    """This process's file descriptors open on path."""
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == path:
                out.append(int(name))
        except OSError:
            continue
    return out


def test_a_real_board_whose_setup_fails_is_disarmed_and_its_port_closed(pytester):
    master, slave = os.openpty()  # a port with nothing behind it that answers
    path = os.ttyname(slave)
    os.close(slave)  # the master keeps the path
    try:
        pytester.makeconftest(CONFTEST.read_text() + FAILING_PREPARE)
        pytester.makepyfile(test_setup_fails="def test_uses_the_board(board):\n    pass\n")
        result = pytester.runpytest_inprocess("test_setup_fails.py", f"--port={path}", "--board=rp2_pico",
                                             "-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        assert "no telemetry within 3 s" in result.stdout.str()
        assert fds_on(path) == [], "the board's port is still open"
        os.set_blocking(master, False)
        sent = os.read(master, 65536)
        assert sent.endswith(protocol.encode_command("DISARM")), sent  # the board is not left ARMED
    finally:
        os.close(master)
