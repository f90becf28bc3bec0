"""The dashboard's model, keys, plain lines and drawing, with made-up frames and a made-up
clock: states, the trip banner with its first cause, a frozen stream shown as an alarm
within 1 s and never as its last values, warnings and faults, the board's dose, and the
live Arrhenius damage against dose.arrhenius on the same log."""

from __future__ import annotations

import io
import queue
import threading
import time

import numpy as np
import pytest
from rich.console import Console
from rich.screen import Screen
from tgfw import codes
from thermoguard import dose, frames, log, protocol
from thermoguard.board import NoReply
from thermoguard.dashboard import view
from thermoguard.dashboard.keys import QUIT, Keys
from thermoguard.dashboard.live import Commander, Inbox, NotSent, key_chunks, request_sender, run_live
from thermoguard.dashboard.model import (
    DEFAULT_PERIOD_S,
    HIGH,
    LOW,
    MEDIUM,
    NO_ANSWER,
    NOT_SENT,
    OK,
    REFUSED,
    Model,
    configuration_hash,
    dose_text,
)
from thermoguard.dashboard.plain import Plain, status_text
from thermoguard.report import DOSE_CEILING

CONFIG = {
    "sample_hz": 10, "stale_ms": 300, "host_timeout_s": 5,
    "channels": [
        {"name": "tip", "chip": "max31856", "cs": 17, "role": "ablation", "high_c": 95.0, "low_c": 15.0,
         "rate_c_per_s": 10.0},
        {"name": "foramen", "chip": "max31855", "cs": 13, "role": "protective", "high_c": 45.0, "low_c": 10.0,
         "rate_c_per_s": 2.0, "dose_cem43": 40.0},
    ],
}
CONFIG_HASH = configuration_hash(CONFIG)
ON = protocol.FL_INTERLOCK_ON | protocol.FL_HOST_OK | protocol.FL_CONFIG_VALID
OFF = protocol.FL_HOST_OK | protocol.FL_CONFIG_VALID


def tele(seq, t, state=codes.DISARMED, temps=(37.0, 37.0), faults=(0, 0), warn=(0, 0), trip=(0, 0),
         first=(codes.GLOBAL, 0), dose_cem43=(0.0, 0.0), flags=None, rate=(0.0, 0.0), overruns=0, max_late_us=0,
         config_hash=None):
    """A telemetry frame as the board encodes it, decoded as the host does (of CONFIG unless
    another configuration hash is given)."""
    if config_hash is None:
        config_hash = CONFIG_HASH
    q10 = [round(x * 1024) for x in temps]
    hi = [int(d * 1024) for d in dose_cem43]
    lo = [int((d * 1024 - int(d * 1024)) * 65536) for d in dose_cem43]
    if flags is None:
        flags = ON if state == codes.ARMED else OFF
    payload = protocol.telemetry_payload(
        seq, int(t), round((t - int(t)) * 1e6) % 1000000, state, flags, 0, first[0], first[1], 0, max_late_us,
        overruns, 0, q10, [37 * 64] * len(temps), list(faults), list(warn), list(trip),
        [round(r * 1024) for r in rate], hi, lo, config_hash=config_hash)
    return protocol.decode_payload(payload)


def model(**kw) -> Model:
    return Model(CONFIG, started=0.0, **kw)


def test_states_from_waiting_to_disarmed_to_armed():
    m = model()
    assert m.banner(0.1).state == "WAITING"
    m.feed([tele(0, 1.0)], now=0.2)
    b = m.banner(0.25)
    assert (b.state, b.priority, b.armed) == ("DISARMED", None, False) and "RF off" in b.detail
    m.feed([tele(1, 1.1, codes.ARMED)], now=0.3)
    b = m.banner(0.35)
    assert (b.state, b.armed, b.detail) == ("ARMED", True, "RF permitted")
    assert m.alarms(0.35) == []


