"""The virtual board's main program in scenario mode: the real firmware monitor on the
emulated machine, with chip models that follow a thermal scenario.

    micropython vboard.py REPO_ROOT BOARD_DIR SCENARIO SPEED

BOARD_DIR holds the board's files (config.json, trip.json) and is the working folder.
SPEED is a real-time multiple, or 0 for as fast as the firmware runs. The scenario's
t_s is device time since power-on; the run ends after the scenario's last row. Frames go
to stdout and commands come from stdin, as over a board's USB serial port.
"""
import sys

root, board_dir, scenario_path, speed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sys.path[:] = [root + "/hil/device", root + "/firmware", root + "/boards"]

import os  # noqa: E402
import select  # noqa: E402
import time  # noqa: E402 - the virtual clock

import machine  # noqa: E402 - the emulated one, from hil/device
import plant  # noqa: E402
import scenario  # noqa: E402
import vchips  # noqa: E402
import virtual as board  # noqa: E402
from tgfw.app import Monitor  # noqa: E402
from tgfw.channels import elapsed_ms  # noqa: E402

PACE_WAIT_MS = 200  # longest real wait for a late heartbeat in one cycle


def pace(monitor, poller, speed):
    """Faster than real time, the host falls behind the board's clock through no fault of
    its own: its ARM would come late, its heartbeats would time out. So once the host's
    last line is a device second old (or half the host timeout, if shorter), wait for its
    next one, in real time with the virtual clock stopped. A host silent for longer than
    the wait still times out. At real-time speed nothing waits."""
    s = monitor.settings
    if speed == 1 or s is None:
        return
    limit = 1000 if not s.host_timeout_ms else min(1000, s.host_timeout_ms // 2)
    if elapsed_ms(monitor.sampler.ms, monitor.last_hb) < limit:
        return
    poller.poll(PACE_WAIT_MS)


def main():
    os.chdir(board_dir)
    # A .json file is a closed-loop plant (hil/device/plant.py), anything else a scenario CSV.
    closed_loop = scenario_path.endswith(".json")
    sc = plant.load(scenario_path) if closed_loop else scenario.load(scenario_path)
    follower = vchips.Follower(vchips.attach("config.json"), sc)
    time.set_speed(int(speed))
    monitor = Monitor(board, "config.json", "trip.json")
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    end_us = int(sc.end_s * 1000000) + monitor.sampler.period
    last = [time.now_us()]

    def world(now_us):
        """Runs whenever the virtual clock moves: the chips read what the world is now."""
        if closed_loop:  # the tissue heats while the interlock permits RF
            sc.step((now_us - last[0]) / 1000000, machine.pin_level(board.INTERLOCK) == 1)
            last[0] = now_us
        follower.follow(now_us / 1000000)

    world(time.now_us())
    time.add_hook(world)
    while time.now_us() < end_us:
        pace(monitor, poller, int(speed))
        monitor.cycle()
    monitor.guard.open_interlock()


main()
