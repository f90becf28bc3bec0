"""The whole monitor on the virtual board: chip models on the emulated SPI bus, commands
and telemetry through a socket, trip record and configuration in files."""
import os

from fixtures import Rig, example, texts
from fwtest import req
from tgfw.codes import ARMED, DISARMED, TRIPPED


def armed_rig(doc=None):
    rig = Rig(doc or example())
    rig.cycles(25)
    assert rig.command("ARM") == "OK ARM"
    rig.cycles(1)
    assert rig.state() == ARMED and rig.interlock() == 1
    return rig


@req("SR-GRD-01", "SR-GRD-02")
def test_boots_disarmed_with_the_interlock_low_and_arms_on_command():
    rig = Rig(example())
    assert rig.interlock() == 0
    rig.cycles(25)
    assert rig.state() == DISARMED and rig.interlock() == 0
    assert texts(rig.out, 2)[0].startswith("fw=")  # the BOOT event
    assert rig.command("ARM") == "OK ARM"
    assert rig.interlock() == 0  # the cycle that took the command had already ended
    rig.cycles(1)
    assert rig.interlock() == 1  # asserted at the end of the next complete cycle
    rig.close()


@req("SR-GRD-03")
def test_a_trip_opens_the_interlock_in_the_cycle_it_is_read_and_is_persisted():
    rig = armed_rig()
    rig.set("foramen", 45.5)
    # the chip converts every 100 ms: the cycle that reads the new value trips
    for _ in range(3):
        rig.cycles(1)
        if rig.state() == TRIPPED:
            break
    assert rig.state() == TRIPPED and rig.interlock() == 0
    assert "foramen:high" in texts(rig.out, 2)[-1]
    assert os.stat(rig.trip_path)[6] > 0
    rig.close()


@req("SR-GRD-07")
def test_a_reboot_comes_back_tripped():
    rig = armed_rig()
    rig.set("foramen", 46.0)
    rig.cycles(3)
    assert rig.state() == TRIPPED
    rig.close()
    again = Rig(example(), folder=rig.folder, models=rig.models)  # same chips, same flash
    assert again.state() == TRIPPED and again.interlock() == 0
    again.cycles(5)
    assert again.state() == TRIPPED and again.interlock() == 0
    assert again.command("ARM").startswith("ERR ARM tripped")
    again.close()


@req("SR-GRD-04")
def test_reset_refused_while_hot_then_accepted_with_a_reason():
    rig = armed_rig()
    rig.set("foramen", 46.0)
    rig.cycles(3)
    assert rig.command("RESET", "cooled").startswith("ERR RESET still active: foramen:high")
    rig.set("foramen", 38.0)
    rig.cycles(3)
    # the 2 s rate window still holds the rise
    assert rig.command("RESET", "cooled") == "ERR RESET still active: foramen:rate"
    rig.cycles(20)
    assert rig.command("RESET", "cooled with saline") == "OK RESET"
    assert rig.state() == DISARMED and rig.interlock() == 0
    assert not _exists(rig.trip_path)
    rig.close()


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


@req("SR-GRD-05")
def test_arm_refused_with_reasons_when_a_chip_is_faulted():
    rig = Rig(example())
    rig.models["tip"].set_fault("open")
    rig.cycles(25)
    assert rig.command("ARM") == "ERR ARM tip:open"
    assert rig.state() == DISARMED and rig.interlock() == 0
    rig.close()


@req("SR-GRD-06")
def test_host_silence_while_armed_trips():
    rig = armed_rig()
    rig.cycles(49)  # 4.9 s after the ARM command: within host_timeout_s
    assert rig.state() == ARMED
    rig.cycles(2)
    assert rig.state() == TRIPPED and rig.interlock() == 0
    assert rig.monitor.guard.first_words(rig.monitor.names) == "host_timeout"
    rig.close()


@req("SR-GRD-06")
def test_heartbeats_keep_an_armed_board_armed():
    rig = armed_rig()
    for _ in range(10):
        rig.cycles(9)
        rig.command("HB")
    assert rig.state() == ARMED
    rig.close()


@req("SR-GRD-06")
def test_readback_mismatch_trips_first():
    rig = armed_rig()
    rig.machine.unwire(15)
    rig.machine.set_input(14, 0)  # the relay drops out although the firmware holds it
    rig.cycles(1)
    assert rig.state() == TRIPPED and rig.interlock() == 0
    assert rig.monitor.guard.first_words(rig.monitor.names) == "readback"
    rig.close()


@req("SR-GRD-06")
def test_sustained_overruns_trip():
    import time

    rig = armed_rig()
    m = rig.monitor
    for _ in range(2):
        time.advance_us(250000)  # the cycle's work took two and a half periods
        rig.cycles(1)
    assert rig.state() == ARMED  # two overruns in a row: counted, tolerated
    assert m.sampler.overruns == 2
    time.advance_us(250000)
    rig.cycles(1)
    assert rig.state() == TRIPPED  # the third in a row (max_overruns) trips
    assert "overrun" in m.guard.causes(m.names)
    rig.close()