def test_the_trip_banner_names_the_first_cause_and_when_it_came():
    m = model()
    m.feed([tele(0, 27.4, codes.ARMED)], now=10.0)
    m.feed([tele(1, 27.5, codes.TRIPPED, temps=(80.0, 45.2), trip=(0, codes.C_HIGH), first=(1, codes.C_HIGH))],
           now=10.1, wall=1_700_000_000.0)
    m.feed([protocol.Event(2, 27, 500000, protocol.EV_TRIP, codes.TRIPPED, "foramen:high,tip:rate")], now=10.1)
    b = m.banner(10.15)
    assert (b.state, b.priority) == ("TRIPPED", HIGH)
    assert "first cause foramen:high at 27.5 s device time" in b.detail
    assert m.trip.wall == 1_700_000_000.0 and m.trips_seen == 1
    alarms = m.alarms(10.15)
    assert alarms[0] == type(alarms[0])(HIGH, "TRIPPED: foramen:high,tip:rate")
    assert m.rows(10.15)[1].trips == ["high"]
    m.feed([tele(3, 27.6, codes.TRIPPED, trip=(0, codes.C_HIGH), first=(1, codes.C_HIGH))], now=10.2)
    assert m.trips_seen == 1  # the bell rings once per trip
    m.feed([tele(4, 40.0, codes.DISARMED)], now=12.0)  # reset
    assert m.trip is None and m.banner(12.05).state == "DISARMED"


def test_a_board_found_tripped_says_the_trip_came_before_monitoring():
    m = model()
    m.feed([tele(0, 5.0, codes.TRIPPED, trip=(codes.C_FAULT, 0), faults=(1, 0), first=(0, codes.C_FAULT))], now=1.0)
    assert "first cause tip:" in m.banner(1.05).detail and "before monitoring began" in m.banner(1.05).detail


def test_a_frozen_stream_is_an_alarm_within_one_second_and_blanks_the_readings():
    m = model()
    for k in range(10):  # 10 Hz for a second
        m.feed([tele(k, 1.0 + k / 10, codes.ARMED, temps=(60.0, 43.25), dose_cem43=(5.0, 1.5))], now=k / 10)
    last = 0.9
    assert m.stale_s(last + 0.5) is None and m.banner(last + 0.5).state == "ARMED"
    assert m.rows(last + 0.5)[1].temp_c == 43.25
    frozen = last + 0.99
    assert m.stale_s(frozen) == pytest.approx(0.99)
    b = m.banner(frozen)
    assert (b.state, b.priority) == ("NO DATA", HIGH) and b.detail.startswith("NO DATA for 1 s")
    assert "last state ARMED" in b.detail
    assert m.alarms(frozen)[0].priority == HIGH and m.alarms(frozen)[0].text.startswith("NO DATA for")
    for r in m.rows(frozen):
        assert r.stale and (r.temp_c, r.rate_c_per_s, r.dose_cem43, r.margin_c) == (None, None, None, None)
    assert m.banner(last + 3.2).detail.startswith("NO DATA for 3 s")
    # Drawn: the alarm, and none of the last values.
    text = draw(m, last + 3.2)
    assert "NO DATA for 3 s" in text and "43.25" not in text and "60.00" not in text
    m.feed([tele(10, 5.0, codes.ARMED, temps=(61.0, 43.5))], now=last + 3.3)
    assert m.stale_s(last + 3.35) is None and m.rows(last + 3.35)[1].temp_c == 43.5


def test_no_telemetry_at_all_is_no_data_too():
    m = model()
    assert m.banner(0.5).state == "WAITING"
    assert m.banner(0.9).state == "NO DATA" and "no telemetry yet" in m.banner(0.9).detail


def test_a_slow_board_is_not_called_frozen_between_its_frames():
    m = Model({**CONFIG, "sample_hz": 1}, started=0.0)
    m.feed([tele(0, 1.0)], now=0.0)
    assert m.stale_s(1.2) is None and m.stale_s(1.6) is not None


