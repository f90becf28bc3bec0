"""Per-channel checks: limits, warnings, rate, dose, stale, frozen, implausible jumps."""
from fixtures import FORAMEN, TIP, Feed, example, settings
from fwtest import req
from tgfw.codes import (
    C_DOSE,
    C_FAULT,
    C_HIGH,
    C_LOW,
    C_RATE,
    F_ABSENT,
    F_IMPLAUSIBLE,
    F_NONE,
    F_OPEN,
    F_STALE,
    F_STUCK,
)

OK = F_NONE


def steady(f, tip, foramen, n=25):
    for _ in range(n):
        ch = f.cycle((OK, tip), (OK, foramen))
    return ch


@req("SR-CHK-01")
def test_high_limit_reached_at_equality():
    f = Feed()
    ch = steady(f, 60.0, 44.75)
    assert ch.active[FORAMEN] == 0
    assert ch.warn[FORAMEN] & C_HIGH  # within 2 C of 45
    ch = f.cycle((OK, 60.0), (OK, 45.0))
    assert ch.active[FORAMEN] & C_HIGH


@req("SR-CHK-01")
def test_low_limit_reached_at_equality():
    f = Feed()
    ch = steady(f, 60.0, 10.25)
    assert not ch.active[FORAMEN] & C_LOW
    assert ch.warn[FORAMEN] & C_LOW
    ch = f.cycle((OK, 60.0), (OK, 10.0))
    assert ch.active[FORAMEN] & C_LOW


@req("SR-CHK-02")
def test_rate_of_rise_trips_a_steady_climb():
    f = Feed()
    steady(f, 60.0, 37.0)
    t = 37.0
    seen = 0
    for k in range(30):
        t += 0.25  # 2.5 C/s at 10 Hz, above the 2 C/s limit
        ch = f.cycle((OK, 60.0), (OK, t))
        if ch.active[FORAMEN] & C_RATE:
            seen = k + 1
            break
    assert seen, "a 2.5 C/s rise never tripped the 2 C/s limit"
    assert seen <= 20  # within the 2 s window


@req("SR-CHK-02")
def test_rate_below_limit_and_noise_do_not_trip():
    f = Feed()
    t = 37.0
    for k in range(200):
        t += 0.15  # 1.5 C/s: under the limit
        noise = 0.25 if k % 2 else -0.25  # a full LSB of flicker every sample
        ch = f.cycle((OK, 60.0), (OK, t + noise))
        if t > 44:
            break
        assert not ch.active[FORAMEN] & C_RATE, k
    f = Feed()
    for k in range(200):
        noise = 0.5 if k % 3 == 0 else 0.0  # spiky noise around a flat line
        ch = f.cycle((OK, 60.0), (OK, 37.0 + noise))
        assert not ch.active[FORAMEN] & C_RATE


@req("SR-CHK-03")
def test_dose_accumulates_and_trips_at_the_limit():
    f = Feed()
    # 45 C is 4 CEM43 per minute; at 44.5 C it is 2.83 per minute: 40 CEM43 in ~14 min.
    doc = example()
    doc["channels"][1]["high_c"] = 46.0
    f = Feed(settings(doc))
    minutes = 0.0
    tripped_at = None
    for k in range(10 * 60 * 20):
        ch = f.cycle((OK, 60.0), (OK, 44.5))
        if ch.active[FORAMEN] & C_DOSE:
            tripped_at = k
            break
    assert tripped_at is not None
    minutes = tripped_at / 600
    expected = 40 / (0.5 ** (43 - 44.5))
    assert abs(minutes - expected) < 0.02, (minutes, expected)
    dose = ch.dose.hi[FORAMEN] / 1024
    assert 40.0 <= dose < 40.01


@req("SR-CHK-04")
def test_fault_is_never_a_temperature():
    f = Feed()
    steady(f, 60.0, 37.0)
    ch = f.cycle((F_OPEN, None), (OK, 37.0))
    assert ch.fault[TIP] == F_OPEN
    assert ch.usable[TIP] == 0
    assert ch.active[TIP] == C_FAULT


@req("SR-CHK-05")
def test_stale_after_stale_ms_without_fresh_data():
    f = Feed()
    steady(f, 60.0, 37.0)
    # the chip stops answering: tolerated until the reading is older than 300 ms
    ch = f.cycle((F_ABSENT, None), (OK, 37.0))
    assert ch.fault[TIP] == F_NONE
    ch = f.cycle((F_ABSENT, None), (OK, 37.0))
    ch = f.cycle((F_ABSENT, None), (OK, 37.0))
    assert ch.fault[TIP] == F_NONE  # 300 ms: equal, not older
    ch = f.cycle((F_ABSENT, None), (OK, 37.0))
    assert ch.fault[TIP] == F_ABSENT
    assert ch.active[TIP] == C_FAULT


@req("SR-CHK-05")
def test_no_reading_since_boot_is_stale():
    f = Feed()
    ch = f.ch
    assert ch.fault[TIP] == F_STALE and ch.usable[TIP] == 0


@req("SR-CHK-06")
def test_frozen_frames_are_a_stuck_chip():
    f = Feed()
    steady(f, 60.0, 37.0)
    ch = f.cycle((OK, 60.0), (OK, 37.0), repeats=49)
    assert ch.fault[FORAMEN] == F_NONE
    ch = f.cycle((OK, 60.0), (OK, 37.0), repeats=50)  # 5 s at 10 Hz
    assert ch.fault[FORAMEN] == F_STUCK


@req("SR-CHK-07")
def test_implausible_jump_is_a_fault():
    f = Feed()
    steady(f, 60.0, 37.0)
    ch = f.cycle((OK, 60.0), (OK, 47.5))  # 10.5 C in 100 ms
    assert ch.fault[FORAMEN] == F_IMPLAUSIBLE
    assert ch.active[FORAMEN] == C_FAULT
    assert ch.temp[FORAMEN] == 37 * 1024  # the jump was not taken as a reading


@req("SR-CHK-01")
def test_recovered_channel_is_healthy_again():
    f = Feed()
    steady(f, 60.0, 37.0)
    f.cycle((F_OPEN, None), (OK, 37.0))
    ch = f.cycle((OK, 60.0), (OK, 37.0))
    assert ch.fault[TIP] == F_NONE and ch.active[TIP] == 0