@req("SR-GRD-10")
def test_exception_in_the_cycle_trips_and_starves_the_watchdog():
    rig = armed_rig()
    m = rig.monitor
    fed = rig.machine.wdt_state()[1]

    def broken():
        raise RuntimeError("driver bug")

    m.drivers[1].read = broken
    rig.cycles(1)
    assert rig.state() == TRIPPED and rig.interlock() == 0
    assert m.guard.first_words(m.names) == "exception"
    assert rig.machine.wdt_state()[1] == fed  # not fed after the failed cycle
    rig.close()


@req("SR-GRD-10")
def test_watchdog_reset_comes_back_tripped():
    rig = Rig(example())
    rig.machine.set_reset_cause(rig.machine.WDT_RESET)
    again = Rig(example(), folder=rig.folder, models=rig.models)
    assert again.state() == TRIPPED and again.interlock() == 0
    assert again.monitor.guard.first_words(again.monitor.names) == "watchdog"
    rig.machine.set_reset_cause(rig.machine.PWRON_RESET)
    rig.close()
    again.close()


@req("SR-GRD-11")
def test_keyboard_interrupt_leaves_the_interlock_open():
    rig = armed_rig()
    m = rig.monitor
    real = m.drivers[0].read
    calls = [0]

    def read_then_interrupt():  # Ctrl-C arrives in the fourth cycle's chip read
        calls[0] += 1
        if calls[0] > 3:
            raise KeyboardInterrupt
        return real()

    m.drivers[0].read = read_then_interrupt
    try:
        m.run()
    except KeyboardInterrupt:
        pass
    assert calls[0] == 4
    assert rig.interlock() == 0
    rig.close()


@req("SR-CFG-06")
def test_invalid_configuration_stays_disarmed_and_says_why():
    doc = example()
    doc["channels"][1]["high_c"] = 55.0
    rig = Rig(doc)
    rig.cycles(5)
    assert rig.state() == DISARMED and rig.interlock() == 0
    info = rig.command("INFO")
    assert "config=none" in info and "protective ceiling" in info
    assert rig.command("ARM").startswith("ERR ARM no valid configuration")
    rig.close()


@req("SR-CFG-05")
def test_set_tightens_while_armed_and_refuses_to_loosen():
    rig = armed_rig()
    assert rig.command("SET", "foramen.high_c=44.5") == "OK SET foramen.high_c=44.5"
    assert rig.command("SET", "foramen.high_c=46").startswith("ERR SET only tightening by command")
    assert rig.command("SET", "foramen.high_c=60").startswith("ERR SET channels[1] (foramen).high_c")
    assert rig.command("GET", "foramen.high_c") == "OK GET foramen.high_c=44.500"
    rig.set("foramen", 44.5)
    rig.cycles(3)
    assert rig.state() == TRIPPED  # the tighter limit is in force
    rig.close()


@req("SR-LNK-03")
def test_malformed_command_is_refused_and_changes_nothing():
    rig = Rig(example())
    rig.cycles(25)
    rig.host.write(b"ARM*00000000\n")
    rig.cycles(1)
    assert texts(rig.out, 3)[-1].startswith("ERR ? bad checksum")
    assert rig.state() == DISARMED and rig.interlock() == 0
    rig.close()


@req("SR-DRV-09")
def test_a_chip_that_fails_configuration_is_a_faulted_channel_until_it_configures():
    first = Rig(example())
    first.close()
    first.models["tip"].set_fault("ones")  # MISO stuck high while the board boots
    rig = Rig(example(), models=first.models)
    assert rig.monitor.config_fault[0] != 0
    rig.cycles(5)
    assert rig.monitor.channels.fault[0] != 0
    assert rig.command("ARM").startswith("ERR ARM tip:")
    rig.models["tip"].set_fault(None)
    rig.cycles(25)  # the next attempt, at most a second later, configures it
    assert rig.monitor.config_fault[0] == 0
    assert rig.monitor.channels.fault[0] == 0
    assert rig.command("ARM") == "OK ARM"
    rig.close()


@req("SR-CFG-06")
def test_a_configuration_the_board_cannot_wire_stays_disarmed():
    import machine
    import pyboard_v11
    from fixtures import socket_pair

    doc = example()
    doc["channels"][1]["cs"] = 6  # X6 is the pyboard's SPI clock
    rig = Rig(doc)
    rig.close()
    machine.clear_registry()
    from tgfw.app import Monitor

    host, device = socket_pair()
    m = Monitor(pyboard_v11, rig.config_path, rig.trip_path, device, device)
    assert m.cfg is None and "cannot use the configuration" in m.config_error
    assert m.guard.state == DISARMED and machine.pin_level(pyboard_v11.INTERLOCK) == 0
    m.cycle()
    assert m.guard.arm(None, False, []) == ["no valid configuration", "config"]
    host.close()
    device.close()