def test_warnings_faults_and_margins():
    m = model()
    m.feed([tele(0, 3.0, codes.ARMED, temps=(90.0, 44.0), warn=(0, codes.C_HIGH | codes.C_RATE),
                 rate=(1.0, 1.7), dose_cem43=(12.5, 3.25))], now=1.0)
    tip, foramen = m.rows(1.05)
    assert foramen.warnings == ["high", "rate"] and foramen.margin_c == pytest.approx(1.0)
    assert foramen.margin_to == "high" and foramen.rate_c_per_s == pytest.approx(1.7, abs=1e-3)
    assert (foramen.dose_cem43, foramen.dose_limit) == (pytest.approx(3.25), 40.0)
    assert (tip.margin_c, tip.margin_to, tip.dose_limit) == (pytest.approx(5.0), "high", None)
    assert [(a.priority, a.text) for a in m.alarms(1.05)] == [(MEDIUM, "foramen: warning high, rate")]
    m.feed([tele(1, 3.1, codes.DISARMED, temps=(90.0, 44.0), faults=(1, 0), warn=(codes.C_FAULT, 0))], now=1.1)
    tip = m.rows(1.15)[0]
    assert (tip.temp_c, tip.fault, tip.warnings) == (None, "open", [])
    assert (MEDIUM, "tip: fault open") in [(a.priority, a.text) for a in m.alarms(1.15)]


def test_link_trouble_is_a_low_priority_alarm_while_it_is_recent():
    m = model()
    m.feed([tele(0, 1.0)], now=0.0)
    m.link(0.0, crc_errors=0, lost=0)
    m.feed([tele(1, 1.1)], now=0.1)
    m.link(0.1, crc_errors=2, lost=1)
    assert [(a.priority, a.text) for a in m.alarms(0.15)] == [(LOW, "CRC errors: 2 (rising)"),
                                                             (LOW, "frames lost: 1 (rising)")]
    for k in range(2, 130):
        m.feed([tele(k, 1.0 + k / 10)], now=k / 10)
        m.link(k / 10, crc_errors=2, lost=1)
    assert m.alarms(12.95) == [] and m.link_health(12.95)["crc_errors"] == 2


def test_frames_per_second_from_arrivals():
    m = model()
    m.feed([tele(k, k / 100) for k in range(50)], now=0.0)  # a backlog read at once is no rate
    assert m.fps(0.0) is None
    for k in range(1, 31):
        m.feed([tele(50 + k, 0.5 + k / 10)], now=k / 10)
    assert m.fps(3.0) == pytest.approx(10.0, rel=0.06)


def test_the_trend_keeps_the_last_minutes_with_gaps_for_missing_readings():
    m = model()
    for k in range(0, 3000):  # 300 s at 10 Hz; tip unplugged from 250 s to 260 s
        t = k / 10
        faulty = 250 <= t < 260
        m.feed([tele(k, t, temps=(37.0 + t / 10, 37.0), faults=(1 if faulty else 0, 0))], now=t)
    tip = m.trend(0)
    assert len(tip) == 60  # 3 min in 3 s slots
    assert tip[-1] == pytest.approx(37.0 + 299.9 / 10, abs=0.01)
    assert None in tip and tip.count(None) >= 3
    line, lo, hi = view.sparkline(tip, 60)
    assert len(line.plain) == 60 and "·" in line.plain and lo < hi


def test_keys_arm_asks_first_reset_asks_a_reason_q_quits():
    k = Keys()
    assert k.press("a") is None and "y = arm" in k.prompt
    assert k.press("n") is None and k.prompt == ""
    k.press("a")
    assert k.press("y") == ("ARM", "")
    assert k.press("d") == ("DISARM", "")
    assert k.press("r") is None and k.prompt.startswith("Reset: reason")
    for c in "probe movedX":
        k.press(c)
    k.press("\x7f")
    k.press("é")  # not printable ASCII: a command line cannot carry it
    assert k.press("\r") == ("RESET", "probe moved")
    k.press("r")
    assert k.press("\r") is None and k.mode == "reason"  # the board refuses a reset without a reason
    k.press("q")  # typed into the reason, not quitting
    k.press("\x1b")
    assert k.mode == "normal" and k.press("q") == QUIT
    demo = Keys(commands=False)
    assert demo.press("a") is None and demo.prompt == "" and demo.press("q") == QUIT
    assert key_chunks(b"\x1b[A") == [] and key_chunks(b"\x1b") == ["\x1b"] and key_chunks(b"ay") == ["a", "y"]


