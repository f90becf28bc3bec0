"""The guard: a small table-driven state machine that owns the interlock.

    BOOT -> DISARMED <-> ARMED -> TRIPPED -> (reset) DISARMED

The interlock permits RF only in ARMED, after a complete healthy cycle. A trip drives
it low before anything else happens, latches the first cause and every later one, and
holds until an operator resets it with a reason once no condition is active.
"""

from array import array

import micropython

from tgfw import codes
from tgfw.codes import ARMED, BOOT, C_DOSE, C_FAULT, C_HIGH, C_LOW, C_RATE, DISARMED, GLOBAL, TRIPPED

EV_READY = 0
EV_ARM = 1
EV_DISARM = 2
EV_TRIP = 3
EV_RESET = 4
_NO = 255
# NEXT[state * 5 + event]: the state an event leads to, or _NO where it is not allowed.
NEXT = bytes((
    # ready     arm      disarm    trip     reset
    DISARMED, _NO, _NO, TRIPPED, _NO,  # BOOT
    _NO, ARMED, DISARMED, TRIPPED, _NO,  # DISARMED
    _NO, ARMED, DISARMED, TRIPPED, _NO,  # ARMED
    _NO, _NO, _NO, TRIPPED, DISARMED,  # TRIPPED
))

# Order in which a channel's conditions are named as the first cause.
_SEVERITY = (C_FAULT, C_HIGH, C_RATE, C_DOSE, C_LOW)
# Global conditions, most severe first: a readback mismatch is the highest alarm.
_GLOBAL_SEVERITY = (
    codes.G_READBACK, codes.G_EXCEPTION, codes.G_WATCHDOG, codes.G_OVERRUN,
    codes.G_HOST, codes.G_CONFIG, codes.G_OPERATOR, codes.G_PREVIOUS,
)