@req("SR-CFG-06")
def test_a_chip_select_on_a_board_pin_is_refused_by_that_board():
    doc = example()
    doc["channels"][0]["cs"] = 15  # the virtual board's interlock output
    rig = Rig(doc)
    assert rig.monitor.cfg is None
    assert "tip.cs: pin 15 is the board's interlock output" in rig.monitor.config_error
    rig.cycles(3)
    assert rig.state() == DISARMED and rig.interlock() == 0
    rig.close()



@req("SR-CFG-05")
def test_commands_never_loosen_or_restructure_in_any_state():
    rig = Rig(example())
    rig.cycles(5)
    assert rig.state() == DISARMED
    for change in ("foramen.high_c=46", "foramen.role=ablation foramen.high_c=90", "host_timeout_s=0",
                   "frozen_ms=60000", "max_overruns=100", "sample_hz=4", "foramen.cs=20", "foramen.name=nerve"):
        reply = rig.command("SET", change)
        assert reply.startswith("ERR SET"), (change, reply)
    assert rig.command("SET", "host_timeout_s=3 foramen.low_c=12") == "OK SET host_timeout_s=3 foramen.low_c=12"
    assert rig.command("GET", "host_timeout_s") == "OK GET host_timeout_s=3"
    rig.close()


@req("SR-GRD-06")
def test_readback_high_while_disarmed_trips():
    rig = Rig(example())
    rig.cycles(5)
    rig.machine.unwire(15)
    rig.machine.set_input(14, 1)  # a welded relay: RF enabled though the firmware holds it off
    rig.cycles(1)
    assert rig.state() == TRIPPED and rig.interlock() == 0
    assert rig.monitor.guard.first_words(rig.monitor.names) == "readback"
    rig.close()


@req("SR-GRD-07", "SR-CHK-03")
def test_dose_survives_a_reboot_after_a_trip():
    rig = armed_rig()
    rig.set("foramen", 44.5)
    rig.cycles(300)  # 30 s at 44.5 C: about 1.4 CEM43
    dose = rig.monitor.channels.dose.hi[1]
    assert dose > 1024
    assert rig.command("TRIP") == "OK TRIP"
    rig.cycles(1)
    rig.close()
    again = Rig(example(), folder=rig.folder, models=rig.models)
    assert again.state() == TRIPPED
    assert again.monitor.channels.dose.hi[1] >= dose  # no fresh allowance after a reboot
    again.close()


@req("SR-GRD-07")
def test_unreadable_trip_records_still_come_back_tripped():
    for text in ("null", "[]", '{"first": [1]}', '{"channels": {"foramen": 16}}', "{broken"):
        rig = Rig(example())
        rig.close()
        with open(rig.trip_path, "w") as f:
            f.write(text)
        again = Rig(example(), folder=rig.folder, models=rig.models)
        assert again.state() == TRIPPED and again.interlock() == 0, text
        assert again.monitor.guard.causes(again.monitor.names), text
        again.close()


@req("SR-DRV-08", "SR-CHK-06")
def test_a_max31856_whose_converter_stalls_is_stuck_after_frozen_ms():
    rig = armed_rig(example(frozen_ms=2000))
    rig.models["tip"].dither = False  # the data registers stop changing; the link still answers
    for _ in range(40):
        rig.cycles(1)
        rig.command("HB")
    assert rig.monitor.channels.fault[0] == 6  # F_STUCK
    assert rig.state() == TRIPPED and rig.monitor.guard.first_words(rig.monitor.names) == "tip:stuck"
    rig.close()


@req("SR-CHK-06", "SR-CHK-05")
def test_a_frozen_chip_that_also_drops_reads_is_still_caught():
    rig = armed_rig(example(frozen_ms=2000))
    model = rig.models["foramen"]
    model.dither = False
    for k in range(60):
        model.set_fault("absent" if k % 2 else None)  # every other read fails on the bus
        rig.cycles(1)
        if k % 9 == 0:
            rig.command("HB")
        if rig.state() == TRIPPED:
            break
    assert rig.state() == TRIPPED
    assert rig.monitor.guard.first_words(rig.monitor.names) in ("foramen:stuck", "foramen:absent")
    rig.close()


@req("SR-GRD-10")
def test_an_exception_after_the_checks_still_trips_and_starves_the_watchdog():
    rig = armed_rig()
    m = rig.monitor
    fed = rig.machine.wdt_state()[1]

    def broken(event, text):
        raise RuntimeError("event queue bug")

    m._event = broken
    m.guard.tripped_now = True  # as after a new cause: after() queues an event
    rig.cycles(1)
    assert rig.state() == 3 and rig.interlock() == 0
    assert "exception" in m.guard.causes(m.names)
    assert rig.machine.wdt_state()[1] == fed
    rig.close()
