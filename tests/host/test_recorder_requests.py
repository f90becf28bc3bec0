"""Commands through a recording (Recorder.request): a command whose asker gave up is never
sent later and never takes a reply meant for another; every command sent is noted in the log;
after a reconnect nothing but INFO goes out until the port answers as the same board."""

from __future__ import annotations

import threading
import time

import pytest
from thermoguard import protocol
from thermoguard.board import BoardInfo, NoReply, NotSent
from thermoguard.recorder import LATE_REPLY_S, SET_GRACE_S, Recorder


class Wire:
    def __init__(self) -> None:
        self.url = "/dev/ttyTEST"
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    def verbs(self) -> list[str]:
        return [protocol.parse_command(line.rstrip(b"\n")).verb for line in self.sent]


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def write_bytes(self, data, t_ns=None) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


def asking(rec: Recorder, verb: str, timeout: float, origin: str = "", args: str = "",
           ) -> tuple[threading.Thread, list]:
    out: list = []

    def ask():
        try:
            out.append(rec.request(verb, args, timeout, origin=origin))
        except NoReply as e:
            out.append(e)

    t = threading.Thread(target=ask)
    t.start()
    return t, out


def reply(text: str, seq: int = 1) -> bytes:
    return protocol.encode_reply(seq, 1, 0, text)


def test_a_command_given_up_before_it_was_sent_is_never_sent():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)
    t, out = asking(rec, "ARM", 0.2)
    t.join()  # the recording loop was busy (a port being reopened): nothing went out in time
    assert isinstance(out[0], NotSent) and "was not sent within 0.2 s" in str(out[0])
    assert "will not be sent later" in str(out[0])
    rec._send_requests(0.0)  # the loop comes back
    assert wire.sent == [] and notes.notes == []


def sent(rec: Recorder, verb: str, timeout: float, origin: str = "", now: float = 0.0, args: str = "",
         ) -> tuple[threading.Thread, list]:
    """A command asked from another thread and written by the recording loop."""
    t, out = asking(rec, verb, timeout, origin, args)
    end = time.monotonic() + 5
    while not rec._requests.qsize():
        assert time.monotonic() < end and t.is_alive(), f"{verb} was never queued: {out}"
    rec._send_requests(now)
    return t, out


def test_a_late_reply_is_not_taken_for_the_answer_to_the_next_command():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)
    t, out = sent(rec, "ARM", 0.3, origin="the dashboard's keys")
    t.join()
    assert type(out[0]) is NoReply and "it was sent" in str(out[0])  # not NotSent: it may have acted
    assert notes.notes == ["sent ARM for the dashboard's keys"]
    t2, out2 = sent(rec, "ARM", 2.0)
    rec.feed(reply("ERR ARM tip:open", 1))  # the first ARM's late answer: thrown away
    rec.feed(reply("OK ARM", 2))
    t2.join()
    assert [r.text for r in out2[0]] == ["OK ARM"]
    assert wire.verbs() == ["ARM", "ARM"]


def test_a_damaged_line_is_no_ones_answer_and_answers_come_in_order():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)
    t1, out1 = sent(rec, "ARM", 2.0)
    t2, out2 = sent(rec, "DISARM", 2.0)
    rec.feed(reply("ERR ? bad checksum", 1))  # a heartbeat's line, or ARM's: nobody can tell
    assert not out1 and not out2
    rec.feed(reply("OK DISARM", 2))  # answered after ARM was sent: ARM never reached the board whole
    t1.join()
    t2.join()
    assert type(out1[0]) is NoReply and "the board answered a later DISARM first" in str(out1[0])
    assert [r.text for r in out2[0]] == ["OK DISARM"]


def test_after_a_reconnect_only_info_until_the_same_board_answers():
    wire, notes = Wire(), Notes()
    same = BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, "")
    rec = Recorder(wire, notes, expected=same)
    rec._check_identity(0.0)  # as a reconnect leaves it
    rec._ask_info(0.0)
    t, out = sent(rec, "DISARM", 2.0)
    assert wire.verbs() == ["INFO"]  # the DISARM waits for the board to be known again
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=af0809de state=ARMED"))
    rec._send_requests(0.0)
    rec.feed(reply("OK DISARM", 2))
    t.join()
    assert wire.verbs() == ["INFO", "DISARM"] and out[0][0].text == "OK DISARM"
    assert rec._hb_now and not rec.foreign  # the heartbeat goes out at once


@pytest.mark.parametrize("answer", ["fw=0.1.0 board=esp32_devkitc config=af0809de state=DISARMED",
                                    "fw=0.2.0 board=virtual config=af0809de state=DISARMED",
                                    "fw=0.1.0 board=virtual config=12345678 state=DISARMED"])
def test_after_a_reconnect_another_board_gets_nothing_more(answer):
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    messages: list[str] = []
    rec.on_message = messages.append
    rec._check_identity(0.0)
    rec._ask_info(0.0)
    rec.feed(reply("OK INFO " + answer))
    assert rec.foreign and "nothing more is sent" in rec.foreign
    assert notes.notes == [rec.foreign] and messages == [f"thermoguard: warning: {rec.foreign}"]
    with pytest.raises(NotSent, match="did not reach the board: after the gap"):
        _ask_and_send(rec)
    assert wire.verbs() == ["INFO"]


def _ask_and_send(rec: Recorder):
    t, out = sent(rec, "ARM", 2.0)
    t.join()
    raise out[0]


