"""Operator commands for a port that a recording holds (thermoguard.relay): unit tests of the
socket, and end to end with `thermoguard record` on the virtual board."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
from test_operator_cli import EXE, run, virtual_port  # noqa: F401 - the module's board fixture
from thermoguard import log, protocol, relay
from thermoguard.board import NoReply, NotSent


@pytest.fixture(autouse=True)
def private_runtime_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def test_a_command_reaches_the_holder_and_its_replies_come_back():
    asked = []

    def request(verb, args, timeout):
        asked.append((verb, args, timeout))
        if verb == "GET":
            return [protocol.Reply(7, 1, 0, 'OK GET 1/2 {"a":'), protocol.Reply(8, 1, 0, "OK GET 2/2 1}")]
        return [protocol.Reply(9, 2, 500, f"ERR {verb} tip:open")]

    with relay.serve("/dev/ttyFAKE0", request) as server:
        assert server is not None and server.path.stat().st_mode & 0o077 == 0  # only the user's
        client = relay.find("/dev/ttyFAKE0")
        assert client is not None
        reply = client.command("RESET", "probe moved", 1.5)
        assert (reply.ok, reply.verb, reply.detail, reply.seq) == (False, "RESET", "tip:open", 9)
        assert client.get_config(1.0)[0] == '{"a":1}'
        assert relay.find("/dev/ttyFAKE1") is None  # another port: nobody holds it
    assert asked == [("RESET", "probe moved", 1.5), ("GET", "", 1.0)]
    assert relay.find("/dev/ttyFAKE0") is None  # the holder ended: its socket is gone


def test_no_answer_not_sent_and_a_command_that_cannot_be_encoded_are_told_apart():
    def request(verb, args, timeout):
        if verb == "SET":
            protocol.encode_command(verb, "x" * 1000)  # too long: the holder refuses to send it
        if verb == "DISARM":
            raise NotSent("DISARM was not sent within 2 s; it will not be sent later")
        raise NoReply("ARM did not reach the board: the port was lost")

    with relay.serve("socket://127.0.0.1:9", request):
        client = relay.find("socket://127.0.0.1:9")
        with pytest.raises(NoReply, match="the port was lost") as no_answer:
            client.command("ARM")
        assert type(no_answer.value) is NoReply  # it may have been sent
        with pytest.raises(NotSent, match="will not be sent later"):
            client.command("DISARM", "", 1e12)  # an absurd timeout is taken as an hour
        with pytest.raises(protocol.CommandError):
            client.command("SET", "a=1")


def test_a_socket_left_by_a_killed_holder_is_not_taken_for_one(tmp_path):
    path = relay.socket_path("/dev/ttyFAKE2")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    assert relay.find("/dev/ttyFAKE2") is None
    with relay.serve("/dev/ttyFAKE2", lambda *a: []) as server:  # a new holder takes its place
        assert server is not None and relay.find("/dev/ttyFAKE2") is not None


def test_a_second_holder_of_one_port_is_refused_with_a_warning():
    warnings = []
    with relay.serve("/dev/ttyFAKE3", lambda *a: []) as first:
        with relay.serve("/dev/ttyFAKE3", lambda *a: [], warnings.append) as second:
            assert first is not None and second is None
    assert warnings and "already serves commands" in warnings[0]


def test_a_folder_others_can_enter_is_not_trusted():
    folder = relay.runtime_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with relay.serve("/dev/ttyFAKE5", lambda *a: []) as server:
        assert server is not None
        folder.chmod(0o777)  # another user could plant a socket that answers "OK DISARM"
        assert relay.find("/dev/ttyFAKE5") is None
    warnings = []
    with relay.serve("/dev/ttyFAKE5", lambda *a: [], warnings.append) as server:
        assert server is None
    assert warnings and "is not a private folder of this user" in warnings[0]


def test_one_socket_per_port_however_its_host_is_written():
    assert relay.socket_path("socket://localhost:5000") == relay.socket_path("socket://127.0.0.1:5000")
    assert relay.socket_path("socket://[::1]:5000") == relay.socket_path("socket://LOCALHOST:5000")
    assert relay.socket_path("socket://127.0.0.1:5000") != relay.socket_path("socket://127.0.0.1:5001")
    assert relay.socket_path("rfc2217://127.0.0.1:5000") != relay.socket_path("socket://127.0.0.1:5000")


def test_garbage_on_the_socket_sends_nothing():
    asked = []
    with relay.serve("/dev/ttyFAKE4", lambda *a: asked.append(a) or []) as server:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(server.path))
            s.sendall(b"ARM\n")
            assert s.recv(100) == b""  # closed without an answer
        assert asked == []


@pytest.mark.req("SR-HOST-03")
def test_operator_commands_reach_a_board_that_record_holds(virtual_port, tmp_path):  # noqa: F811
    out = tmp_path / "held.tglog"
    rec = subprocess.Popen([EXE, "record", "--port", virtual_port, "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 15
        while relay.find(virtual_port) is None:
            assert rec.poll() is None and time.monotonic() < end, rec.stderr.read() if rec.poll() else "no relay"
            time.sleep(0.1)
        armed = run("arm", "--port", virtual_port, "--reason", "held port")
        assert (armed.returncode, armed.stdout) == (0, "OK ARM\n"), armed.stderr
        assert "held by thermoguard record or monitor" in armed.stderr
        shown = run("config", "--port", virtual_port, "show")
        assert shown.returncode == 0 and json.loads(shown.stdout)["sample_hz"] == 10
        refused = run("reset", "--port", virtual_port, "--reason", "nothing to clear")
        assert refused.returncode == 1 and "refused RESET: not tripped" in refused.stderr
        listed = run("ports", virtual_port)
        assert listed.returncode == 0 and f"{virtual_port}: thermoguard board virtual" in listed.stdout
        assert "(held by thermoguard record or monitor)" in listed.stdout
        assert "1 thermoguard board among" in listed.stdout
        disarmed = run("disarm", "--port", virtual_port)
        assert (disarmed.returncode, disarmed.stdout) == (0, "OK DISARM\n"), disarmed.stderr
    finally:
        rec.send_signal(signal.SIGINT)
        try:
            rec.communicate(timeout=15)
        finally:
            if rec.poll() is None:
                rec.kill()
                rec.communicate()
    assert rec.returncode == 0
    items = [item for _, item in log.decoded_items(out)]
    replies = [i.text for i in items if isinstance(i, protocol.Reply) and i.verb in ("ARM", "DISARM", "RESET")]
    assert replies == ["OK ARM", "ERR RESET not tripped", "OK DISARM"]
    events = [(i.event_name, i.text) for i in items if isinstance(i, protocol.Event)]
    assert any(name == "ARM" and "held port" in text for name, text in events), events
    assert relay.find(virtual_port) is None  # the recording ended: so did its relay