def test_the_inbox_feeds_the_model_in_order():
    m = model()
    box = Inbox()
    box.items([tele(0, 1.0)])
    box.message("port lost: gone; reopening /dev/x")
    box.answer("RESET", REFUSED, "still active: foramen:high")
    box.drain(m)
    assert m.last.seq == 0 and m.events[-1][1].startswith("port lost")
    assert (m.answer.verb, m.answer.outcome, m.answer.text) == ("RESET", REFUSED, "still active: foramen:high")
    assert not m.answer.ok


def test_plain_lines_status_every_second_events_at_once_and_no_data():
    m = model()
    p = Plain(m)
    m.feed([tele(0, 12.0, codes.ARMED, temps=(60.0, 40.5), dose_cem43=(0, 0.25))], now=0.0)
    lines = p.tick(0.0)
    assert len(lines) == 1 and "ARMED" in lines[0] and "RF permitted" in lines[0] and "foramen 40.50 C" in lines[0]
    assert p.tick(0.5) == []
    trip = protocol.Event(3, 13, 0, protocol.EV_TRIP, codes.TRIPPED, "foramen:high")
    m.feed([trip], now=0.55)
    assert p.items([trip]) == ["   13.0 s  *** TRIPPED: foramen:high: RF off ***"]
    # The stream stops after the frame at 0.0: the alarm at once, then the status line says it.
    assert p.tick(0.7) == ["*** HIGH ALARM: NO DATA for 1 s: last state ARMED at 12.0 s; the readings are not "
                           "current ***"]
    assert p.tick(1.2) == []
    assert p.tick(1.75) == ["NO DATA for 2 s: last state ARMED at 12.0 s; the readings are not current"]


