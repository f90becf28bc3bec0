"""What the dashboard knows about a board, built from decoded items and a clock alone.

    m = Model(config, arrhenius=dose.ArrheniusAccumulator(dose.LIVER))
    m.feed(items, now=time.monotonic(), wall=time.time())   # every decoded item, in order
    m.banner(now), m.alarms(now), m.rows(now), m.link_health(now), m.trend(i)

No I/O and no clock of its own: `now` (host monotonic seconds) is passed in, so a frozen
stream, a trip and the link figures are unit-tested with a made-up clock. The readings
are the board's own (temperature, rate, CEM43 dose, warnings, faults, trips); the only
figure computed here is the optional Arrhenius damage, from the same readings.

A stream that stops is never shown as its last values: once no telemetry has arrived for
one sample period plus NO_DATA_GRACE_S, `stale_s(now)` says for how long, the readings
read as missing and the first alarm is "NO DATA". The sample period is the configuration's
(`sample_hz`); without one it is learnt from the frames (`period_s`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from tgfw import codes

from thermoguard import protocol
from thermoguard.dose import ArrheniusAccumulator
from thermoguard.report import DOSE_CEILING

NO_DATA_GRACE_S = 0.5  # beyond one sample period: at 10 Hz the alarm shows 0.6 s after the last frame
DEFAULT_PERIOD_S = 0.1  # without a configuration, until the frames say otherwise
PERIOD_BOUNDS_S = (1 / 20, 1.0)  # sample_hz is 1 to 20 (tgfw.config): a period learnt from frames stays within
PERIOD_STEPS = 15  # the learnt period is the median device-time step of this many recent frames
FPS_WINDOW_S = 2.0
RECENT_S = 10.0  # a link counter that went up this recently is a low-priority alarm
TREND_S = 180.0  # the trend shows this much device time ...
TREND_POINTS = 60  # ... in this many points
EVENTS_KEPT = 6

HIGH, MEDIUM, LOW = "high", "medium", "low"  # IEC 60601-1-8 alarm priorities


@dataclass(frozen=True)
class Alarm:
    priority: str  # HIGH, MEDIUM or LOW
    text: str


@dataclass(frozen=True)
class Banner:
    state: str  # DISARMED, ARMED, TRIPPED, BOOT, NO DATA, WAITING
    detail: str
    priority: str | None  # the alarm priority of the banner itself, None when all is well
    armed: bool = False


@dataclass(frozen=True)
class Row:
    """One channel as the dashboard shows it; None for anything not known or not current."""

    name: str
    role: str
    temp_c: float | None
    low_c: float | None
    high_c: float | None
    margin_c: float | None  # distance to the nearest temperature limit (negative: beyond it)
    margin_to: str  # "high", "low" or ""
    rate_c_per_s: float | None
    rate_limit: float | None
    dose_cem43: float | None
    dose_limit: float | None
    omega: float | None
    fault: str  # fault word, "" when healthy
    warnings: list[str]
    trips: list[str]
    stale: bool  # the stream is frozen: the values above are blanked


@dataclass
class Trip:
    cause: str  # the first cause, `foramen:high`
    t_dev_s: float | None  # device time of the first TRIPPED frame seen, None when tripped before we looked
    wall: float | None  # host time (time.time()) it was seen
    causes: str = ""  # every cause, from the TRIP event


OK, REFUSED, NO_ANSWER, NOT_SENT = "ok", "refused", "no answer", "not sent"  # what came of a command


@dataclass
class Answer:
    verb: str
    outcome: str  # OK, REFUSED (the board said ERR, text is its reason), NO_ANSWER (none in time: it
    text: str  # may have been sent and acted on), NOT_SENT (it never left the host); text says why
    at: float

    @property
    def ok(self) -> bool:
        return self.outcome == OK


@dataclass
class _Counter:
    value: int = 0
    changed_at: float | None = None

    def set(self, value: int, now: float) -> None:
        if value > self.value:
            self.changed_at = now
        self.value = value

    def recent(self, now: float) -> bool:
        return self.changed_at is not None and now - self.changed_at <= RECENT_S


@dataclass
class _Trend:
    """Per channel, one value per TREND_S / TREND_POINTS of device time (the last reading
    of the slot; None for a slot whose last reading was missing)."""

    slot_s: float = TREND_S / TREND_POINTS
    points: deque = field(default_factory=lambda: deque(maxlen=TREND_POINTS))  # (slot, value)

    def add(self, t_dev_s: float, value: float | None) -> None:
        slot = math.floor(t_dev_s / self.slot_s)
        if self.points and self.points[-1][0] == slot:
            self.points[-1] = (slot, value)
            return
        if self.points and slot < self.points[-1][0]:
            self.points.clear()  # the board restarted: its time went back
        elif self.points:
            for s in range(max(self.points[-1][0] + 1, slot - TREND_POINTS + 1), slot):
                self.points.append((s, None))  # slots with no frame at all
        self.points.append((slot, value))

    def values(self) -> list[float | None]:
        return [v for _, v in self.points]


def configuration_hash(cfg: dict) -> int | None:
    """The hash the board reports for this configuration (None when it is not a valid one)."""
    from tgfw import config

    if not cfg:
        return None
    try:
        return config.config_hash(config.validate(json.loads(json.dumps(cfg))))
    except (config.ConfigError, TypeError, ValueError):
        return None


class Model:
    def __init__(self, config: dict | None = None, arrhenius: ArrheniusAccumulator | None = None,
                 started: float = 0.0) -> None:
        self.configure(config)
        self._steps: deque[float] = deque(maxlen=PERIOD_STEPS)  # device-time steps between telemetry frames
        self.arrhenius = arrhenius
        self.started = started  # host time the monitoring began: NO DATA counts from here before any frame
        self.last: protocol.Telemetry | None = None
        self.last_at: float | None = None  # host time of the last telemetry
        self._arrivals: deque[float] = deque()
        self._first_at: float | None = None
        self.trip: Trip | None = None
        self.trips_seen = 0  # transitions into TRIPPED (the bell rings on each)
        self.events: deque[tuple[float | None, str, str | None]] = deque(maxlen=EVENTS_KEPT)  # (t_dev, text, prio)
        # The latest outcome of each command, oldest first: DISARM is sent while ARM waits,
        # and neither outcome may hide the other's, whichever comes last.
        self.answers: dict[str, Answer] = {}
        self.trends: list[_Trend] = []
        self.crc_errors = _Counter()
        self.lost = _Counter()
        self.gaps = _Counter()
        self.garbage = _Counter()
        self.overruns = _Counter()
        self.dropped = _Counter()

    def configure(self, config: dict | None) -> None:
        """The board's configuration: names, roles and limits (at the start, and again after
        the board reports a change)."""
        self.config: dict = config if isinstance(config, dict) else {}
        chans = self.config.get("channels", [])
        self.channel_cfg: list[dict] = [c if isinstance(c, dict) else {} for c in chans] if isinstance(
            chans, list) else []
        self.names = [c.get("name", f"ch{i}") for i, c in enumerate(self.channel_cfg)]
        hz = _num(self.config.get("sample_hz"))
        self.config_period_s = 1.0 / hz if hz is not None and hz > 0 else None
        # A CONFIG event says the limits changed: until the new ones are read, none is shown
        # (an old limit would overstate the margin). So does telemetry of another configuration
        # than the one read (the event lost, or two changes read out of order).
        self.limits_stale = False
        self.config_hash = configuration_hash(self.config)

    def limits_unknown(self) -> bool:
        """The limits shown may not be the board's: none is shown."""
        t = self.last
        return self.limits_stale or (self.config_hash is not None and t is not None
                                     and t.config_valid and t.config_hash != self.config_hash)

    # Input

    def feed(self, items: list, now: float, wall: float | None = None) -> None:
        for item in items:
            if isinstance(item, protocol.Telemetry):
                self._telemetry(item, now, wall)
            elif isinstance(item, protocol.Event):
                self._event(item)
            elif isinstance(item, protocol.Text):
                self.events.append((None, f"board: {item.text}", None))

    def link(self, now: float, *, crc_errors: int = 0, lost: int = 0, gaps: int = 0, garbage: int = 0) -> None:
        """The host's link counters (the recorder's or the decoder's), cumulative."""
        self.crc_errors.set(crc_errors, now)
        self.lost.set(lost, now)
        self.gaps.set(gaps, now)
        self.garbage.set(garbage, now)

    def note(self, text: str, priority: str | None = None) -> None:
        """A message of the host's own (port lost, reconnected)."""
        self.events.append((None, text, priority))

    def answered(self, verb: str, outcome: str, text: str, now: float) -> None:
        """What came of an operator command: the board's answer (OK, REFUSED), or why there is
        none (NO_ANSWER, NOT_SENT)."""
        if outcome not in (OK, REFUSED, NO_ANSWER, NOT_SENT):
            raise ValueError(f"unknown outcome {outcome!r}")
        self.answers.pop(verb, None)  # re-inserted: the dict's order is the order they came
        self.answers[verb] = Answer(verb, outcome, text, now)

    @property
    def answer(self) -> Answer | None:
        """What came of the latest command, or None."""
        return next(reversed(self.answers.values()), None)

    @property
    def period_s(self) -> float:
        """The board's sample period: the configuration's; without one, the median step of
        device time between recent frames (within PERIOD_BOUNDS_S); DEFAULT_PERIOD_S before
        two frames have come."""
        if self.config_period_s is not None:
            return self.config_period_s
        if not self._steps:
            return DEFAULT_PERIOD_S
        low, high = PERIOD_BOUNDS_S
        return min(high, max(low, statistics.median(self._steps)))

    def _telemetry(self, t: protocol.Telemetry, now: float, wall: float | None) -> None:
        before = self.last
        if before is not None and t.t_dev_s > before.t_dev_s:  # not across a restart (device time went back)
            self._steps.append(t.t_dev_s - before.t_dev_s)
        self.last, self.last_at = t, now
        self._arrivals.append(now)
        if self._first_at is None:
            self._first_at = now
        while self._arrivals and now - self._arrivals[0] > FPS_WINDOW_S:
            self._arrivals.popleft()
        self.overruns.set(t.overruns, now)
        self.dropped.set(t.dropped, now)
        if t.state == codes.TRIPPED:
            if self.trip is None:
                seen_start = before is not None and before.state != codes.TRIPPED
                self.trip = Trip(t.first_cause_text(self.names) or "unknown",
                                 t.t_dev_s if seen_start else None, wall if seen_start else None)
                self.trips_seen += 1
        else:
            self.trip = None
        while len(self.trends) < len(t.channels):
            self.trends.append(_Trend())
        for i, ch in enumerate(t.channels):
            self.trends[i].add(t.t_dev_s, ch.temp_c)
        if self.arrhenius is not None:
            self.arrhenius.add(t.seq, t.t_dev_s, [ch.temp_c for ch in t.channels])

    def _event(self, e: protocol.Event) -> None:
        name = e.event_name
        if e.event == protocol.EV_TRIP:
            if self.trip is not None and not self.trip.causes:
                self.trip.causes = e.text
            self.events.append((e.t_dev_s, f"TRIP {e.text}", HIGH))
        elif e.event == protocol.EV_WARNING:
            self.events.append((e.t_dev_s, f"WARNING {e.text}", MEDIUM))
        elif e.event == protocol.EV_REFUSED:
            self.events.append((e.t_dev_s, f"REFUSED {e.text}", MEDIUM))
        elif e.event == protocol.EV_CONFIG:
            self.limits_stale = True
            self.events.append((e.t_dev_s, f"CONFIG {e.text}", None))
        else:
            self.events.append((e.t_dev_s, f"{name} {e.text}".rstrip(), None))

    # What is shown

    def name(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else f"ch{i}"

    def stale_s(self, now: float) -> float | None:
        """Seconds without telemetry, once that is longer than a healthy stream allows; else None."""
        since = now - (self.last_at if self.last_at is not None else self.started)
        return since if since > self.period_s + NO_DATA_GRACE_S else None

    def fps(self, now: float) -> float | None:
        """Telemetry frames received per second over the last FPS_WINDOW_S; None until the
        monitor has watched that long (a backlog read at the start is no rate)."""
        if self._first_at is None or now - self._first_at < FPS_WINDOW_S:
            return 0.0 if self.stale_s(now) is not None and self.last_at is not None else None
        return sum(1 for t in self._arrivals if now - t <= FPS_WINDOW_S) / FPS_WINDOW_S

    def banner(self, now: float) -> Banner:
        t = self.last
        stale = self.stale_s(now)
        if stale is not None:
            last = f"last state {t.state_name} at {t.t_dev_s:.1f} s" if t is not None else "no telemetry yet"
            return Banner("NO DATA", f"NO DATA for {stale:.0f} s: {last}; the readings are not current", HIGH)
        if t is None:
            return Banner("WAITING", "waiting for the board's telemetry", None)
        rf = "RF permitted" if t.interlock_on else "RF off"
        if t.state == codes.TRIPPED:
            trip = self.trip or Trip(t.first_cause_text(self.names), None, None)
            when = (f"at {trip.t_dev_s:.1f} s device time" if trip.t_dev_s is not None
                    else "before monitoring began")
            return Banner("TRIPPED", f"{rf} - first cause {trip.cause} {when}", HIGH)
        if t.state == codes.ARMED:
            return Banner("ARMED", rf, None, armed=True)
        if t.state == codes.DISARMED:
            return Banner("DISARMED", rf, None)
        return Banner(t.state_name, rf, None)

    def alarms(self, now: float) -> list[Alarm]:
        """Every alarm condition, highest priority first."""
        out: list[Alarm] = []
        t = self.last
        stale = self.stale_s(now)
        if stale is not None:
            out.append(Alarm(HIGH, f"NO DATA for {stale:.0f} s"))
        if self.limits_unknown():
            out.append(Alarm(MEDIUM, "the board's configuration changed: its new limits are being read"))
        if t is not None and stale is None:
            if t.state == codes.TRIPPED:
                trip = self.trip
                causes = (trip.causes if trip and trip.causes else t.first_cause_text(self.names)) or "unknown"
                out.append(Alarm(HIGH, f"TRIPPED: {causes}"))
            for i, ch in enumerate(t.channels):
                if ch.fault and not ch.trip:
                    out.append(Alarm(MEDIUM, f"{self.name(i)}: fault {ch.fault_word}"))
                warn = [w for w in ch.warn_words if w != ch.fault_word]
                if warn:
                    out.append(Alarm(MEDIUM, f"{self.name(i)}: warning {', '.join(warn)}"))
            if t.state == codes.ARMED and not t.host_ok:
                out.append(Alarm(MEDIUM, "the board does not hear the host's heartbeat"))
            if not t.config_valid:
                out.append(Alarm(MEDIUM, "the board has no valid configuration"))
        for what, c in (("CRC errors", self.crc_errors), ("frames lost", self.lost), ("link gaps", self.gaps),
                        ("overruns", self.overruns), ("frames dropped by the board", self.dropped)):
            if c.recent(now):
                out.append(Alarm(LOW, f"{what}: {c.value} (rising)"))
        order = {HIGH: 0, MEDIUM: 1, LOW: 2}
        return sorted(out, key=lambda a: order[a.priority])

    def rows(self, now: float) -> list[Row]:
        t = self.last
        stale = self.stale_s(now) is not None
        n = max(len(self.channel_cfg), len(t.channels) if t is not None else 0)
        out = []
        for i in range(n):
            cfg = self.channel_cfg[i] if i < len(self.channel_cfg) else {}
            if self.limits_unknown():
                cfg = {"role": cfg.get("role", "")}
            ch = t.channels[i] if t is not None and i < len(t.channels) and not stale else None
            low, high = _num(cfg.get("low_c")), _num(cfg.get("high_c"))
            temp = ch.temp_c if ch is not None else None
            margin, to = None, ""
            if temp is not None:
                for word, m in (("high", None if high is None else high - temp),
                                ("low", None if low is None else temp - low)):
                    if m is not None and (margin is None or m < margin):
                        margin, to = m, word
            omega = None
            if self.arrhenius is not None and not stale and i < len(self.arrhenius.omega):
                omega = self.arrhenius.omega[i]
            out.append(Row(
                name=self.name(i), role=str(cfg.get("role", "")), temp_c=temp, low_c=low, high_c=high,
                margin_c=margin, margin_to=to,
                rate_c_per_s=ch.rate_c_per_s if ch is not None else None, rate_limit=_num(cfg.get("rate_c_per_s")),
                dose_cem43=ch.dose_cem43 if ch is not None else None, dose_limit=_num(cfg.get("dose_cem43")),
                omega=omega, fault=ch.fault_word if ch is not None else "",
                warnings=[w for w in ch.warn_words if w != ch.fault_word] if ch is not None else [],
                trips=ch.trip_words if ch is not None else [], stale=stale))
        return out

    def trend(self, i: int) -> list[float | None]:
        return self.trends[i].values() if i < len(self.trends) else []

    def link_health(self, now: float) -> dict:
        t = self.last
        return {
            "fps": self.fps(now),
            "since_last_s": None if self.last_at is None else now - self.last_at,
            "lost": self.lost.value,
            "crc_errors": self.crc_errors.value,
            "gaps": self.gaps.value,
            "garbage": self.garbage.value,
            "max_late_ms": None if t is None else t.max_late_us / 1000.0,
            "overruns": None if t is None else t.overruns,
            "dropped": None if t is None else t.dropped,
            "host_ok": None if t is None else t.host_ok,
            "interlock_on": None if t is None else t.interlock_on,
            "t_dev_s": None if t is None else t.t_dev_s,
        }


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def dose_text(v: float) -> str:
    """A CEM43 dose as the live view and the plain lines both write it. At the board's
    ceiling its counter stops, so the true dose is at least that: `>=1.05e+06`."""
    if v >= DOSE_CEILING:
        return f">={DOSE_CEILING:.3g}"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"
