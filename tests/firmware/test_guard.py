"""The guard's state machine: interlock, latching, arm and reset refusals, trip record."""
from fixtures import TIP, Feed, Pin
from fwtest import req
from tgfw import codes
from tgfw.codes import ARMED, BOOT, C_FAULT, DISARMED, F_NONE, F_OPEN, TRIPPED
from tgfw.guard import Guard

OK = F_NONE
NAMES = ["tip", "foramen"]


def armed_guard():
    pin = Pin()
    g = Guard(2, pin)
    f = Feed()
    g.ready()
    for _ in range(25):
        g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    assert g.arm(f.ch, True, NAMES) is None
    g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    return g, f, pin


@req("SR-GRD-01")
def test_interlock_low_from_construction_and_in_boot():
    pin = Pin(level=1)
    g = Guard(2, pin)
    assert pin.level == 0 and pin.history == [0]
    assert g.state == BOOT


@req("SR-GRD-02")
def test_interlock_high_only_while_armed_after_a_healthy_cycle():
    pin = Pin()
    g = Guard(2, pin)
    f = Feed()
    g.ready()
    g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    assert pin.level == 0  # disarmed
    assert g.arm(f.ch, True, NAMES) is None
    assert pin.level == 0  # arming alone does not permit RF
    g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    assert g.state == ARMED and pin.level == 1


@req("SR-GRD-03")
def test_trip_opens_interlock_in_the_same_cycle_and_latches():
    g, f, pin = armed_guard()
    g.evaluate(f.cycle((OK, 60.0), (OK, 45.0)), 0)
    assert g.state == TRIPPED and pin.level == 0
    assert g.first_words(NAMES) == "foramen:high"
    # the condition clears, the trip stays
    for _ in range(5):
        g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    assert g.state == TRIPPED and pin.level == 0
    assert g.causes(NAMES) == ["foramen:high"]


@req("SR-GRD-03")
def test_later_causes_are_latched_behind_the_first():
    g, f, pin = armed_guard()
    g.evaluate(f.cycle((OK, 60.0), (OK, 45.0)), 0)
    g.evaluate(f.cycle((F_OPEN, None), (OK, 45.0)), codes.G_OVERRUN)
    assert g.causes(NAMES) == ["foramen:high", "overrun", "tip:open"]
    assert g.trip[TIP] == C_FAULT and g.trip_fault[TIP] == F_OPEN


@req("SR-GRD-04")
def test_reset_needs_a_reason_and_cleared_conditions():
    g, f, pin = armed_guard()
    g.evaluate(f.cycle((OK, 60.0), (OK, 45.5)), 0)
    assert g.reset(f.ch, NAMES, "  ") == ["a reason is required"]
    why = g.reset(f.ch, NAMES, "cooled")
    assert why == ["still active: foramen:high"]
    assert g.state == TRIPPED
    g.evaluate(f.cycle((OK, 60.0), (OK, 44.75)), 0)
    assert g.reset(f.ch, NAMES, "cooled with CO2") is None
    assert g.state == DISARMED and pin.level == 0
    assert g.causes(NAMES) == []


@req("SR-GRD-05")
def test_arm_refused_with_reasons():
    pin = Pin()
    g = Guard(2, pin)
    f = Feed()
    g.ready()
    g.evaluate(f.cycle((F_OPEN, None), (OK, 46.0)), 0)
    why = g.arm(f.ch, True, NAMES)
    assert why == ["tip:open", "foramen:high"]
    assert g.state == DISARMED and pin.level == 0
    assert "no valid configuration" in g.arm(None, False, NAMES)


@req("SR-GRD-05")
def test_arm_refused_while_tripped():
    g, f, pin = armed_guard()
    g.fail(codes.G_OPERATOR)
    f.cycle((OK, 60.0), (OK, 37.0))
    assert g.arm(f.ch, True, NAMES) == ["tripped: reset first"]


@req("SR-GRD-06")
def test_global_causes_trip_and_readback_is_first():
    g, f, pin = armed_guard()
    g.evaluate(f.cycle((OK, 60.0), (OK, 45.0)), codes.G_READBACK | codes.G_HOST)
    assert g.first_words(NAMES) == "readback"
    assert "host_timeout" in g.causes(NAMES)


@req("SR-GRD-07")
def test_trip_record_restores_a_tripped_guard():
    g, f, pin = armed_guard()
    g.evaluate(f.cycle((OK, 60.0), (OK, 45.0)), 0)
    record = g.record(NAMES)
    pin2 = Pin(level=1)
    g2 = Guard(2, pin2)
    g2.restore(record, NAMES)
    assert g2.state == TRIPPED and pin2.level == 0
    assert g2.causes(NAMES) == ["foramen:high"]
    assert not g2.ready()  # boot does not leave TRIPPED
    assert g2.state == TRIPPED


@req("SR-GRD-07")
def test_empty_trip_record_still_means_tripped():
    g = Guard(2, Pin())
    g.restore({}, NAMES)
    assert g.state == TRIPPED
    assert g.causes(NAMES)


@req("SR-GRD-08")
def test_disarm_opens_the_interlock():
    g, f, pin = armed_guard()
    assert g.disarm() is None
    assert g.state == DISARMED and pin.level == 0
    g.evaluate(f.cycle((OK, 60.0), (OK, 37.0)), 0)
    assert pin.level == 0


@req("SR-GRD-09")
def test_state_table_allows_only_the_designed_transitions():
    from tgfw.guard import NEXT
    allowed = set()
    for state in range(4):
        for event in range(5):
            if NEXT[state * 5 + event] != 255:
                allowed.add((state, event, NEXT[state * 5 + event]))
    assert allowed == {
        (BOOT, 0, DISARMED), (BOOT, 3, TRIPPED),
        (DISARMED, 1, ARMED), (DISARMED, 2, DISARMED), (DISARMED, 3, TRIPPED),
        (ARMED, 1, ARMED), (ARMED, 2, DISARMED), (ARMED, 3, TRIPPED),
        (TRIPPED, 3, TRIPPED), (TRIPPED, 4, DISARMED),
    }
