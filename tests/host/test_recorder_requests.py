"""Commands through a recording (Recorder.request): a command whose asker gave up is never
sent later and never takes a reply meant for another; every command sent is noted in the log;
after a reconnect nothing but INFO goes out until the port answers as the same board."""

from __future__ import annotations

import threading

import pytest
from thermoguard import protocol
from thermoguard.board import BoardInfo, NoReply, NotSent
from thermoguard.recorder import Recorder


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


def asking(rec: Recorder, verb: str, timeout: float, origin: str = "") -> tuple[threading.Thread, list]:
    out: list = []

    def ask():
        try:
            out.append(rec.request(verb, "", timeout, origin=origin))
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


def test_a_late_reply_is_not_taken_for_the_answer_to_the_next_command():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes)
    t, out = asking(rec, "ARM", 0.3, origin="the dashboard's keys")
    while not rec._requests.qsize():
        pass
    rec._send_requests(0.0)
    t.join()
    assert type(out[0]) is NoReply and "it was sent" in str(out[0])  # not NotSent: it may have acted
    assert notes.notes == ["sent ARM for the dashboard's keys"]
    t2, out2 = asking(rec, "ARM", 2.0)
    while not rec._requests.qsize():
        pass
    rec._send_requests(0.0)
    rec.feed(reply("ERR ARM tip:open", 1))  # answers the second ARM: the first one's never came
    t2.join()
    assert [r.text for r in out2[0]] == ["ERR ARM tip:open"]
    assert wire.verbs() == ["ARM", "ARM"]


def test_after_a_reconnect_only_info_until_the_same_board_answers():
    wire, notes = Wire(), Notes()
    same = BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, "")
    rec = Recorder(wire, notes, expected=same)
    rec._checking_since = rec._next_info = 0.0  # as _regain leaves it
    t, out = asking(rec, "DISARM", 2.0)
    while not rec._requests.qsize():
        pass
    rec._ask_info(0.0)
    rec._send_requests(0.0)
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
    rec._checking_since = rec._next_info = 0.0
    rec._ask_info(0.0)
    rec.feed(reply("OK INFO " + answer))
    assert rec.foreign and "nothing more is sent" in rec.foreign
    assert notes.notes == [rec.foreign] and messages == [f"thermoguard: warning: {rec.foreign}"]
    with pytest.raises(NotSent, match="did not reach the board: after the gap"):
        _ask_and_send(rec)
    assert wire.verbs() == ["INFO"]


def _ask_and_send(rec: Recorder):
    t, out = asking(rec, "ARM", 2.0)
    while not rec._requests.qsize():
        pass
    rec._send_requests(0.0)
    t.join()
    raise out[0]


def test_a_tightened_configuration_is_still_the_same_board():
    wire, notes = Wire(), Notes()
    rec = Recorder(wire, notes, expected=BoardInfo("0.1.0", "virtual", "af0809de", "ARMED", None, ""))
    rec._config_hash = 0x0BADF00D  # the telemetry's hash after a SET that tightened a limit
    rec._checking_since = rec._next_info = 0.0
    rec.feed(reply("OK INFO fw=0.1.0 board=virtual config=0badf00d state=ARMED"))
    assert not rec.foreign and rec._hb_now
