import binascii
import io
import json
import select
import struct
import time
from array import array

import micropython
from fixtures import socket_pair
from fwtest import raises, req
from tgfw import codes, link

VECTORS = "tests/vectors/protocol.json"
_vectors = None

SCALARS = ("seq", "t_s", "t_us", "state", "flags", "global_causes", "first_channel", "first_cause",
           "first_fault", "max_late_us", "overruns", "dropped")
COLUMNS = ("temp", "cj", "fault", "warn", "trip", "rate", "dose_hi", "dose_lo")
INT32_MIN = -(1 << 31)


def vectors():
    global _vectors
    if _vectors is None:
        with open(VECTORS) as f:
            _vectors = json.load(f)
    return _vectors


class Stream(io.IOBase):
    """A stream select.poll can watch (through ioctl): bytes to read, room to write."""

    def __init__(self, data=b""):
        self.data = bytearray(data)
        self.pos = 0
        self.reads = 0
        self.room = True
        self.written = bytearray()
        self.write_result = None  # None: write everything; else what write returns
        self.write_error = None

    def add(self, data):
        self.data += data

    def readinto(self, buf):
        if self.pos >= len(self.data):
            return None
        buf[0] = self.data[self.pos]
        self.pos += 1
        self.reads += 1
        return 1

    def write(self, buf):
        if self.write_error is not None:
            raise OSError(self.write_error)
        if self.write_result is not None:
            return self.write_result
        self.written += buf
        return len(buf)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            ready = 0
            if arg & 1 and self.pos < len(self.data):
                ready |= 1
            if arg & 4 and self.room:
                ready |= 4
            return ready
        return -1  # no other request: in particular no file descriptor (GET_FILENO)


def encode_vector(v):
    inp = v["inputs"]
    tm = link.Telemetry(inp["n_channels"], inp["config_hash"])
    args = [inp[k] for k in SCALARS] + [array("i", inp[c]) for c in COLUMNS]
    return tm, tm.encode(*args)


def columns(n, **values):
    cols = {c: array("i", [0] * n) for c in COLUMNS}
    for k, v in values.items():
        for i in range(n):
            cols[k][i] = v
    return [cols[c] for c in COLUMNS]


