"""The virtual board's control channel (thermoguard.vcontrol): the world around the board,
out of the firmware's sight. The firmware answers what the chips show, the power it gets
and the time that passes as it would on a bench. Tests on `board` are marked
needs_control (skipped with --port); tests on `virtual_board` always start their own."""

from __future__ import annotations

import json
import time

import pytest
from tgfw import codes
from thermoguard import paths, protocol
from thermoguard.vcontrol import VIRTUAL_INTERLOCK, VIRTUAL_READBACK, ControlError

CONFIG = json.loads((paths.DATA / "demo_config.json").read_text())  # tip: MAX31856, foramen: MAX31855
CYCLE_S = 1 / CONFIG["sample_hz"]
CONVERSION_S = 0.100  # both chips convert at least every 100 ms
STALE_S = CONFIG["stale_ms"] / 1000
NAMES = [ch["name"] for ch in CONFIG["channels"]]


def fit(t: protocol.Telemetry) -> bool:
    return t.config_valid and all(c.temp_c is not None and not c.fault for c in t.channels)


def arm(board) -> protocol.Telemetry:
    board.telemetry(lambda t: t.state == codes.DISARMED and fit(t), what="healthy DISARMED telemetry")
    since = board.flush()  # room in the port for the reply: a fast board outruns its reader
    board.command("ARM")
    assert board.reply("ARM", since=since).ok
    return board.telemetry(lambda t: t.state == codes.ARMED and t.interlock_on, since=since, what="ARMED")