def test_a_tightened_configuration_is_still_the_same_board():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    rec.feed(telemetry(0x0BADF00D))  # the telemetry's hash after a SET that tightened a limit
    rec._check_identity(0.0)
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=0badf00d state=ARMED"))
    assert not rec.foreign and rec._hb_now


def telemetry(config_hash: int, seq: int = 0) -> bytes:
    return protocol.encode_telemetry(seq, 1, 0, 2, 1, 0, 255, 0, 0, 10, 0, 0, [37 * 1024], [25 * 1024], [0], [0],
                                     [0], [0], [0], [0], config_hash=config_hash)


def test_telemetry_of_another_configuration_before_info_is_another_board():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    rec.feed(telemetry(0xAF0809DE))
    rec._check_identity(0.0)
    rec.feed(telemetry(0x12345678, 1))  # the new board speaks before it answers INFO
    assert "sends telemetry of configuration 12345678" in rec.foreign
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=12345678 state=ARMED"))  # too late to adopt it
    assert rec.foreign and not rec._hb_now


def test_a_board_known_only_by_its_frames_is_checked_by_their_configuration():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)  # INFO was not answered at the start
    rec.feed(telemetry(0xAF0809DE))
    rec._check_identity(0.0)
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=da2cb4bd state=DISARMED"))
    assert rec.foreign
    rec._check_identity(0.0)  # the next gap: checked again, and now the known board answers
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=af0809de state=DISARMED"))
    assert not rec.foreign and rec._hb_now and rec.expected.config_hash == "af0809de"


def test_a_board_without_a_valid_configuration_is_still_itself_after_a_gap():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", None, "TRIPPED", "no config.json", ""))
    rec.feed(telemetry(0))  # no valid configuration: hash 0 in telemetry, `none` in INFO
    rec._check_identity(0.0)
    rec.feed(telemetry(0, 1))
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=none state=TRIPPED error=no config.json"))
    assert not rec.foreign and rec._hb_now
    rec._check_identity(0.0)
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=af0809de state=DISARMED"))  # flashed meanwhile
    assert rec.foreign


def test_a_given_up_command_keeps_its_place_only_for_a_while():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)
    t, out = sent(rec, "ARM", 0.2)
    t.join()
    t2, out2 = sent(rec, "ARM", 2.0, now=LATE_REPLY_S + 1)  # long after: the first one is forgotten
    rec.feed(reply("OK ARM", 2))
    t2.join()
    assert [r.text for r in out2[0]] == ["OK ARM"]


def test_an_answer_taken_stays_the_answer_when_the_port_goes_next():
    rec = Recorder(Wire(), Notes())
    t, out = sent(rec, "ARM", 2.0)
    rec.feed(reply("OK ARM"))
    rec._fail_requests("the port was lost")
    t.join()
    assert [r.text for r in out[0]] == ["OK ARM"]


def test_the_recorders_own_info_answers_are_nobody_elses():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    rec._check_identity(0.0)
    rec._ask_info(0.0)
    rec._ask_info(1.0)  # asked again: a board that was booting answers both
    answer = "OK INFO fw=0.1.0 board=virtual config=af0809de state=ARMED"
    rec.feed(reply(answer, 1))
    t, out = sent(rec, "INFO", 2.0, now=1.0)  # `thermoguard ports` through the relay
    rec.feed(reply(answer, 2))  # the recorder's second INFO's answer: absorbed
    assert not out
    rec.feed(reply(answer.replace("ARMED", "TRIPPED"), 3))
    t.join()
    assert out[0][0].text.endswith("state=TRIPPED")


def test_get_pieces_go_to_the_get_that_expects_them():
    rec = Recorder(Wire(), Notes())
    t, out = sent(rec, "GET", 0.2)
    rec.feed(reply("OK GET 1/2 {\"a\":", 1))  # its second piece is lost
    t.join()
    t2, out2 = sent(rec, "GET", 2.0)
    rec.feed(reply("OK GET 1/2 {\"b\":", 2))
    rec.feed(reply("OK GET 2/2 2}", 3))
    t2.join()
    assert [r.text for r in out2[0]] == ["OK GET 1/2 {\"b\":", "OK GET 2/2 2}"]


def test_a_set_just_before_a_gap_explains_the_new_configuration_after_it():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    rec.feed(telemetry(0xAF0809DE))
    t, out = sent(rec, "SET", 2.0, args="foramen.high_c=44", now=100.0)
    rec.feed(reply("OK SET foramen.high_c=44", 1))
    t.join()
    rec._lost_at = 101.0  # the port is lost before the new configuration's telemetry came
    rec._check_identity(102.0)
    rec.feed(telemetry(0x78EE89C3, 2))
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=78ee89c3 state=ARMED", 3))
    assert not rec.foreign and rec._hb_now
    # Without a SET, or one refused, or long before the gap, the same answer is another board.
    for setup in ("none", "refused", "old"):
        rec = Recorder(Wire(), Notes(), expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
        rec.feed(telemetry(0xAF0809DE))
        if setup != "none":
            t, out = sent(rec, "SET", 2.0, args="foramen.high_c=44", now=100.0)
            rec.feed(reply("ERR SET foramen.high_c: above" if setup == "refused" else "OK SET x=1", 1))
            t.join()
        rec._lost_at = 101.0 if setup != "old" else 100.0 + SET_GRACE_S + 1
        rec._check_identity(rec._lost_at + 1)
        rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=78ee89c3 state=ARMED", 3))
        assert rec.foreign, setup
