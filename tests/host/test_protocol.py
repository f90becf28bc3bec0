"""Host side of the link protocol: golden vectors, the stream decoder, commands."""

import dataclasses
import importlib.util
import json
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tgfw import codes
from thermoguard import protocol as p

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text())
SCALARS = ("seq", "t_s", "t_us", "state", "flags", "global_causes", "first_channel", "first_cause",
           "first_fault", "max_late_us", "overruns", "dropped")
COLUMNS = ("temp", "cj", "fault", "warn", "trip", "rate", "dose_hi", "dose_lo")


def telemetry_args(inputs):
    return [inputs[k] for k in SCALARS] + [inputs[c] for c in COLUMNS]


def tel(seq, t_s=0, t_us=0, n=2, fault=0, temp=37 * 1024):
    return p.encode_telemetry(seq, t_s, t_us, codes.ARMED, 31, 0, 0, 0, 0, 0, 0, 0,
                              [temp] * n, [25 * 1024] * n, [fault] * n, [0] * n, [0] * n, [0] * n,
                              [0] * n, [0] * n, config_hash=0xCAFE)


def as_json(item):
    return json.loads(json.dumps(dataclasses.asdict(item)))


def frames(items):
    return [i for i in items if not isinstance(i, p.Text)]


def texts(items):
    return [i.text for i in items if isinstance(i, p.Text)]


# Golden vectors


def test_vector_file_is_what_the_generator_makes():
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "tools" / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (ROOT / "tests" / "vectors" / "protocol.json").read_text(), (
        "run .venv/bin/python tools/make_vectors.py"
    )


@pytest.mark.req("SR-LNK-02", "SR-LNK-04", "SR-LNK-05")
@pytest.mark.parametrize("v", VECTORS["telemetry"], ids=lambda v: v["name"])
def test_telemetry_vectors(v):
    inputs = v["inputs"]
    payload = p.telemetry_payload(*telemetry_args(inputs), config_hash=inputs["config_hash"])
    assert payload.hex() == v["payload_hex"]
    wire = bytes.fromhex(v["wire_hex"])
    assert p.encode_frame(payload) == wire
    assert len(wire) == len(payload) + 7  # 0x00, COBS code, payload, CRC, 0x00
    item = p.Decoder().feed(wire)
    assert len(item) == 1 and as_json(item[0]) == v["decoded"]


@pytest.mark.req("SR-LNK-02")
@pytest.mark.parametrize("v", VECTORS["events"] + VECTORS["replies"], ids=lambda v: v["name"])
def test_event_and_reply_vectors(v):
    i = v["inputs"]
    if "event" in i:
        wire = p.encode_event(i["seq"], i["t_s"], i["t_us"], i["event"], i["state"], i["text"])
    else:
        wire = p.encode_reply(i["seq"], i["t_s"], i["t_us"], i["text"])
    assert wire.hex() == v["wire_hex"]
    (item,) = p.Decoder().feed(wire)
    assert as_json(item) == v["decoded"]
    assert i["text"].startswith(item.text)  # cut to fit, never altered


@pytest.mark.req("SR-LNK-03")
@pytest.mark.parametrize("v", VECTORS["commands"], ids=lambda v: v["name"])
def test_command_vectors(v):
    line = bytes.fromhex(v["line_hex"])
    if v["result"] == "BAD":
        with pytest.raises(p.CommandError) as e:
            p.parse_command(line)
        assert e.value.kind == v["error"] and str(e.value) == v["message"]
    elif v["result"] == "NONE":
        assert p.parse_command(line) is None
    else:
        assert p.parse_command(line) == p.Command(v["verb"], v["args"])
        if "crc" in v:
            assert p.encode_command(v["verb"], v["args"]) == line
            text = line[: line.index(b"*")].decode()
            assert v["crc"] == p.command_crc(text) == f"{p.crc32(text.encode()):08x}"