def no_host_timeout(tmp_path) -> str:
    """The demo configuration without the host timeout: at max speed a host's heartbeat
    comes thousands of device seconds apart."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(CONFIG, host_timeout_s=0)))
    return str(path)


@pytest.mark.req("SR-HIL-16", "SR-GRD-03")
@pytest.mark.needs_control
@pytest.mark.board(speed=4)
def test_protective_channel_set_above_its_limit_trips_within_a_cycle(board):
    ctl = board.control
    arm(board)
    assert ctl.interlock() == 1 and ctl.pin(VIRTUAL_READBACK) == 1
    since = board.mark()
    at_us = ctl.set_channel("foramen", temp_c=46.0)  # above 45.0, and no implausible jump (10 C)
    trip = board.event("TRIP", since=since)
    assert "foramen:high" in trip.text.split(",")
    # The chip converts the new temperature within its conversion time; the next cycle reads it.
    assert at_us / 1e6 <= trip.t_dev_s <= at_us / 1e6 + CONVERSION_S + CYCLE_S + 1e-6
    t = board.telemetry(lambda t: t.state == codes.TRIPPED, since=since)
    assert not t.interlock_on and not t.readback_high
    assert ctl.interlock() == 0 and ctl.pin(VIRTUAL_READBACK) == 0
    ctl.clear("foramen")  # back to body temperature: the trip holds until an operator resets it
    t = board.telemetry(lambda t: t.channels[1].temp_c is not None and t.channels[1].temp_c < 38, since=board.mark())
    assert t.state == codes.TRIPPED and ctl.interlock() == 0


@pytest.mark.req("SR-HIL-16", "SR-CHK-06")
@pytest.mark.needs_control
@pytest.mark.board(speed=4)
def test_absent_chip_trips_within_stale_ms_and_a_cycle(board):
    ctl = board.control
    arm(board)
    since = board.mark()
    at_us = ctl.set_channel("tip", fault="absent")
    trip = board.event("TRIP", since=since)
    assert trip.text.split(",")[0].startswith("tip:")
    assert at_us / 1e6 < trip.t_dev_s <= at_us / 1e6 + STALE_S + CYCLE_S + 1e-6
    t = board.telemetry(lambda t: t.state == codes.TRIPPED, since=since)
    assert t.channels[0].temp_c is None and t.channels[0].fault
    assert not t.interlock_on and ctl.interlock() == 0


@pytest.mark.req("SR-HIL-16")
@pytest.mark.needs_control
@pytest.mark.board(speed="max")
def test_every_fault_word_reaches_the_firmware_and_clears(board):
    ctl = board.control
    board.telemetry(fit, what="healthy telemetry")
    for word in ("open", "short_gnd", "short_vcc", "zeros", "ones", "stuck", "absent"):
        ctl.set_channel("tip", fault=word)  # tip is a MAX31856: it reports every word as itself
        t = board.telemetry(lambda t, w=word: t.channels[0].fault_word == w, since=board.mark(), what=word)
        assert t.channels[0].temp_c is None
        ctl.clear("tip")
        board.telemetry(lambda t: t.channels[0].fault_word == "" and t.channels[0].temp_c is not None,
                        since=board.mark(), what=f"tip healthy after {word}")


@pytest.mark.req("SR-HIL-16", "SR-HIL-05")
def test_overrides_take_precedence_over_the_scenario_until_cleared(virtual_board, scenario_file):
    board = virtual_board(scenario=scenario_file("t_s,foramen", "0,40.0", "100000,40.0"), speed="max")
    ctl = board.control

    def foramen(lo, hi):
        return board.telemetry(lambda t: t.channels[1].temp_c is not None and lo <= t.channels[1].temp_c <= hi,
                               since=board.mark(), what=f"foramen between {lo} and {hi} C")

    foramen(39.7, 40.3)
    ctl.set_channel("foramen", temp_c=42.0)
    foramen(41.7, 42.3)
    ctl.set_channel("foramen", fault="open")  # the temperature underneath is the scenario's again
    assert board.telemetry(lambda t: t.channels[1].fault_word == "open", since=board.mark()).channels[1].temp_c is None
    ctl.clear()
    foramen(39.7, 40.3)
    assert ctl.status()["overrides"] == {}


@pytest.mark.req("SR-HIL-16")
@pytest.mark.needs_control
@pytest.mark.board(speed=4)
def test_bad_control_requests_are_refused_in_one_sentence(board):
    """A refused request changes nothing: not the bridge's overrides, not the chips, not the
    board. Each one below has a part that would be valid on its own (a temperature of 40 C
    beside a bad fault word or channel), so a request half applied before it was refused
    would show up on the chips."""
    ctl = board.control
    board.telemetry(fit, what="healthy telemetry")
    pins = ctl.pins()
    with pytest.raises(ControlError, match="no channel 'spine'.*tip, foramen"):
        ctl.set_channel("spine", temp_c=40.0)
    with pytest.raises(ControlError, match="fault 'melted' is none of open"):
        ctl.set_channel("tip", temp_c=40.0, fault="melted")
    with pytest.raises(ControlError, match="temp_c is a number"):
        ctl.request("set", channel="foramen", temp_c="hot", fault="open")
    with pytest.raises(ControlError, match="no channel 'spine'"):
        ctl.clear("spine")
    with pytest.raises(ControlError, match="unknown op"):
        ctl.request("explode")
    assert ctl.status()["overrides"] == {}
    # By now the chips have converted anything that reached them, and the next cycle read it:
    # every channel still reads the 37.0 C of a board without a scenario, without a fault.
    after_s = ctl.clock()["clock_us"] / 1e6 + CONVERSION_S + CYCLE_S
    since = board.mark()
    board.telemetry(lambda t: t.t_dev_s > after_s + CYCLE_S, since=since, what="telemetry after the requests")
    later = [t for t in board.items[since[1]:] if isinstance(t, protocol.Telemetry) and t.t_dev_s > after_s]
    assert later
    for t in later:
        assert t.state == codes.DISARMED and fit(t), t
        assert all(abs(c.temp_c - 37.0) < 0.3 for c in t.channels), t
    assert ctl.pins() == pins  # the interlock and its readback as they were
    clock = ctl.clock()
    assert clock["resets"] == 0 and clock["reset_cause"] == 1  # the board still in its first run since power-on


@pytest.mark.req("SR-HIL-17", "SR-GRD-07")
@pytest.mark.needs_control
@pytest.mark.board(speed=4)
def test_power_cut_and_back_boots_tripped_with_the_interlock_open(board):
    ctl = board.control
    arm(board)
    since = board.mark()
    ctl.set_channel("foramen", temp_c=46.0)
    board.event("TRIP", since=since)
    ctl.clear("foramen")
    before = board.telemetry(lambda t: t.state == codes.TRIPPED, since=since)
    ctl.power(False)
    assert ctl.clock()["power"] is False and ctl.interlock() == 0 and ctl.pins() == {}
    time.sleep(0.2)  # what the board sent before the cut may still be on its way
    dark = board.flush()
    board.send(protocol.encode_command("ARM"))  # input to a dark board is lost
    time.sleep(0.5)  # two virtual seconds at 4x: a powered board would send 20 frames
    board.pump()
    assert board.mark() == dark, bytes(board.raw[dark[0]:])
    since = board.mark()
    ctl.power(True)
    boot = board.event("BOOT", since=since)
    assert boot.state == codes.TRIPPED  # restored from flash
    t = board.telemetry(since=since)
    assert t.state == codes.TRIPPED and not t.interlock_on and not t.readback_high
    assert t.first_cause_text(NAMES) == before.first_cause_text(NAMES)
    assert t.t_dev_s < before.t_dev_s  # the device clock started again at power-on
    clock = ctl.clock()
    assert clock["reset_cause"] == 1 and ctl.interlock() == 0  # machine.PWRON_RESET


@pytest.mark.req("SR-HIL-18", "SR-HIL-09", "SR-GRD-06")
@pytest.mark.parametrize("speed", [4, "max"])
def test_a_firmware_hang_ends_in_a_watchdog_reset(virtual_board, tmp_path, speed):
    board = virtual_board(speed=speed, config=no_host_timeout(tmp_path))
    ctl = board.control
    arm(board)
    since = board.mark()
    ctl.hang()  # the next SPI transfer spins without sleeping: the cycle never completes
    if speed != "max":  # at full speed a reader that falls behind loses frames, one BOOT event too
        boot = board.event("BOOT", since=since, timeout=20)
        assert boot.state == codes.TRIPPED
    t = board.telemetry(lambda t: t.state != codes.ARMED, since=since, timeout=20)  # the hung firmware sends nothing
    assert t.first_cause_text(NAMES) == "watchdog"
    assert t.state == codes.TRIPPED and not t.interlock_on
    clock = ctl.clock()
    assert clock["reset_cause"] == 3  # machine.WDT_RESET
    assert ctl.interlock() == 0 and ctl.pin(VIRTUAL_INTERLOCK) == 0


@pytest.mark.req("SR-HIL-16", "SR-HIL-17")
@pytest.mark.needs_control
@pytest.mark.board(speed="max")
def test_overrides_hold_across_a_power_cycle(board):
    """The chips are outside the board: what the bench set holds while the board restarts."""
    ctl = board.control
    ctl.set_channel("tip", fault="open")
    board.telemetry(lambda t: t.channels[0].fault_word == "open", what="tip open")
    ctl.power(False)
    time.sleep(0.2)  # what the board sent before the cut may still be on its way
    since = board.flush()  # while it is dark: room in the port for the BOOT event
    ctl.power(True)
    board.event("BOOT", since=since)
    t = board.telemetry(lambda t: t.channels[0].fault or t.channels[0].temp_c is not None, since=since)
    assert t.channels[0].fault_word == "open" and t.channels[0].temp_c is None
    assert ctl.clock()["resets"] == 1


@pytest.mark.req("SR-HIL-20")
@pytest.mark.needs_control
@pytest.mark.board(speed=4)
@pytest.mark.parametrize("stuck, state", [(0, "ARMED"), (1, "DISARMED")])
def test_an_interlock_readback_mismatch_trips_in_any_state(board, stuck, state):
    # 0: the relay contact stuck open while RF is commanded; 1: welded shut while it is not.
    ctl = board.control
    if state == "ARMED":
        arm(board)
    else:
        board.telemetry(lambda t: t.state == codes.DISARMED and fit(t), what="healthy DISARMED telemetry")
    since = board.mark()
    at_us = ctl.readback(stuck)
    trip = board.event("TRIP", since=since)
    assert trip.text == "readback"
    assert at_us / 1e6 <= trip.t_dev_s <= at_us / 1e6 + 2 * CYCLE_S + 1e-6
    t = board.telemetry(lambda t: t.state == codes.TRIPPED, since=since)
    assert not t.interlock_on and t.first_cause_text() == "readback" and ctl.interlock() == 0
    assert t.readback_high == bool(stuck)
    ctl.readback(None)  # the contact follows again: the trip holds until an operator resets it
    t = board.telemetry(lambda t: not t.readback_high, since=board.mark())
    assert t.state == codes.TRIPPED
    since = board.mark()
    board.command("RESET", "relay replaced")
    assert board.reply("RESET", since=since).ok
    assert board.telemetry(lambda t: t.state == codes.DISARMED, since=since).first_cause_text() == ""
    t = arm(board)  # the contact follows the interlock again: closed while RF is permitted
    assert t.readback_high and ctl.pin(VIRTUAL_READBACK) == 1


@pytest.mark.needs_control
@pytest.mark.board(speed=4)
@pytest.mark.parametrize("stuck", [1.0, True, 2, "1"])
def test_a_readback_request_that_is_not_0_1_or_null_is_refused(board, stuck):
    with pytest.raises(ControlError, match="readback takes stuck: 0"):
        board.control.readback(stuck)
    board.telemetry(lambda t: t.state == codes.DISARMED and fit(t), since=board.mark(), what="a board still running")
