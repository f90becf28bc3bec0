"""The steady-state safety cycle allocates nothing: 10,000 cycles of an armed 8-channel
board, heartbeats arriving, under micropython.heap_lock(); and no heap traffic at all
(micropython.mem_total() unchanged: a function frame above 11 words would otherwise be
taken from the heap and given back in every call, which heap_lock cannot see)."""
import micropython
from fixtures import Rig
from fwtest import req
from tgfw.codes import ARMED
from tgfw.link import encode_command

CHIPS = ("max31855", "max31855", "max31855", "max31856", "max31856", "max31856", "max6675", "max6675")


def eight_channels():
    chans = []
    for i, chip in enumerate(CHIPS):
        role = "protective" if i % 2 else "ablation"
        ch = {"name": "ch%d" % i, "chip": chip, "cs": 30 + i, "role": role, "high_c": 45.0 if i % 2 else 95.0,
              "rate_c_per_s": 2.0}
        if role == "protective":
            ch["low_c"] = 10.0
            ch["dose_cem43"] = 40.0
        chans.append(ch)
    return {"sample_hz": 4, "stale_ms": 600, "host_timeout_s": 5, "channels": chans}


def armed_eight():
    rig = Rig(eight_channels())
    rig.cycles(20)
    assert rig.command("ARM") == "OK ARM", rig.out
    rig.cycles(2)
    assert rig.state() == ARMED
    return rig


def run_cycles(rig, n, hb):
    m = rig.monitor
    host = rig.host
    for k in range(n):
        if k % 4 == 0:
            host.write(hb)  # one heartbeat a second
        m.cycle()
        if k % 8 == 0:
            host.readinto(rig.sink)  # the host reads the telemetry


@req("SR-TIM-02", "SR-LNK-06")
def test_ten_thousand_cycles_of_eight_channels_under_heap_lock():
    rig = armed_eight()
    rig.sink = bytearray(4096)
    hb = encode_command("HB")
    run_cycles(rig, 100, hb)  # warm up outside the lock
    micropython.heap_lock()
    try:
        run_cycles(rig, 10000, hb)
    finally:
        micropython.heap_unlock()
    m = rig.monitor
    assert m.exception is None
    assert rig.state() == ARMED and rig.interlock() == 1
    assert m.guard.causes(m.names) == []
    rig.close()


@req("SR-TIM-02")
def test_no_heap_traffic_in_the_steady_state_cycle():
    rig = armed_eight()
    rig.sink = bytearray(4096)
    hb = encode_command("HB")
    run_cycles(rig, 100, hb)
    before = micropython.mem_total()
    run_cycles(rig, 2000, hb)
    used = micropython.mem_total() - before
    assert used == 0, "%d bytes taken from the heap in 2000 cycles" % used
    assert rig.state() == ARMED
    rig.close()