def cobs_decode(chunk):
    out = bytearray()
    i = 0
    while i < len(chunk):
        code = chunk[i]
        out += chunk[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(chunk):
            out.append(0)
    return out


def payload_of(frame):
    frame = bytes(frame)
    assert frame[0] == 0 and frame[-1] == 0 and 0 not in frame[1:-1]
    return cobs_decode(frame[1:-1])[:-4]


# Frames out


@req("SR-LNK-02", "SR-LNK-04", "SR-LNK-05")
def test_telemetry_encoder_makes_the_golden_frames():
    for v in vectors()["telemetry"]:
        tm, frame = encode_vector(v)
        assert bytes(tm.payload) == bytes.fromhex(v["payload_hex"]), v["name"]
        assert bytes(frame) == bytes.fromhex(v["wire_hex"]), v["name"]


@req("SR-LNK-02")
def test_config_hash_may_come_as_the_four_crc_bytes():
    v = vectors()["telemetry"][2]
    h = v["inputs"]["config_hash"]
    raw = bytes((h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF, (h >> 24) & 0xFF))
    inp = v["inputs"]
    tm = link.Telemetry(inp["n_channels"], raw)
    frame = tm.encode(*([inp[k] for k in SCALARS] + [array("i", inp[c]) for c in COLUMNS]))
    assert bytes(frame) == bytes.fromhex(v["wire_hex"])


@req("SR-LNK-02")
def test_event_and_reply_encoders_make_the_golden_frames():
    for v in vectors()["events"]:
        i = v["inputs"]
        frame = link.encode_event(i["seq"], i["t_s"], i["t_us"], i["event"], i["state"], i["text"])
        assert bytes(frame) == bytes.fromhex(v["wire_hex"]), v["name"]
    for v in vectors()["replies"]:
        i = v["inputs"]
        frame = link.encode_reply(i["seq"], i["t_s"], i["t_us"], i["text"])
        assert bytes(frame) == bytes.fromhex(v["wire_hex"]), v["name"]


@req("SR-LNK-04")
def test_faulted_channel_never_carries_a_temperature():
    n = 8
    tm = link.Telemetry(n, 0)
    temp, cj, fault, warn, trip, rate, dhi, dlo = columns(n)
    for code in range(1, len(codes.FAULT_NAMES)):
        for i in range(n):
            temp[i] = 45 * 1024 + i  # a plausible value left behind by the driver
            cj[i] = 25 * 1024
            rate[i] = 1024
            fault[i] = code if i % 2 else 0
        p = payload_of(tm.encode(1, 0, 0, codes.ARMED, 0, 0, 0, 0, 0, 0, 0, 0,
                                 temp, cj, fault, warn, trip, rate, dhi, dlo))
        for i in range(n):
            t, c, f, _, _, r = struct.unpack_from("<ihBBBi", p, link.TELEMETRY_FIXED + i * link.CHANNEL_SIZE)
            if i % 2:
                assert (t, c, f, r) == (INT32_MIN, -32768, code, INT32_MIN), (code, i)
            else:
                assert (t, c, f, r) == (45 * 1024 + i, 25 * 64, 0, 1024), (code, i)


@req("SR-LNK-04")
def test_missing_values_stay_missing_and_cold_junction_rounds():
    tm = link.Telemetry(4, 0)
    temp, cj, fault, warn, trip, rate, dhi, dlo = columns(4)
    for i, (t, c) in enumerate(((INT32_MIN, INT32_MIN), (-5, -9), (1024, 8), (2**31 - 1, 2**31 - 1))):
        temp[i] = t
        cj[i] = c
        rate[i] = INT32_MIN
    p = payload_of(tm.encode(1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, temp, cj, fault, warn, trip, rate, dhi, dlo))
    got = [struct.unpack_from("<ih", p, link.TELEMETRY_FIXED + i * link.CHANNEL_SIZE) for i in range(4)]
    # -9/16 rounds to -1 (half up), 8/16 to 1; out of range saturates below INT16_MIN.
    assert got == [(INT32_MIN, -32768), (-5, -1), (1024, 1), (2**31 - 1, 32767)]


@req("SR-LNK-07")
def test_every_telemetry_frame_of_a_board_has_the_same_length_and_no_inner_zero():
    for n in range(link.MAX_CHANNELS + 1):
        tm = link.Telemetry(n, 0)
        cols = columns(n)
        lengths = set()
        for k in range(50):
            for i in range(n):
                cols[0][i] = (k * 7919 + i) * (-1 if k % 2 else 1)
                cols[1][i] = 0
                cols[6][i] = 0 if k % 3 else 0x7FFFFFFF
            frame = bytes(tm.encode(k, k, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, *cols))
            lengths.add(len(frame))
            assert frame[0] == 0 and frame[-1] == 0 and 0 not in frame[1:-1]
        assert lengths == {link.TELEMETRY_FIXED + link.CHANNEL_SIZE * n + 7}, n
    assert link.TELEMETRY_FIXED + link.CHANNEL_SIZE * link.MAX_CHANNELS + 4 <= 253


@req("SR-LNK-07", "SR-TIM-02")
def test_telemetry_encode_allocates_nothing_for_10000_frames():
    tm = link.Telemetry(8, 0xDEADBEEF)
    temp, cj, fault, warn, trip, rate, dhi, dlo = columns(8)
    fault[3] = codes.F_OPEN
    temp[0] = INT32_MIN
    # The first encode with new arrays checks them (this may allocate).
    tm.encode(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, temp, cj, fault, warn, trip, rate, dhi, dlo)
    frame = None
    micropython.heap_lock()
    try:
        for i in range(10000):
            temp[1] = i * 3
            frame = tm.encode(i, i >> 4, i * 97 % 1000000, codes.ARMED, 31, 0, codes.GLOBAL, 0, 0, 1234, 0, i,
                              temp, cj, fault, warn, trip, rate, dhi, dlo)
    finally:
        micropython.heap_unlock()
    assert struct.unpack_from("<I", payload_of(frame), 2)[0] == 9999


@req("SR-LNK-07")
def test_telemetry_refuses_wrong_column_lengths_and_channel_counts():
    tm = link.Telemetry(3, 0)
    cols = columns(2)
    raises(ValueError, tm.encode, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, *cols)
    raises(ValueError, link.Telemetry, 9, 0)


@req("SR-LNK-05")
def test_sequence_wraps_at_2_30_without_reaching_it():
    assert link.next_seq(0) == 1
    assert link.next_seq(link.SEQ_MAX - 1) == link.SEQ_MAX
    assert link.next_seq(link.SEQ_MAX) == 0
    assert link.SEQ_MAX == (1 << 30) - 1


@req("SR-LNK-02")
def test_event_text_is_cut_at_a_character_boundary_below_the_payload_limit():
    frame = link.encode_event(1, 2, 3, link.EV_WARNING, codes.ARMED, "€" * 200)
    p = payload_of(frame)
    assert len(p) <= link.MAX_PAYLOAD
    text = bytes(p[16:]).decode()
    assert text == "€" * (len(text))
    frame = link.encode_reply(1, 2, 3, "OK INFO " + "x" * 400)
    assert len(payload_of(frame)) == link.MAX_PAYLOAD


# Sender


@req("SR-LNK-01")
def test_sender_drops_and_counts_when_the_socket_is_full_and_never_blocks():
    a, b = socket_pair()
    try:
        a.settimeout(2)  # were send() ever to write into a full socket, it would stall here
        sender = link.Sender(a)
        tm = link.Telemetry(8, 0)
        frame = tm.encode(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, *columns(8))
        sent = slowest = 0
        for _ in range(3000):
            t0 = time.ticks_us()
            ok = sender.send(frame)
            slowest = max(slowest, time.ticks_diff(time.ticks_us(), t0))
            sent += ok
        assert sent > 0 and sender.dropped == 3000 - sent and sender.sent == sent
        assert slowest < 20000, slowest
        # The host reads again: frames go out again.
        got = 0
        while got < sent * len(frame):
            got += len(b.recv(4096))  # recv returns what is there (readinto waits to fill)
        assert sender.send(frame)
    finally:
        a.close()
        b.close()


@req("SR-LNK-01", "SR-LNK-07")
def test_sender_allocates_nothing_when_sending_or_dropping():
    a, b = socket_pair()
    try:
        sender = link.Sender(a)
        frame = link.Telemetry(2, 0).encode(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, *columns(2))
        results = bytearray(500)
        micropython.heap_lock()
        try:
            for i in range(500):
                results[i] = sender.send(frame)
        finally:
            micropython.heap_unlock()
        assert results[0] == 1 and results[-1] == 0  # some went, then the socket filled up
        assert sender.sent + sender.dropped == 500
    finally:
        a.close()
        b.close()


@req("SR-LNK-01")
def test_sender_counts_short_writes_and_write_errors_as_dropped():
    s = Stream()
    sender = link.Sender(s)
    assert sender.send(b"\x00\x01\x01\x00")
    s.room = False
    assert not sender.send(b"\x00\x01\x01\x00")
    s.room = True
    s.write_result = 2
    assert not sender.send(b"\x00\x01\x01\x00")
    s.write_result = None
    s.write_error = 11  # EAGAIN
    assert not sender.send(b"\x00\x01\x01\x00")
    assert (sender.sent, sender.dropped) == (1, 3)
    assert bytes(s.written) == b"\x00\x01\x01\x00"


# Commands in


class Wire:
    """A CommandReader on one end of a real socket pair; the test writes the other end."""

    def __init__(self, max_bytes_per_poll=64):
        self.host, self.device = socket_pair()
        self.reader = link.CommandReader(self.device, max_bytes_per_poll)
        self.pending = select.poll()
        self.pending.register(self.device, select.POLLIN)

    def close(self):
        self.host.close()
        self.device.close()

    def send(self, data):
        """Write data, poll until all of it is read; the results other than CMD_NONE."""
        self.host.write(data)
        out = []
        r = self.reader
        while True:
            k = r.poll()
            if k != link.CMD_NONE:
                out.append((k, r.verb, r.args, r.error_kind))
            elif not self.pending.poll(0):
                return out


@req("SR-LNK-03")
def test_command_reader_agrees_with_the_golden_command_lines():
    names = {"NONE": link.CMD_NONE, "HB": link.CMD_HB, "LINE": link.CMD_LINE, "BAD": link.CMD_BAD}
    w = Wire(max_bytes_per_poll=400)
    try:
        for v in vectors()["commands"]:
            got = w.send(bytes.fromhex(v["line_hex"]))
            want = names[v["result"]]
            if want == link.CMD_NONE:
                assert got == [], (v["name"], got)
                continue
            assert len(got) == 1 and got[0][0] == want, (v["name"], got)
            if want == link.CMD_LINE:
                assert got[0][1:3] == (v["verb"], v["args"]), (v["name"], got)
            if want == link.CMD_BAD:
                assert got[0][3] == v["error"] and got[0][2] == "", (v["name"], got)
                assert w.reader.error == v["message"], (v["name"], w.reader.error)
        assert w.reader.bad_lines == sum(1 for v in vectors()["commands"] if v["result"] == "BAD")
    finally:
        w.close()


@req("SR-LNK-03")
def test_encode_command_makes_the_golden_lines():
    for v in vectors()["commands"]:
        if v["result"] in ("HB", "LINE") and "crc" in v:
            assert link.encode_command(v["verb"], v["args"]) == bytes.fromhex(v["line_hex"]), v["name"]
    raises(ValueError, link.encode_command, "FIRE")
    raises(ValueError, link.encode_command, "RESET")
    raises(ValueError, link.encode_command, "TRIP", "a\nb")


@req("SR-LNK-03")
def test_a_bad_line_is_reported_once_and_the_next_line_is_read_normally():
    w = Wire()
    try:
        assert w.send(b"ARM*00000000\n") == [(link.CMD_BAD, "", "", link.E_CHECKSUM)]
        assert "checksum" in w.reader.error and w.reader.bad_lines == 1
        got = w.send(link.encode_command("SET", "sample_hz=8"))
        assert got == [(link.CMD_LINE, "SET", "sample_hz=8", "")]
        assert w.reader.error == "" and w.reader.bad_lines == 1
        # An authentic line with a bad argument names its verb.
        assert w.send(b"RESET*%08x\n" % binascii.crc32(b"RESET")) == [
            (link.CMD_BAD, "RESET", "", link.E_MISSING_ARGUMENT)]
    finally:
        w.close()


@req("SR-LNK-03")
def test_overlong_line_is_discarded_up_to_its_end():
    w = Wire()
    try:
        got = w.send(b"SET " + b"a=1 " * 300 + b"*00000000\n" + link.encode_command("ARM"))
        assert [g[0] for g in got] == [link.CMD_BAD, link.CMD_LINE]
        assert got[0][3] == link.E_TOO_LONG and got[1][1] == "ARM"
        # Exactly 200 bytes is still a line.
        text = "TRIP " + "x" * (link.MAX_LINE - 9 - 5)
        line = link.encode_command("TRIP", text[5:])
        assert len(line) == link.MAX_LINE + 1
        assert w.send(line) == [(link.CMD_LINE, "TRIP", text[5:], "")]
    finally:
        w.close()


@req("SR-LNK-03")
def test_control_bytes_are_never_part_of_a_command():
    good = link.encode_command("ARM")
    w = Wire()
    try:
        for c in (0, 3, 4, 1, 2, 5, 0x1B, 0x7F, 9, 13):
            got = w.send(good[:1] + bytes((c,)) + good[1:])
            assert got == [(link.CMD_BAD, "", "", link.E_CONTROL)], (c, got)
        assert w.send(b"\x03\x03\r\n") == [(link.CMD_BAD, "", "", link.E_CONTROL)]
        assert w.send(b"\r\n\n") == []  # blank lines are ignored
    finally:
        w.close()


@req("SR-LNK-03", "SR-LNK-02")
def test_no_single_or_double_bit_flip_of_a_command_is_accepted():
    good = link.encode_command("RESET", "probe moved")
    n = (len(good) - 1) * 8  # the line end is left alone
    w = Wire()
    try:
        for i in range(n):
            for j in range(i, min(n, i + 32)):
                line = bytearray(good)
                line[i >> 3] ^= 1 << (i & 7)
                if j != i:
                    line[j >> 3] ^= 1 << (j & 7)
                for r in w.send(line):
                    assert r[0] == link.CMD_BAD, (i, j, line)
        assert w.send(good) == [(link.CMD_LINE, "RESET", "probe moved", "")]
    finally:
        w.close()


@req("SR-LNK-08")
def test_a_line_split_across_polls_is_assembled_and_reading_is_bounded():
    line = link.encode_command("RESET", "probe moved")
    w = Wire(max_bytes_per_poll=4)
    try:
        r = None
        for k in range(0, len(line), 3):
            w.host.write(line[k:k + 3])
            r = w.reader.poll()
            if k + 3 < len(line):
                assert r == link.CMD_NONE
        assert r == link.CMD_LINE and (w.reader.verb, w.reader.args) == ("RESET", "probe moved")
    finally:
        w.close()
    # A flood without a line end is read at most max_bytes_per_poll bytes at a time.
    s = Stream(b"x" * 1000)
    reader = link.CommandReader(s, max_bytes_per_poll=16)
    assert reader.poll() == link.CMD_NONE and s.reads == 16
    assert reader.poll() == link.CMD_NONE and s.reads == 32


@req("SR-LNK-08")
def test_a_flood_of_lines_is_read_a_budget_per_cycle():
    hb = link.encode_command("HB")  # 12 bytes
    w = Wire(max_bytes_per_poll=64)
    try:
        w.host.write(hb * 20)
        per_cycle = []
        for _ in range(6):
            n = 0
            while w.reader.poll() != link.CMD_NONE:  # how a cycle calls it
                n += 1
            per_cycle.append(n)
        # 64 bytes a cycle: 5 lines (60 bytes), then the 6th line completes next cycle.
        assert per_cycle[0] == 5 and max(per_cycle) <= 6 and sum(per_cycle) == 20, per_cycle
    finally:
        w.close()


@req("SR-LNK-08", "SR-LNK-06")
def test_reading_a_real_socket_never_blocks():
    w = Wire()
    try:
        t0 = time.ticks_us()
        assert w.reader.poll() == link.CMD_NONE  # nothing sent: returns at once
        w.host.write(link.encode_command("HB")[:5])
        assert w.reader.poll() == link.CMD_NONE
        assert time.ticks_diff(time.ticks_us(), t0) < 20000
        w.host.write(link.encode_command("HB")[5:] + link.encode_command("GET", "sample_hz"))
        assert w.reader.poll() == link.CMD_HB
        assert w.reader.poll() == link.CMD_LINE and w.reader.args == "sample_hz"
    finally:
        w.close()


@req("SR-LNK-06")
def test_heartbeat_path_allocates_nothing():
    hb = link.encode_command("HB")
    w = Wire()
    try:
        reader = w.reader
        w.host.write(hb * 100 + (hb[:-1] + b"\r\n") * 100)
        counts = bytearray(4)
        micropython.heap_lock()
        try:
            for _ in range(400):
                counts[reader.poll()] += 1
        finally:
            micropython.heap_unlock()
        assert counts[link.CMD_HB] == 200 and counts[link.CMD_LINE] == 0 and counts[link.CMD_BAD] == 0
    finally:
        w.close()
