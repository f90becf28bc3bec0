"""Closed loop on the virtual board: the plant heats only while the firmware's interlock
permits RF, so a trip stops the heating and the protective channel cools."""

from __future__ import annotations

import json

import pytest
from tgfw import codes
from thermoguard import paths, protocol
from thermoguard.simrun import SessionRunner
from thermoguard.vboard import ScenarioBoard


def run(plant_doc, tmp_path, arm=True):
    plant = tmp_path / "plant.json"
    plant.write_text(json.dumps(plant_doc))
    cfg = json.loads((paths.DATA / "demo_config.json").read_text())
    frames: list[protocol.Telemetry] = []
    board = ScenarioBoard(cfg, plant, None)
    try:
        SessionRunner(board, None, arm=arm, on_item=lambda i: frames.append(i)
                      if isinstance(i, protocol.Telemetry) else None).run()
    finally:
        board.close()
    return frames


@pytest.mark.req("SR-HIL-13", "SR-GRD-03")
def test_a_trip_stops_the_heating_and_the_protective_channel_cools(tmp_path):
    frames = run(json.loads((paths.DATA / "demo_plant.json").read_text()), tmp_path)
    trip = next(i for i, f in enumerate(frames) if f.state == codes.TRIPPED)
    before, after = frames[:trip], frames[trip:]
    foramen = [f.channels[1].temp_c for f in frames]
    assert before[-1].interlock_on and not any(f.interlock_on for f in after)
    assert foramen[trip] >= 45.0 > foramen[trip - 20]  # it was warming towards the limit
    # RF off: the tissue relaxes towards 37 C (first order, 90 s for the foramen).
    later = [f for f in after if f.t_dev_s >= after[0].t_dev_s + 60]
    assert later and later[0].channels[1].temp_c < foramen[trip] - 2.5
    assert later[0].channels[0].temp_c < after[0].channels[0].temp_c - 20  # the tip cools faster
    assert all(b.channels[1].temp_c <= a.channels[1].temp_c + 0.3 for a, b in zip(after, after[10:], strict=False))


@pytest.mark.req("SR-HIL-13")
def test_without_arming_nothing_heats(tmp_path):
    frames = run(json.loads((paths.DATA / "demo_plant.json").read_text()), tmp_path, arm=False)
    temps = [f.channels[0].temp_c for f in frames if f.channels[0].temp_c is not None]
    assert max(temps) < 37.6  # the interlock never permitted RF


@pytest.mark.req("SR-HIL-13")
def test_the_plant_drives_the_board_served_as_a_port(virtual_board, tmp_path):
    """The same board in both modes: `thermoguard virtual --scenario plant.json`."""
    cfg = json.loads((paths.DATA / "demo_config.json").read_text())
    cfg["host_timeout_s"] = 0  # at 100x a test's heartbeats would come device seconds apart
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    # 100 times real time, not "max": as fast as it runs, the board can outpace this client,
    # and a frame the port cannot take is dropped (the firmware's Sender). The trip is read
    # from telemetry, which says it in every frame, not from its one TRIP event.
    board = virtual_board(scenario=paths.DATA / "demo_plant.json", config=tmp_path / "config.json", speed=100)
    board.telemetry(lambda t: t.state == codes.DISARMED and all(not c.fault for c in t.channels))
    cold = board.telemetry(since=board.mark())
    board.command("ARM")
    tripped = board.telemetry(lambda t: t.state == codes.TRIPPED, timeout=30)
    names = [ch["name"] for ch in cfg["channels"]]
    channel, causes = tripped.first_cause_text(names).split(":")
    assert channel == "foramen" and "high" in causes.split(",")  # RF heated the tissue to the limit
    assert cold.channels[1].temp_c < 38.0
    after = board.telemetry(lambda t: t.t_dev_s > tripped.t_dev_s + 60, since=board.mark(), timeout=30)
    assert after.state == codes.TRIPPED and not after.interlock_on
    assert after.channels[1].temp_c < 45.0 - 2.5  # RF off: the foramen cools