@pytest.mark.req("SR-LNK-02", "SR-LNK-04")
def test_device_encoder_agrees_with_the_host_on_random_frames(micropython):
    """Differential test: 200 random telemetry frames encoded on MicroPython and here."""
    rng = random.Random(1234)
    cases = []
    for _ in range(200):
        n = rng.randint(0, 8)
        inputs = dict(
            seq=rng.randrange(1 << 30), t_s=rng.randrange(1 << 30), t_us=rng.randrange(1_000_000),
            state=rng.randrange(4), flags=rng.randrange(32), global_causes=rng.randrange(128),
            first_channel=rng.choice([0, 1, 7, codes.GLOBAL]), first_cause=rng.randrange(32),
            first_fault=rng.randrange(11), max_late_us=rng.randrange(1 << 30),
            overruns=rng.randrange(1 << 20), dropped=rng.randrange(1 << 20),
            config_hash=rng.randrange(1 << 32),
        )

        def pick(*opts, n=n):
            return [rng.choice(opts)() for _ in range(n)]

        any32 = lambda: rng.randint(-(1 << 31), (1 << 31) - 1)  # noqa: E731
        inputs.update(
            temp=pick(any32, lambda: rng.randint(-300 << 10, 1400 << 10), lambda: p.INT32_MIN),
            cj=pick(any32, lambda: rng.randint(-60 << 10, 130 << 10), lambda: p.INT32_MIN),
            fault=pick(lambda: 0, lambda: 0, lambda: rng.randrange(11)),
            warn=pick(lambda: rng.randrange(32)), trip=pick(lambda: rng.randrange(32)),
            rate=pick(any32, lambda: p.INT32_MIN),
            dose_hi=pick(lambda: rng.randrange(1 << 31)), dose_lo=pick(lambda: rng.randrange(1 << 16)),
        )
        cases.append(inputs)
    code = f"""
import json
from array import array
from tgfw import link
for c in json.loads({json.dumps(json.dumps(cases))}):
    tm = link.Telemetry(len(c["temp"]), c["config_hash"])
    args = [c[k] for k in {list(SCALARS)!r}] + [array("i", c[k]) for k in {list(COLUMNS)!r}]
    print(bytes(tm.encode(*args)).hex())
"""
    device = micropython(code).split()
    host = [p.encode_telemetry(*telemetry_args(c), config_hash=c["config_hash"]).hex() for c in cases]
    assert device == host


# The stream decoder


def all_vector_wires():
    return [bytes.fromhex(v["wire_hex"]) for g in ("telemetry", "events", "replies") for v in VECTORS[g]]


@pytest.mark.req("SR-LNK-02")
def test_decoder_reads_frames_whole_or_byte_by_byte():
    stream = b"".join(all_vector_wires())
    whole = p.Decoder()
    items = whole.feed(stream)
    assert len(items) == len(all_vector_wires()) and whole.frames == len(items)
    single = p.Decoder()
    bytewise = [x for i in range(len(stream)) for x in single.feed(stream[i : i + 1])]
    assert bytewise == items
    assert (single.crc_errors, single.garbage, single.malformed) == (0, 0, 0)


@pytest.mark.req("SR-LNK-09")
def test_device_text_is_kept_apart_from_frames():
    a, b, c = tel(1), tel(2), tel(3)
    stream = (
        b"MicroPython v1.29.0 on 2026-01-01; Raspberry Pi Pico\r\n"
        + a
        + b"thermoguard: cannot store the trip record: [Errno 28] ENOSPC\n"
        + b
        + b"half a line"
        + c
        + b"Traceback (most recent call last):\n"
        + b'  File "main.py", line 9, in <module>\n'
        + b"ValueError: \xc2\xb0C\n"
    )
    for chunking in (len(stream), 1, 7):
        d = p.Decoder()
        items = [x for k in range(0, len(stream), chunking) for x in d.feed(stream[k : k + chunking])]
        assert [x.seq for x in frames(items)] == [1, 2, 3]
        assert texts(items) == [
            "MicroPython v1.29.0 on 2026-01-01; Raspberry Pi Pico",
            "thermoguard: cannot store the trip record: [Errno 28] ENOSPC",
            "half a line",
            "Traceback (most recent call last):",
            '  File "main.py", line 9, in <module>',
            "ValueError: °C",
        ]
        assert d.rejected == 0 and d.lost == 0
        kinds = [type(x).__name__ for x in items]
        assert kinds.index("Telemetry") == 1  # order kept


@pytest.mark.req("SR-LNK-02", "SR-LNK-09")
def test_decoder_resynchronises_after_garbage():
    rng = random.Random(7)
    for trial in range(200):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        d = p.Decoder()
        items = d.feed(junk + tel(10) + tel(11) + tel(12))
        seqs = [x.seq for x in frames(items)]
        # The first frame may be swallowed when the junk ends inside a would-be frame;
        # never any later one, and nothing invented.
        assert seqs in ([10, 11, 12], [11, 12]), (trial, seqs)
        if seqs == [11, 12]:
            assert d.rejected >= 1