class Guard:
    def __init__(self, n_channels, interlock):
        interlock.value(0)
        self.interlock = interlock
        self.commanded = 0
        self.state = BOOT
        self.n = n_channels
        self.trip = array("i", [0] * n_channels)  # latched C_* bits per channel
        self.trip_fault = array("i", [0] * n_channels)  # the fault latched with C_FAULT
        self.global_trip = 0  # latched G_* bits
        self.global_active = 0  # G_* conditions present now
        self.first_channel = GLOBAL
        self.first_cause = 0
        self.first_fault = 0
        self.tripped_now = False  # a trip or a new cause this cycle: persist and report

    def _go(self, event):
        nxt = NEXT[self.state * 5 + event]
        if nxt == _NO:
            return False
        self.state = nxt
        return True

    def ready(self):
        """Leave BOOT once the configuration and the hardware are up."""
        return self._go(EV_READY)

    @micropython.native
    def open_interlock(self):
        self.interlock.value(0)
        self.commanded = 0

    @micropython.native
    def evaluate(self, ch, global_active):
        """End of a cycle's checks: trip on any condition while armed, latch later causes
        while tripped, then command the interlock. `ch` is a channels.Channels."""
        self.global_active = global_active
        state = self.state
        if state == ARMED or state == TRIPPED:
            if global_active or ch.any_active():
                self._latch(ch, global_active)
        elif global_active & codes.G_READBACK:
            # The interlock line is high though the firmware holds it low (a welded relay):
            # RF may be on in any state, so this trips and latches even when disarmed.
            self._latch(ch, codes.G_READBACK)
        if self.state == ARMED:
            self.interlock.value(1)
            self.commanded = 1
        else:
            self.open_interlock()

    def fail(self, global_cause):
        """Trip on a global cause from outside the checks (exception, watchdog, operator)."""
        self.open_interlock()
        self._latch(None, global_cause)

    @micropython.native
    def _latch(self, ch, global_active):
        if self.state != TRIPPED:
            self.open_interlock()  # first, before anything is recorded or sent
            self._go(EV_TRIP)
            self.tripped_now = True
            self._first(ch, global_active)
        new = global_active & ~self.global_trip
        if new:
            self.global_trip |= new
            self.tripped_now = True
        if ch is None:
            return
        for i in range(self.n):
            a = ch.active[i]
            if a & ~self.trip[i]:
                self.trip[i] |= a
                self.tripped_now = True
                if a & C_FAULT and not self.trip_fault[i]:
                    self.trip_fault[i] = ch.fault[i]

    def _first(self, ch, global_active):
        for bit in _GLOBAL_SEVERITY:
            if global_active & bit:
                self.first_channel, self.first_cause, self.first_fault = GLOBAL, bit, 0
                return
        if ch is None:
            return
        for i in range(self.n):
            a = ch.active[i]
            if a:
                for bit in _SEVERITY:
                    if a & bit:
                        self.first_channel, self.first_cause = i, bit
                        self.first_fault = ch.fault[i] if bit == C_FAULT else 0
                        return

    # Operator commands. Each returns None when done, or a list of reasons why not.

    def arm(self, ch, config_ok, names):
        reasons = []
        if self.state == TRIPPED:
            reasons.append("tripped: reset first")
        elif self.state == BOOT:
            reasons.append("still booting")
        if not config_ok:
            reasons.append("no valid configuration")
        if self.global_active:
            reasons += codes.global_cause_words(self.global_active)
        if ch is not None:
            reasons += active_conditions(ch, names)
        if reasons:
            return reasons
        self._go(EV_ARM)
        return None

    def disarm(self):
        if self.state == ARMED:
            self._go(EV_DISARM)
            self.open_interlock()
        return None if self.state in (DISARMED, ARMED) else ["state is %s" % codes.STATE_NAMES[self.state]]

    def reset(self, ch, names, reason):
        if self.state != TRIPPED:
            return ["not tripped"]
        if not reason.strip():
            return ["a reason is required"]
        still = codes.global_cause_words(self.global_active)
        if ch is not None:
            still += active_conditions(ch, names)
        if still:
            return ["still active: " + ", ".join(still)]
        self._go(EV_RESET)
        for i in range(self.n):
            self.trip[i] = 0
            self.trip_fault[i] = 0
        self.global_trip = 0
        self.first_channel, self.first_cause, self.first_fault = GLOBAL, 0, 0
        return None

    # What a trip looks like to people and to the trip record.

    def causes(self, names):
        """Every latched cause, first cause first: ["foramen:high", "overrun", ...]."""
        out = []
        first = self.first_words(names)
        if first:
            out.append(first)
        for w in codes.global_cause_words(self.global_trip):
            if w not in out:
                out.append(w)
        for i in range(self.n):
            for w in codes.channel_cause_words(self.trip[i], self.trip_fault[i]):
                w = names[i] + ":" + w
                if w not in out:
                    out.append(w)
        return out

    def first_words(self, names):
        if not self.first_cause:
            return ""
        if self.first_channel == GLOBAL:
            return codes.global_cause_words(self.first_cause)[0]
        return names[self.first_channel] + ":" + codes.channel_cause_words(self.first_cause, self.first_fault)[0]

    def record(self, names, dose=None):
        """The latched trip as stored in flash, so that a reboot comes back TRIPPED.
        Channels are stored by name; the dose (hi, lo) too, so a reboot gives no nerve a
        fresh allowance."""
        first = names[self.first_channel] if self.first_channel < self.n else ""
        rec = {
            "global": self.global_trip,
            "first": [first, self.first_cause, self.first_fault],
            "channels": {names[i]: [self.trip[i], self.trip_fault[i]] for i in range(self.n) if self.trip[i]},
            "causes": self.causes(names),
        }
        if dose is not None:
            rec["dose"] = {names[i]: [dose.hi[i], dose.lo[i]] for i in range(self.n)}
        return rec

    def restore(self, record, names):
        """Come back TRIPPED from a stored record. Whatever of it cannot be read still
        leaves the board TRIPPED, with the cause `previous_trip`."""
        self.open_interlock()
        self.state = TRIPPED
        try:
            self._restore(record, names)
        except Exception:  # noqa: BLE001 - a damaged record is still a trip
            self.global_trip |= codes.G_PREVIOUS
        if not self.first_cause:
            self.global_trip |= codes.G_PREVIOUS
            self.first_channel, self.first_cause, self.first_fault = GLOBAL, codes.G_PREVIOUS, 0

    def _restore(self, record, names):
        self.global_trip = int(record.get("global", 0)) & 0xFF
        first = record.get("first") or ["", 0, 0]
        name, cause, fault = first[0], int(first[1]), int(first[2])
        if name == "" and cause:
            self.first_channel, self.first_cause, self.first_fault = GLOBAL, cause, 0
        elif name in names:
            self.first_channel, self.first_cause, self.first_fault = names.index(name), cause, fault
        saved = record.get("channels", {})
        for i in range(self.n):
            bits, fault = saved.get(names[i], (0, 0))
            self.trip[i], self.trip_fault[i] = int(bits), int(fault)


def restore_dose(record, names, dose):
    """Put a stored dose back (channels matched by name); a bad entry is skipped."""
    saved = record.get("dose") if type(record) is dict else None
    if type(saved) is not dict:
        return
    for i, name in enumerate(names):
        try:
            hi, lo = saved[name]
            dose.hi[i] = min(max(int(hi), 0), 0x3FFFFFFF)
            dose.lo[i] = min(max(int(lo), 0), 0xFFFFF)
        except (KeyError, TypeError, ValueError):
            pass


def active_conditions(ch, names):
    """Words for the channel conditions present now: ["foramen:high", "tip:open"]."""
    out = []
    for i in range(ch.n):
        for w in codes.channel_cause_words(ch.active[i], ch.fault[i]):
            out.append(names[i] + ":" + w)
    return out