def draw(m: Model, now: float, keys: Keys | None = None, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(view.render(m, now, keys, width=width))
    return console.export_text()


def test_the_drawing_shows_banner_channels_link_and_the_answer():
    m = Model(CONFIG, arrhenius=dose.ArrheniusAccumulator(), started=0.0)
    m.feed([tele(0, 27.4, codes.ARMED, temps=(80.0, 44.0), max_late_us=1500)], now=0.0)
    m.feed([tele(1, 27.5, codes.TRIPPED, temps=(80.0, 45.25), trip=(0, codes.C_HIGH), first=(1, codes.C_HIGH),
                 dose_cem43=(0, 2.5), max_late_us=1500)], now=0.1)
    m.answered("RESET", REFUSED, "still active: foramen:high", 0.1)
    keys = Keys()
    text = draw(m, 0.15, keys)
    assert "TRIPPED" in text and "first cause foramen:high at 27.5 s" in text
    assert "45.25" in text and "TRIP high" in text and "2.50 / 40" in text and "jitter max 1.5 ms" in text
    assert "Ω" in text and "RESET: refused: still active: foramen:high" in text and "a arm" in text
    keys.press("r")
    assert "Reset: reason" in draw(m, 0.15, keys)


def test_the_drawing_shows_the_latest_outcome_of_each_command_newest_first():
    # DISARM is sent while ARM waits; when neither is answered, ARM's outcome may come last.
    m = Model(CONFIG, started=0.0)
    m.answered("RESET", REFUSED, "still active: foramen:high", 1.0)
    m.answered("DISARM", NO_ANSWER, "/dev/pts/1 did not answer DISARM within 2 s", 4.0)
    m.answered("ARM", NO_ANSWER, "/dev/pts/1 did not answer ARM within 2 s", 4.1)
    m.answered("RESET", OK, "", 5.0)  # replaces the refusal
    text = " ".join(draw(m, 9.5, Keys(), width=200).split())
    assert list(m.answers) == ["DISARM", "ARM", "RESET"] and m.answer.verb == "RESET"
    assert "refused" not in text
    assert text.index("answer to RESET: OK (4 s ago)") < text.index("no answer to ARM in time") < text.index(
        "no answer to DISARM in time")
    assert "did not answer DISARM within 2 s) (5 s ago)" in text
    assert [view.age_text(s) for s in (-0.5, 0.9, 119.9, 120, 7199, 7200, 90000)] == [
        "0 s ago", "0 s ago", "119 s ago", "2 min ago", "119 min ago", "2 h ago", "25 h ago"]


def test_in_a_short_terminal_the_newest_outcome_is_kept_and_the_oldest_cropped():
    m = Model(CONFIG, started=0.0)
    m.feed([tele(0, 27.4, codes.ARMED, temps=(80.0, 44.0))], now=0.0)
    m.answered("ARM", OK, "", 1.0)
    m.answered("DISARM", NO_ANSWER, "/dev/pts/1 did not answer DISARM within 2 s", 4.0)
    full = draw(m, 5.0, Keys()).splitlines()
    console = Console(file=io.StringIO(), width=120, height=len(full) - 1, record=True, color_system=None)
    console.print(Screen(view.render(m, 5.0, Keys(), width=120)))  # as Live(screen=True) crops it
    shown = console.export_text()
    assert "no answer to DISARM in time" in shown and "answer to ARM: OK" not in shown


def write_log(path, items):
    w = log.LogWriter.create(path, {"config": CONFIG})
    for k, payload in enumerate(items):
        w.write_bytes(protocol.encode_frame(payload), 1_000_000_000 + k * 100_000_000)
    w.close()


def payload(seq, t, temps, faults=(0, 0)):
    q10 = [round(x * 1024) for x in temps]
    return protocol.telemetry_payload(seq, int(t), round((t - int(t)) * 1e6) % 1000000, codes.ARMED, ON, 0,
                                      codes.GLOBAL, 0, 0, 0, 0, 0, q10, [0, 0], list(faults), [0, 0], [0, 0],
                                      [0, 0], [0, 0], [0, 0])


def test_live_arrhenius_equals_the_logs_on_the_same_frames(tmp_path):
    """Heating, a fault (adds nothing), a lost frame, and a board restart (starts again at 0)."""
    rows = []
    seq = 0
    for k in range(400):
        t = 1.0 + k * 0.1
        temps = (45.0 + k * 0.05, 40.0 + k * 0.04)
        faults = (1, 0) if 100 <= k < 130 else (0, 0)
        if k == 200:
            seq += 1  # a frame lost on the way
        if k == 300:
            seq = 0  # the board restarted: time and sequence start again
        rows.append(payload(seq, t if k < 300 else 0.1 + (k - 300) * 0.1, temps, faults))
        seq += 1
    write_log(tmp_path / "s.tglog", rows)
    fr = frames.load_telemetry(tmp_path / "s.tglog")
    expected = dose.arrhenius(fr, dose.LIVER)
    m = Model(CONFIG, arrhenius=dose.ArrheniusAccumulator(dose.LIVER), started=0.0)
    live = []
    for k, p in enumerate(rows):
        m.feed([protocol.decode_payload(p)], now=k * 0.1)
        live.append(list(m.arrhenius.omega))
    assert np.allclose(np.array(live), expected, rtol=1e-9, atol=0)
    assert expected[299, 0] > 0 and m.rows(40.0)[0].omega == pytest.approx(expected[-1, 0], rel=1e-9)
    # The fault interval added nothing: Omega stayed put while tip was open.
    assert live[129][0] == live[100][0] == live[99][0]
    custom = dose.ArrheniusAccumulator(dose.LIVER, a_per_s=1e30, ea_j_per_mol=2e5)
    for p in rows:
        t = protocol.decode_payload(p)
        custom.add(t.seq, t.t_dev_s, [c.temp_c for c in t.channels])
    assert custom.omega[1] == pytest.approx(dose.arrhenius(fr, a_per_s=1e30, ea_j_per_mol=2e5)[-1, 1], rel=1e-9)
    with pytest.raises(ValueError):
        dose.ArrheniusAccumulator(a_per_s=-1.0)


def test_a_narrow_terminal_never_cuts_a_reading_short():
    m = Model(CONFIG, arrhenius=dose.ArrheniusAccumulator(), started=0.0)
    m.feed([tele(0, 27.5, codes.TRIPPED, temps=(80.0, 45.25), faults=(9, 0), trip=(0, codes.C_HIGH),
                 first=(1, codes.C_HIGH), warn=(codes.C_RATE, codes.C_HIGH | codes.C_DOSE), dose_cem43=(0, 12.5),
                 rate=(0, 1.75))], now=0.0)
    for width in (80, 100, 120, 160):
        text = draw(m, 0.05, Keys(), width=width)
        rows = {line.split()[0]: line for line in text.splitlines() if line.split()[:1] in (["tip"], ["foramen"])}
        assert "implausible" in rows["tip"], text  # the fault word in the temperature's place
        assert "45.25" in rows["foramen"] and "12.50 / 40" in rows["foramen"] and "+1.75 / 2" in rows["foramen"], text
        assert "…" not in rows["foramen"].replace("10.0 … 45.0", ""), text


def test_the_live_loop_rings_the_bell_on_a_trip_and_the_banner_flashes():
    m = model()
    box = Inbox()
    box.items([tele(0, 27.4, codes.ARMED)])
    box.items([tele(1, 27.5, codes.TRIPPED, temps=(80.0, 45.25), trip=(0, codes.C_HIGH), first=(1, codes.C_HIGH))])
    box.done.set()  # the source has ended: one picture, then the loop returns
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="truecolor")
    run_live(m, box, threading.Event(), console=console, screen=False,
             render=lambda mm, now, keys: view.render(mm, now, keys))
    assert "\x07" in out.getvalue() and "TRIPPED" in out.getvalue()
    assert out.getvalue().count("\x07") == 1
    on, off = view.banner_style("TRIPPED", HIGH, True), view.banner_style("TRIPPED", HIGH, False)
    assert on != off and "red" in on and "red" in off
    assert view.banner_style("ARMED", None, True) == view.banner_style("ARMED", None, False)