@pytest.mark.req("SR-LNK-02")
def test_every_single_bit_flip_is_rejected_and_counted():
    a, b, c = tel(1, 1, 0), tel(2, 1, 100000), tel(3, 1, 200000)
    good = p.Decoder().feed(a + b + c)
    stream = bytearray(a + b + c)
    for bit in range(len(a) * 8, (len(a) + len(b)) * 8):
        s = bytearray(stream)
        s[bit >> 3] ^= 1 << (bit & 7)
        d = p.Decoder()
        items = frames(d.feed(bytes(s)))
        assert all(x in good for x in items), bit  # nothing altered gets through
        assert good[0] in items and good[2] in items, bit  # the neighbours survive
        if good[1] not in items:
            assert d.crc_errors + d.garbage >= 1, bit
            assert d.lost == 1, bit


@pytest.mark.req("SR-LNK-02")
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_corruption_never_yields_a_wrong_frame(data):
    wires = [tel(i, i, 0, n=1 + i % 8, fault=i % 3) for i in range(1, 6)]
    good = frames(p.Decoder().feed(b"".join(wires)))
    s = bytearray(b"".join(wires))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(s) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "insert", "zero"]))
        if op == "flip":
            s[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "drop":
            del s[pos]
        elif op == "insert":
            s.insert(pos, data.draw(st.integers(0, 255)))
        else:
            s[pos] = 0
    d = p.Decoder()
    items = frames(d.feed(bytes(s)) + d.flush())
    assert all(x in good for x in items)


@pytest.mark.req("SR-LNK-02")
def test_truncated_frames_are_rejected_and_the_next_frame_is_read():
    a, b = tel(1), tel(2)
    for cut in range(1, len(a) - 1):
        d = p.Decoder()
        items = frames(d.feed(a[:cut] + b))
        assert [x.seq for x in items] == [2], cut


@pytest.mark.req("SR-LNK-02")
def test_good_crc_with_unknown_content_is_counted_as_malformed():
    d = p.Decoder()
    bad_kind = p.encode_frame(bytes([1, 9]) + bytes(12))
    bad_version = p.encode_frame(bytes([2, 1]) + bytes(40))
    bad_length = p.encode_frame(bytes.fromhex(VECTORS["telemetry"][0]["payload_hex"])[:-1])
    assert frames(d.feed(bad_kind + bad_version + bad_length + tel(5))) == frames(p.Decoder().feed(tel(5)))
    assert d.malformed == 3 and d.crc_errors == 0


@pytest.mark.req("SR-LNK-09")
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_decoder_never_raises(data, chunk):
    d = p.Decoder()
    for k in range(0, len(data), chunk):
        d.feed(data[k : k + chunk])
    d.flush()


def test_text_lines_are_bounded_and_flushed():
    d = p.Decoder()
    items = d.feed(b"x" * 10000)
    assert [len(t) for t in texts(items)] == [4096, 4096]
    assert texts(d.flush()) == ["x" * (10000 - 8192)]
    d = p.Decoder()
    assert d.feed(b"\xff\xfe binary\n") == [] and d.garbage == 1


@pytest.mark.req("SR-LNK-05")
def test_sequence_gaps_are_counted_across_the_wrap():
    d = p.Decoder()
    top = p.SEQ_MOD - 1
    d.feed(tel(top - 2, 10) + tel(top - 1, 10, 1) + tel(top, 10, 2) + tel(0, 10, 3) + tel(1, 10, 4))
    assert d.lost == 0
    d.feed(tel(4, 10, 5))  # 2 and 3 lost
    assert d.lost == 2
    d = p.Decoder()
    d.feed(tel(top - 1, 5) + tel(1, 6))  # top and 0 lost across the wrap
    assert d.lost == 2 and d.restarts == 0


@pytest.mark.req("SR-LNK-05")
def test_a_new_device_session_is_a_restart_not_a_loss():
    d = p.Decoder()
    d.feed(tel(500, 3600) + tel(501, 3600, 100000))
    d.feed(p.encode_event(0, 0, 5000, p.EV_BOOT, codes.DISARMED, "fw=0.1.0") + tel(1, 0, 100000))
    assert d.restarts == 1 and d.lost == 0


@pytest.mark.req("SR-LNK-05")
def test_device_time_keeps_full_resolution_at_its_largest_values():
    (t,) = p.Decoder().feed(tel(7, 0xFFFFFFFF, 999_999))
    assert t.t_s == 0xFFFFFFFF and t.t_us == 999_999
    assert t.t_dev_s == pytest.approx(4294967295.999999, abs=1e-6)
    assert p.Decoder().feed(p.encode_frame(p.HEADER.pack(1, 3, 0, 0, 1_000_000) + b"OK")) == []


@pytest.mark.req("SR-LNK-04")
def test_decoder_never_shows_a_faulted_channel_as_a_temperature():
    # A frame from a non-conforming sender: fault set and a temperature in the field.
    payload = bytearray(bytes.fromhex(VECTORS["telemetry"][0]["payload_hex"]))
    struct.pack_into("<ihBBBi", payload, p.TELEMETRY_FIXED, 45 * 1024, 25 * 64, codes.F_STUCK, 0, 0, 1024)
    (t,) = p.Decoder().feed(p.encode_frame(bytes(payload)))
    ch = t.channels[0]
    assert ch.fault == codes.F_STUCK and ch.fault_word == "stuck"
    assert ch.temp_c is None and ch.cj_c is None and ch.rate_c_per_s is None
    # And the host encoder, like the firmware, never writes one.
    (t,) = p.Decoder().feed(tel(1, fault=codes.F_OPEN, n=3))
    raw = p.cobs_decode(tel(1, fault=codes.F_OPEN, n=3)[1:-1])
    assert struct.unpack_from("<i", raw, p.TELEMETRY_FIXED)[0] == p.INT32_MIN
    assert all(c.temp_c is None for c in t.channels)


def test_telemetry_helpers():
    v = VECTORS["telemetry"]
    (t,) = p.Decoder().feed(bytes.fromhex(v[2]["wire_hex"]))
    assert t.state_name == "TRIPPED" and not t.interlock_on and t.config_valid
    assert t.first_cause_text(["tip", "foramen"]) == "foramen:open"
    assert t.channels[4].trip_words == ["high", "rate"]
    (g,) = p.Decoder().feed(bytes.fromhex(v[3]["wire_hex"]))
    assert g.first_cause_text() == "host_timeout"
    (e,) = p.Decoder().feed(bytes.fromhex(VECTORS["events"][1]["wire_hex"]))
    assert (e.event_name, e.state_name, e.text) == ("TRIP", "TRIPPED", "foramen:high,tip:open")
    (r,) = p.Decoder().feed(bytes.fromhex(VECTORS["replies"][2]["wire_hex"]))
    assert (r.ok, r.verb) == (False, "RESET") and r.detail.startswith("missing argument")


def test_cobs_round_trip_and_rejects():
    for data in (b"", b"\0", b"\0\0", b"abc", bytes(range(256)), b"\xff" * 300):
        assert p.cobs_decode(p.cobs_encode(data)) == data
        assert 0 not in p.cobs_encode(data)
    assert p.cobs_decode(b"\x05ab") is None
    assert p.cobs_decode(b"\x00") is None


# Commands


@pytest.mark.req("SR-LNK-03")
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["TRIP", "RESET", "GET", "SET"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60),
)
def test_commands_round_trip(verb, word):
    args = word if verb != "SET" else "k=" + word
    if verb == "GET":
        args = word
    assert p.parse_command(p.encode_command(verb, args)) == p.Command(verb, args)


@pytest.mark.req("SR-LNK-03")
def test_command_encoder_refuses_what_the_board_would_refuse():
    for verb, args in (("FIRE", ""), ("RESET", ""), ("INFO", "now"), ("TRIP", "a\nb"), ("TRIP", "x" * 200)):
        with pytest.raises(p.CommandError):
            p.encode_command(verb, args)


@pytest.mark.req("SR-LNK-03")
def test_every_double_bit_flip_of_a_command_is_refused():
    good = p.encode_command("SET", "foramen.high_c=44.5")
    n = (len(good) - 1) * 8
    for i in range(n):
        for j in range(i + 1, n):
            line = bytearray(good)
            line[i >> 3] ^= 1 << (i & 7)
            line[j >> 3] ^= 1 << (j & 7)
            for part in bytes(line).split(b"\n")[:-1] or [bytes(line)]:
                try:
                    cmd = p.parse_command(part)
                except p.CommandError:
                    continue
                assert cmd is None, (i, j, line)
