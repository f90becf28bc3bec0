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

import json  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import time  # noqa: E402 - the virtual clock

import machine  # noqa: E402 - the emulated one, from hil/device
import plant  # noqa: E402
import scenario  # noqa: E402
import virtual as board  # noqa: E402
from chipmodels.max6675 import MAX6675  # noqa: E402
from chipmodels.max31855 import MAX31855  # noqa: E402
from chipmodels.max31856 import MAX31856  # noqa: E402
from tgfw.app import Monitor  # noqa: E402
from tgfw.channels import elapsed_ms  # noqa: E402

MODELS = {"max31855": MAX31855, "max31856": MAX31856, "max6675": MAX6675}
BODY_C = 37.0  # a channel the scenario does not name stays at body temperature
ROOM_C = 25.0  # the chips' own (cold-junction) temperature


def attach_models(config_path):
    """A chip model on each configured chip select; {name: model}."""
    try:
        with open(config_path) as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return {}
    models = {}
    for ch in cfg.get("channels", []):
        try:
            model = MODELS[ch["chip"]](ch.get("tc_type", "K"))
        except (KeyError, ValueError, TypeError):
            continue  # the firmware reports the bad configuration itself
        if hasattr(model, "dither"):
            model.dither = True  # real chips flicker by an LSB
        model.set_temperature(BODY_C, ROOM_C)
        machine.attach_chip(ch["cs"], model)
        models[ch["name"]] = model
    return models


PACE_WAIT_MS = 200  # longest real wait for a late heartbeat in one cycle


def pace(monitor, poller, speed):
    """Faster than real time, the host's heartbeats may fall behind the board's clock
    through no fault of the host; wait (in real time, with the virtual clock stopped) for
    its next line once the last one is older than half the host timeout. A host silent
    for longer than the wait still times out. At real-time speed nothing waits."""
    s = monitor.settings
    if speed == 1 or s is None or not s.host_timeout_ms or monitor.guard.state != 2:
        return
    if elapsed_ms(monitor.sampler.ms, monitor.last_hb) < s.host_timeout_ms // 2:
        return
    poller.poll(PACE_WAIT_MS)


def main():
    os.chdir(board_dir)
    # A .json file is a closed-loop plant (hil/device/plant.py), anything else a scenario CSV.
    closed_loop = scenario_path.endswith(".json")
    sc = plant.load(scenario_path) if closed_loop else scenario.load(scenario_path)
    tracks = sc.params if closed_loop else sc.tracks
    models = attach_models("config.json")
    time.set_speed(int(speed))
    monitor = Monitor(board, "config.json", "trip.json")
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    end_us = int(sc.end_s * 1000000) + monitor.sampler.period
    faults = {}
    last_us = time.now_us()
    while time.now_us() < end_us:
        t = time.now_us() / 1000000
        if closed_loop:  # the tissue heats while the interlock permits RF
            sc.step((time.now_us() - last_us) / 1000000, machine.pin_level(board.INTERLOCK) == 1)
            last_us = time.now_us()
        for name, model in models.items():
            if name not in tracks:
                continue
            celsius, word = sc.at(name, t)
            if word != faults.get(name):
                model.set_fault(word)
                faults[name] = word
            if celsius is not None:
                model.set_temperature(celsius)
        pace(monitor, poller, int(speed))
        monitor.cycle()
    monitor.guard.open_interlock()


main()