def test_a_dose_at_the_boards_ceiling_is_shown_as_at_least_that():
    assert dose_text(DOSE_CEILING) == ">=1.05e+06"
    assert (dose_text(3.4), dose_text(250.0)) == ("3.40", "250")
    assert view._dose(None) == "—"


def test_the_plain_lines_and_the_live_view_write_a_dose_alike():
    for board_dose, written in ((DOSE_CEILING, ">=1.05e+06"), (250.0, "250"), (3.25, "3.25")):
        m = model()
        m.feed([tele(0, 30.0, codes.ARMED, temps=(85.0, 43.0), dose_cem43=(board_dose, 0.0))], now=0.0)
        line = status_text(m, 0.05)
        assert f"tip 85.00 C +0.00 C/s CEM43 {written}  foramen" in line, line
        row = next(r for r in draw(m, 0.05).splitlines() if r.split()[:1] == ["tip"])
        assert f" {written} " in row, row


def test_without_a_configuration_the_period_follows_the_frames():
    """No configuration (GET failed): a board sampling at 1 Hz is not called frozen between
    its frames, one at 10 Hz still is within 1 s, and the period stays within sample_hz's range."""
    slow = Model(None, started=0.0)
    assert slow.period_s == DEFAULT_PERIOD_S  # nothing to learn from yet
    for k in range(5):
        slow.feed([tele(k, 100.0 + k)], now=float(k))
    assert slow.period_s == pytest.approx(1.0)
    assert slow.stale_s(4.0 + 1.2) is None and slow.banner(4.0 + 1.2).state == "DISARMED"
    assert slow.stale_s(4.0 + 1.6) == pytest.approx(1.6)
    fast = Model(None, started=0.0)
    for k in range(10):
        fast.feed([tele(k, 100.0 + k / 10)], now=k / 10)
    assert fast.period_s == pytest.approx(0.1)
    assert fast.banner(0.9 + 0.7).state == "NO DATA"
    # A few lost frames, a board restart (its time goes back) and a long silence do not
    # stretch the period; a step beyond the slowest sample rate is bounded.
    for k, t in enumerate((0.5, 0.6, 0.7, 3.7, 3.8, 0.1, 0.2, 0.3)):
        fast.feed([tele(20 + k, t)], now=2.0 + k / 10)
    assert fast.period_s == pytest.approx(0.1)
    gap = Model(None, started=0.0)
    gap.feed([tele(0, 1.0)], now=0.0)
    gap.feed([tele(1, 61.0)], now=60.0)
    assert gap.period_s == 1.0
    assert Model(CONFIG).period_s == 0.1 and Model({**CONFIG, "sample_hz": 1}).period_s == 1.0


class FakeBoard:
    """A send for the Commander: each verb's answer waits until the test lets it through."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers  # verb: (ok, text), or an exception to raise
        self.gates = {verb: threading.Event() for verb in answers}
        self.sent: queue.SimpleQueue = queue.SimpleQueue()

    def send(self, verb: str, args: str) -> tuple[bool, str]:
        self.sent.put(verb)
        assert self.gates[verb].wait(30), f"{verb} was never let through"
        answer = self.answers[verb]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Answers:
    """What came of the commands, in the order it came, from an inbox drained into a model."""

    def __init__(self, m: Model, box: Inbox) -> None:
        self.m, self.box, self.got = m, box, []

    def next(self, verb: str, timeout: float = 10) -> tuple[str, str]:
        """The (outcome, text) of the first command of verb not yet taken."""
        end = time.monotonic() + timeout
        while True:
            self.got += [g for g in self.box.drain(self.m) if isinstance(g, tuple)]
            for k, (v, outcome, text) in enumerate(self.got):
                if v == verb:
                    del self.got[k]
                    return outcome, text
            assert time.monotonic() < end, f"no answer to {verb} came"
            time.sleep(0.01)


def test_disarm_is_sent_at_once_while_another_command_waits():
    board = FakeBoard({"ARM": NoReply("/dev/pts/1 did not answer ARM within 2 s"), "DISARM": (True, ""),
                       "RESET": (True, "")})
    m, box, keys = model(), Inbox(), Keys()
    answers = Answers(m, box)
    commander = Commander(board.send, box)
    for key in "ayd":  # arm, confirmed; the board does not answer; disarm
        action = keys.press(key)
        if action is not None:
            commander.start(*action)
    assert board.sent.get(timeout=10) == "ARM"
    assert board.sent.get(timeout=10) == "DISARM"  # sent while ARM still waits
    board.gates["DISARM"].set()
    assert answers.next("DISARM") == (OK, "")
    assert m.answer.verb == "DISARM" and commander.busy == "ARM"
    board.gates["DISARM"].clear()  # a DISARM that waits does not hold back the next one
    assert commander.start("DISARM", "") and commander.start("DISARM", "")
    assert [board.sent.get(timeout=10), board.sent.get(timeout=10)] == ["DISARM", "DISARM"]
    # Any other command waits for the one in flight: not sent, and the operator is told.
    assert not commander.start("RESET", "probe moved")
    assert answers.next("RESET") == (NOT_SENT, "still waiting for the answer to ARM")
    board.gates["DISARM"].set()
    assert answers.next("DISARM") == answers.next("DISARM") == (OK, "")
    board.gates["ARM"].set()
    assert answers.next("ARM") == (NO_ANSWER, "/dev/pts/1 did not answer ARM within 2 s")
    assert commander.busy is None
    assert commander.start("RESET", "probe moved") and board.sent.get(timeout=10) == "RESET"
    board.gates["RESET"].set()
    assert answers.next("RESET") == (OK, "")


def test_a_refusal_no_answer_and_not_sent_are_told_apart():
    sent = []

    def request(verb, args):  # as Recorder.request does
        protocol.encode_command(verb, args)
        sent.append(verb)
        if verb == "ARM":
            return [protocol.Reply(7, 1, 0, "ERR ARM tripped: reset first")]
        if verb == "RESET":
            raise NoReply("/dev/pts/1 did not answer RESET within 2 s")
        if verb == "DISARM":
            return [protocol.Reply(8, 1, 0, "OK DISARM")]
        raise NotSent("/dev/pts/1 does not take bytes: the board is not reading")

    m, box = model(), Inbox()
    answers = Answers(m, box)
    commander = Commander(request_sender(request), box)
    shown = {}
    for verb, args in (("ARM", ""), ("RESET", "probe moved"), ("DISARM", ""), ("GET", ""), ("RESET", "é")):
        commander.start(verb, args)
        outcome, _ = answers.next(verb)
        newest = draw(m, time.monotonic(), Keys(), width=250).split(" keys: ")[1].splitlines()[1].strip()
        assert newest.endswith("  (0 s ago)")
        shown[verb, args] = (outcome, newest.removesuffix("  (0 s ago)"))
    assert shown["ARM", ""] == (REFUSED, "board's answer to ARM: refused: tripped: reset first")
    outcome, text = shown["RESET", "probe moved"]
    assert outcome == NO_ANSWER and "refused" not in text
    assert text.startswith("no answer to RESET in time: it may have been sent and acted on: check the board's state")
    assert "did not answer RESET within 2 s" in text
    assert shown["DISARM", ""] == (OK, "board's answer to DISARM: OK")
    outcome, text = shown["GET", ""]
    assert outcome == NOT_SENT and text == "GET not sent: /dev/pts/1 does not take bytes: the board is not reading"
    outcome, text = shown["RESET", "é"]  # cannot be encoded: never left the host
    assert outcome == NOT_SENT and text.startswith("RESET not sent: ") and "refused" not in text
    assert sent == ["ARM", "RESET", "DISARM", "GET"]


def test_after_a_config_event_no_old_limit_is_shown_until_the_new_ones_are_read():
    m = Model(CONFIG, started=0.0)
    m.feed([tele(1, 1.0, temps=(37.0, 44.3))], now=1.0)
    assert m.rows(1.0)[1].high_c == 45.0 and m.rows(1.0)[1].margin_c == pytest.approx(0.7, abs=0.01)
    m.feed([protocol.Event(2, 1, 50000, protocol.EV_CONFIG, codes.DISARMED, "foramen.high_c=44.0"),
            tele(3, 1.1, temps=(37.0, 44.3))], now=1.1)
    row = m.rows(1.1)[1]
    assert (row.high_c, row.low_c, row.margin_c, row.dose_limit) == (None, None, None, None)  # never overstated
    assert any(a.priority == MEDIUM and "configuration changed" in a.text for a in m.alarms(1.1))
    tightened = {**CONFIG, "channels": [CONFIG["channels"][0], {**CONFIG["channels"][1], "high_c": 44.0}]}
    inbox = Inbox()
    inbox.config(tightened)  # what the monitor reads again with GET
    inbox.drain(m)
    assert m.rows(1.1)[1].high_c is None  # the telemetry still says the old configuration
    m.feed([tele(4, 1.2, temps=(37.0, 44.3), config_hash=configuration_hash(tightened))], now=1.2)
    row = m.rows(1.2)[1]
    assert row.high_c == 44.0 and row.margin_c == pytest.approx(-0.3, abs=0.01) and row.margin_to == "high"
    assert not any("configuration changed" in a.text for a in m.alarms(1.2))
    # A change whose event was lost, or two changes read out of order: the telemetry's hash
    # is not the one of the limits read, so none is shown.
    tighter = {**CONFIG, "channels": [CONFIG["channels"][0], {**CONFIG["channels"][1], "high_c": 43.0}]}
    m.feed([tele(5, 1.3, temps=(37.0, 42.8), config_hash=configuration_hash(tighter))], now=1.3)
    row = m.rows(1.3)[1]
    assert (row.high_c, row.margin_c) == (None, None) and m.limits_unknown()


def test_the_monitor_reads_the_configuration_again_after_a_config_event():
    from thermoguard.cli.monitor import _watching_config

    text = '{"sample_hz":10,"channels":[{"name":"tip","high_c":90.0}]}'
    asked = []

    class Rec:
        transport = type("T", (), {"url": "/dev/ttyX"})

        def request(self, verb, args="", timeout=2.0, origin=""):
            asked.append((verb, origin))
            return [protocol.Reply(5, 1, 0, f"OK GET 1/2 {text[:20]}"),
                    protocol.Reply(6, 1, 0, f"OK GET 2/2 {text[20:]}")]

    inbox = Inbox()
    on_items = _watching_config(Rec(), inbox, CONFIG_HASH)
    on_items([tele(1, 1.0)])
    assert asked == []  # nothing changed: nothing asked
    on_items([protocol.Event(2, 1, 0, protocol.EV_CONFIG, codes.DISARMED, "tip.high_c=90.0")])
    m = Model(CONFIG)
    end = time.monotonic() + 5
    while m.config is CONFIG or m.config.get("channels", [{}])[0].get("high_c") != 90.0:
        inbox.drain(m)
        assert time.monotonic() < end, "the configuration was not read again"
        time.sleep(0.01)
    assert asked == [("GET", "the dashboard (the board's configuration changed)")]
    assert not m.limits_stale
