"""`frames.load_telemetry`: the vectorised loader gives exactly what protocol.Decoder gives
when it reads the log (log.decoded_items), on random logs with text, events, replies,
corrupt and torn frames, gaps, notes, several channel counts, file damage and torn tails."""

import random
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessionlog import make_session_log
from thermoguard import frames, log, protocol

INT32_MIN = protocol.INT32_MIN
CONFIG = {"sample_hz": 10, "channels": [{"name": f"c{i}"} for i in range(3)]}


def telemetry(rng: random.Random, seq: int, t: float, n: int) -> bytes:
    fault = [rng.choice([0] * 8 + list(range(1, 11))) for _ in range(n)]
    temp = [rng.choice([INT32_MIN, rng.randint(-300_000, 2_000_000), 0, 256, 1 << 16]) for _ in range(n)]
    return protocol.encode_telemetry(
        seq % protocol.SEQ_MOD, int(t), int((t % 1) * 1e6), rng.randint(0, 3), rng.randint(0, 31),
        rng.choice([0, 0, 2, 64]), rng.choice([255, 0, n - 1 if n else 255]), rng.choice([0, 1, 16]),
        rng.choice([0, 1, 7]), rng.randint(0, 5000), rng.randint(0, 3), rng.randint(0, 2), temp,
        [rng.choice([INT32_MIN, rng.randint(-2000, 6000)]) for _ in range(n)], fault,
        [rng.randint(0, 31) for _ in range(n)], [rng.choice([0, 0, 1, 8, 16]) for _ in range(n)],
        [rng.choice([INT32_MIN, rng.randint(-5000, 5000), -1]) for _ in range(n)],
        [rng.randint(0, 1 << 20) for _ in range(n)], [rng.randint(0, 65535) for _ in range(n)],
        config_hash=rng.choice([0, 0x1A2B3C4D]))


def make_log(path, seed: int, damage: bool = False, torn: bool = False) -> None:
    """A random session log (sessionlog.make_session_log); with damage, bits flipped
    anywhere after the file header; torn, cut at a random byte."""
    make_session_log(path, seed)
    rng = random.Random(seed + 1)
    if damage or torn:
        raw = bytearray(open(path, "rb").read())
        start = log.FILE_HEAD.size + struct.unpack_from("<I", raw, 12)[0] + 4
        if damage:
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(start, len(raw))
                raw[i] ^= 1 << rng.randrange(8)
        if torn:
            del raw[rng.randrange(start + 1, len(raw)):]
        open(path, "wb").write(bytes(raw))


def reference(path):
    return list(log.decoded_items(path))


def assert_same(path, **kw):
    fr = frames.load_telemetry(path, **kw)
    got = list(fr.decoded_items())
    want = reference(path)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a == b, f"item {i}: {a} != {b}"
    assert len(fr) == sum(isinstance(x, protocol.Telemetry) for _, x in want)
    return fr


@pytest.mark.req("SR-HOST-10")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_logs_load_exactly_as_the_decoder_reads_them(tmp_path, seed):
    path = tmp_path / "r.tglog"
    make_log(path, seed)
    fr = assert_same(path, chunk=16)  # small chunks: several per log, on two threads
    assert fr.fast > 0 and fr.fast + fr.slow == len(fr)


@pytest.mark.req("SR-HOST-10")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), torn=st.booleans())
def test_damaged_and_torn_logs_load_exactly_as_the_decoder_reads_them(tmp_path, seed, torn):
    path = tmp_path / "d.tglog"
    make_log(path, seed, damage=True, torn=torn)
    want_damage = log.verify(path)
    fr = assert_same(path, chunk=32, threads=1)
    if want_damage.torn_tail_offset is not None:
        assert fr.torn_tail_offset == want_damage.torn_tail_offset


@pytest.mark.req("SR-HOST-10")
def test_a_damaged_record_header_inside_a_run_is_skipped_like_the_careful_reader_does(tmp_path):
    path = tmp_path / "h.tglog"
    rng = random.Random(5)
    with log.LogWriter.create(path, {}) as w:
        for i in range(40):
            w.write_bytes(telemetry(rng, i, 10 + i / 10, 2), 1_000 + i)
    raw = bytearray(path.read_bytes())
    idx = log.scan_records(path)
    raw[int(idx.offsets[20]) + 9] ^= 4  # a bit of the host time of record 20
    path.write_bytes(bytes(raw))
    fr = assert_same(path)
    assert len(fr) == 39 and len(fr.damage) == 1 and fr.fast == 39
    for r in (20, 3, 30):  # record 20 mended; the same bit of two other headers: equal syndromes, still found
        raw[int(idx.offsets[r]) + 9] ^= 4
    path.write_bytes(bytes(raw))
    fr = assert_same(path)
    assert len(fr) == 38 and len(fr.damage) == 2


@pytest.mark.req("SR-HOST-10", "SR-LNK-04")
def test_arrays_hold_the_frame_fields_with_nan_for_missing_values(tmp_path):
    path = tmp_path / "f.tglog"
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i in range(5):
            w.write_bytes(protocol.encode_telemetry(
                100 + i, 7, 100_000 * i, 2, 1, 0, 255, 0, 0, 10, 0, 0,
                [37 * 1024 + i, INT32_MIN, 40 * 1024], [25 * 1024, 25 * 1024, 0], [0, 0, 1], [0, 1, 0], [0, 0, 16],
                [512, INT32_MIN, 99], [1024 * i, 0, 5], [32768, 0, 1], config_hash=0xDEADBEEF), 5_000 + i)
        w.write_bytes(protocol.encode_event(105, 7, 600_000, protocol.EV_TRIP, 3, "c2:open"), 6_000)
    fr = frames.load_telemetry(path)
    assert fr.names == ["c0", "c1", "c2"] and len(fr) == 5 and fr.fast == 5
    assert fr.seq.tolist() == [100, 101, 102, 103, 104]
    assert fr.t_dev_s.tolist() == [7.0, 7.1, 7.2, 7.3, 7.4]
    assert fr.t_host_ns.tolist() == [5_000, 5_001, 5_002, 5_003, 5_004]
    assert fr.interlock.all() and (fr.state == 2).all() and (fr.config_hash == 0xDEADBEEF).all()
    assert fr.temp_c[:, 0].tolist() == [37 + i / 1024 for i in range(5)]
    assert np.isnan(fr.temp_c[:, 1]).all()  # no reading: INT32_MIN on the wire
    assert np.isnan(fr.temp_c[:, 2]).all() and (fr.fault[:, 2] == 1).all()  # faulted: never a temperature
    assert np.isnan(fr.rate_c_per_s[:, 1:]).all() and fr.rate_c_per_s[0, 0] == 0.5
    assert fr.dose_cem43[:, 0].tolist() == [i + 32768 / 2**26 for i in range(5)]
    assert (fr.warn[:, 1] == 1).all() and (fr.trip[:, 2] == 16).all()
    (at, t_ns, ev), = fr.items
    assert at == 5 and t_ns == 6_000 and ev.text == "c2:open"


@pytest.mark.req("SR-HOST-10")
def test_one_thread_and_two_threads_agree_and_a_text_line_held_before_a_frame_comes_first(tmp_path):
    path = tmp_path / "t.tglog"
    rng = random.Random(9)
    with log.LogWriter.create(path, {}) as w:
        for i in range(300):
            if i % 50 == 7:
                w.write_bytes(b"printed without a newline", 10 * i)
            w.write_bytes(telemetry(rng, i, i / 10, 4), 10 * i + 1)
    a = assert_same(path, threads=1, chunk=64)
    b = assert_same(path, threads=2, chunk=64)
    assert np.array_equal(a.temp_c, b.temp_c, equal_nan=True) and a.fast == b.fast
    texts = [x for _, _, x in a.items if isinstance(x, protocol.Text)]
    assert [t.text for t in texts] == ["printed without a newline"] * 6


@pytest.mark.req("SR-HOST-10")
def test_empty_and_frameless_logs(tmp_path):
    path = tmp_path / "e.tglog"
    with log.LogWriter.create(path, {}) as w:
        w.write_bytes(b"boot text only\n")
    fr = assert_same(path)
    assert len(fr) == 0 and fr.temp_c.shape == (0, 0) and len(fr.items) == 1
    with pytest.raises(log.LogError):
        frames.load_telemetry(tmp_path / "missing.tglog")


def uniform_log(path, seed: int, n: int = 3) -> None:
    rng = random.Random(seed)
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i in range(200):
            w.write_bytes(telemetry(rng, i, 5 + i / 10, n), 10 * i)
            if i % 40 == 3:
                w.write_bytes(protocol.encode_event(i, 5, 0, protocol.EV_TRIP, 3, "c1:high,rate") + b"text\n", 10 * i)


@pytest.mark.req("SR-HOST-10", "SR-EXP-01")
@pytest.mark.parametrize("seed", [3, 4, 6, 12, -1, -2])
def test_export_through_the_loader_writes_the_same_bytes_as_the_per_frame_export(tmp_path, seed):
    from thermoguard import export

    path = tmp_path / "x.tglog"
    if seed < 0:
        uniform_log(path, seed, n=3 if seed == -1 else 8)
    else:
        make_log(path, seed, damage=seed == 6)
    rows = [(t, x) for t, x in log.decoded_items(path, host_notes=False) if isinstance(x, protocol.Telemetry)]
    fr, names, _ = export.load(path)
    assert names == export.channel_names(fr.meta, rows[0][1] if rows else None)
    export._write_csv_rows(rows, names, tmp_path / "a.csv")  # the per-frame writer, as it was
    export.write_csv(fr, names, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    if seed < 0:
        export._write_npz_rows(rows, names, tmp_path / "a.npz")
        export.write_npz(fr, names, tmp_path / "b.npz")
        assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def code_positions(frame: bytes) -> set[int]:
    """Positions of the COBS code bytes of a one-block frame (00 code ... 00)."""
    pos, out = 1, set()
    while pos < len(frame) - 1:
        out.add(pos)
        pos += frame[pos]
    return out


@pytest.mark.req("SR-HOST-10")
@pytest.mark.parametrize("bad", [[7], [3, 40], [3, 4], [0, 21, 50], [5, 6, 7, 8], list(range(10, 60, 2))])
def test_frames_with_the_same_damage_in_one_chunk_are_all_found(tmp_path, bad):
    # The link CRCs of a chunk are checked together first (the XOR of the frames and all of
    # them in a row): the same flipped bit in two frames cancels in the XOR, so this is
    # what the second check is for. Each bad frame must read as the Decoder reads it.
    path = tmp_path / "s.tglog"
    rng = random.Random(11)
    sent = [telemetry(rng, i, 3 + i / 10, 2) for i in range(64)]
    common = set(range(2, len(sent[0]) - 1))
    for f in sent:
        common -= code_positions(f)
    p = min(c for c in common if c >= 2 + protocol.TELEMETRY_FIXED)  # inside the channel fields
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i, f in enumerate(sent):
            if i in bad:
                b = bytearray(f)
                b[p] ^= 0x40 if b[p] != 0x40 else 0x20  # a payload byte, still not 0: the COBS chain holds
                f = bytes(b)
            w.write_bytes(f, 1_000 + i)
    for chunk in (64, 16):
        fr = assert_same(path, chunk=chunk, threads=1)
        assert len(fr) == 64 - len(bad) and fr.fast == len(fr)
        assert [s for s in fr.seq.tolist()] == [i for i in range(64) if i not in bad]
    assert log.verify(path).crc_errors == len(bad)


@pytest.mark.req("SR-HOST-10")
@pytest.mark.parametrize("damaged_length", [False, True])
def test_a_run_taken_on_trust_that_hides_other_records_is_scanned_again(tmp_path, monkeypatch, damaged_length):
    """The loader's scan takes runs of telemetry records on trust, reading only the first
    and last header of a block (log.scan_file). Here the grid of equal records comes back
    into step after other records: a text record and a frame of another length that fill
    exactly two records' room, or a record whose length field is damaged. Decoding finds
    the headers that are not what the index says, and the log is scanned again record by
    record: the result is still exactly the Decoder's."""
    rng = random.Random(11)
    path = tmp_path / "realigned.tglog"
    length = protocol.TELEMETRY_FIXED + protocol.CHANNEL.size * 8 + 7
    short = protocol.TELEMETRY_FIXED + 7  # a frame of no channels
    text = b"x" * (2 * length - short)  # with the short frame: two records of room
    with log.LogWriter.create(path, {"config": None}) as w:
        for i in range(400):
            w.write_bytes(telemetry(rng, i, 10 + i / 10, 8))
            if i == 150 and not damaged_length:
                w.write_bytes(text)
                w.write_bytes(telemetry(rng, i, 10 + i / 10, 0))
    if damaged_length:  # record 150's length field says one byte more
        raw = bytearray(path.read_bytes())
        idx = log.scan_records(path)
        raw[int(idx.offsets[150])] += 1
        path.write_bytes(bytes(raw))
    scans = []
    real = log.scan_file
    monkeypatch.setattr(log, "scan_file", lambda f, *a: scans.append(a) or real(f, *a))
    fr = assert_same(path)
    assert len(scans) == 2 and scans[0] and not scans[1]  # on trust, then record by record
    assert fr.fast >= 398


@pytest.mark.req("SR-HOST-10")
def test_a_damaged_header_that_still_has_the_runs_length_is_resynchronised_like_the_careful_reader(tmp_path):
    """A text record one byte shorter than the frames around it; one bit of its length
    flipped makes it look like one more record of the run (its header CRC fails). The
    careful reader resynchronises after it and finds the next frame; so must the loader,
    which would otherwise skip that frame with the damaged record."""
    rng = random.Random(1)
    path = tmp_path / "flip.tglog"
    length = protocol.TELEMETRY_FIXED + protocol.CHANNEL.size + 7
    with log.LogWriter.create(path, {"config": None}) as w:
        for i in range(100):
            w.write_bytes(telemetry(rng, i, 10 + i / 10, 1), 1000 + i)
            if i == 40:
                w.write_bytes(b"t" * (length - 2) + b"\n", 5000)  # its own record, 1 byte short
    raw = bytearray(path.read_bytes())
    idx = log.scan_records(path)
    (text,) = np.flatnonzero(idx.lengths == length - 1)
    raw[int(idx.offsets[text])] ^= 1  # length - 1 -> length
    path.write_bytes(bytes(raw))
    fr = assert_same(path)
    assert len(fr) == 100 and fr.damage == log.read_log(path).damage
    assert log.scan_records(path).offsets.tolist() == [off for off, *_ in log._Walk(log._File(path), chain=False)]



@pytest.mark.req("SR-HOST-10")
@pytest.mark.parametrize("damage", [None, "header", "frame"])
def test_clean_chunks_are_checked_whole_and_a_damaged_one_row_by_row(tmp_path, monkeypatch, damage):
    """The record header CRCs and link CRCs of a chunk are checked together (two CRC-32s
    over the chunk's rows, frames._rows_crcs_ok). On a clean log no header and no frame
    is checked on its own. A header whose host time has a flipped bit, or a frame with a
    flipped payload bit, makes its chunk checked row by row: the result is the Decoder's."""
    rng = random.Random(5)
    path = tmp_path / "c.tglog"
    sent = [telemetry(rng, i, 3 + i / 10, 2) for i in range(96)]
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i, f in enumerate(sent):
            w.write_bytes(f, 1_000 + i)
    raw = bytearray(path.read_bytes())
    k = 30  # record k holds frame k, inside the first block the scan takes on trust
    at = int(log.scan_records(path).offsets[k])
    if damage == "header":
        raw[at + 9] ^= 0x10  # host time: length and kind still match the run
    elif damage == "frame":
        p = log.RECORD_SIZE + min(set(range(2 + protocol.TELEMETRY_FIXED, len(sent[k]) - 1)) - code_positions(sent[k]))
        raw[at + p] ^= 0x40 if raw[at + p] != 0x40 else 0x20  # still not 0: the COBS chain holds
    path.write_bytes(bytes(raw))
    alone = []
    for name in ("_headers_ok", "_link_crcs"):
        real = getattr(frames, name)
        monkeypatch.setattr(frames, name, lambda *a, _real=real, _name=name: alone.append(_name) or _real(*a))
    fr = assert_same(path, chunk=32, threads=1)
    assert (k in fr.seq.tolist()) == (damage is None)
    if damage is None:
        assert alone == [] and fr.fast == 96
    else:
        assert ("_headers_ok" if damage == "header" else "_link_crcs") in alone and fr.fast == 95


def test_the_mapping_of_a_large_log_is_unmapped_apart_after_loading(tmp_path, monkeypatch):
    path = tmp_path / "t.tglog"
    make_log(path, seed=3, damage=True)  # damage: items read from the mapping too
    monkeypatch.setattr(log, "_UNMAP_APART_FROM", 0)  # every log is large
    unmapped_by = {}  # file: the thread that unmapped it
    unmap = log._File._unmap

    class Recorded(log._File):
        def _unmap(self):
            unmapped_by[self] = threading.current_thread()
            unmap(self)

    monkeypatch.setattr(log, "_File", Recorded)
    fr = frames.load_telemetry(path)
    end = time.monotonic() + 10
    while not unmapped_by and time.monotonic() < end:
        time.sleep(0.01)
    (f, thread), = unmapped_by.items()
    assert f.buf.closed and thread is not threading.main_thread()
    # The result outlives the mapping.
    assert len(fr) and fr.items and fr.damage
    assert list(fr.decoded_items()) == reference(path)
    # A small log, and any with wait=True, is unmapped before close returns; so is a large
    # one when no thread can be started.
    monkeypatch.setattr(log, "_UNMAP_APART_FROM", path.stat().st_size + 1)
    g = Recorded(path)
    g.close(wait=False)
    assert g.buf.closed and unmapped_by[g] is threading.current_thread()
    monkeypatch.setattr(log, "_UNMAP_APART_FROM", 0)

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    h = Recorded(path)
    h.close(wait=False)
    assert h.buf.closed and unmapped_by[h] is threading.current_thread()


def clean_log(path, n: int = 96) -> list[bytes]:
    rng = random.Random(5)
    sent = [telemetry(rng, i, 3 + i / 10, 2) for i in range(n)]
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i, f in enumerate(sent):
            w.write_bytes(f, 1_000 + i)
    return sent


@pytest.mark.req("SR-HOST-10")
def test_a_record_whose_data_is_another_whole_frame_is_damage_as_the_careful_reader_says(tmp_path):
    """Record 30's data replaced by record 31's (a misplaced block): every byte of it is a
    valid frame, but not the data its header's CRC was made of. The careful reader skips
    it as damaged; so must the loader, which checks the data CRCs of a chunk together."""
    path = tmp_path / "moved.tglog"
    clean_log(path)
    idx = log.scan_records(path)
    raw = bytearray(path.read_bytes())
    a, b, n = int(idx.offsets[30]) + log.RECORD_SIZE, int(idx.offsets[31]) + log.RECORD_SIZE, int(idx.lengths[30])
    raw[a:a + n] = raw[b:b + n]
    path.write_bytes(bytes(raw))
    fr = assert_same(path, chunk=32, threads=1)
    assert 30 not in fr.seq.tolist() and fr.seq.tolist().count(31) == 1
    assert fr.damage == log.verify(path).damage and "data CRC" in fr.damage[0][1]


@pytest.mark.req("SR-HOST-10")
def test_a_record_whose_header_and_frame_damage_cancel_in_one_crc_is_still_found(tmp_path):
    """Record 30: a host-time bit of its header flipped (its header CRC fails), and its
    frame's link CRC chosen so that the whole row's CRC-32 is what a valid row gives. The
    loader checks headers and frames apart in its XOR of the chunk, so the header still
    shows; the careful reader resynchronises after it."""
    path = tmp_path / "cancel.tglog"
    clean_log(path)
    off = int(log.scan_records(path).offsets[30])
    raw = bytearray(path.read_bytes())
    n = struct.unpack_from("<I", raw, off)[0]
    payload = protocol.cobs_decode(bytes(raw[off + 33:off + 31 + n]))[:-4]
    width = (log.RECORD_SIZE + n + 7) // 8 * 8

    def row(head: bytes, crc: int) -> bytes:  # as the loader holds a decoded record
        r = bytes(head) + b"\0\0" + payload + crc.to_bytes(4, "little")
        return r + bytes(width - len(r))

    good, bad = bytes(raw[off:off + 32]), bytearray(raw[off:off + 32])
    bad[9] ^= 0x10
    # A link CRC c with crc32(row(bad, c)) == crc32(row(good, true CRC)): solve over GF(2),
    # c's bits being the unknowns (the CRC of the row is affine in them).
    base = zlib.crc32(row(bytes(bad), 0))
    need = zlib.crc32(row(good, zlib.crc32(payload))) ^ base
    basis: list[tuple[int, int]] = []
    for bit in range(32):
        v, comb = zlib.crc32(row(bytes(bad), 1 << bit)) ^ base, 1 << bit
        for bv, bc in basis:
            if v ^ bv < v:
                v, comb = v ^ bv, comb ^ bc
        if v:
            basis = sorted(basis + [(v, comb)], reverse=True)
    c = 0
    for bv, bc in basis:
        if need ^ bv < need:
            need, c = need ^ bv, c ^ bc
    assert need == 0 and zlib.crc32(row(bytes(bad), c)) == zlib.crc32(row(good, zlib.crc32(payload)))
    frame = b"\0" + protocol.cobs_encode(payload + c.to_bytes(4, "little")) + b"\0"
    assert len(frame) == n
    head = bytearray(good)
    struct.pack_into("<I", head, 24, zlib.crc32(frame))  # the data CRC of the new frame
    struct.pack_into("<I", head, 28, zlib.crc32(bytes(head[:28])))
    head[9] ^= 0x10  # then the flip: the header CRC fails
    raw[off:off + 32 + n] = bytes(head) + frame
    path.write_bytes(bytes(raw))
    fr = assert_same(path, chunk=32, threads=1)
    assert 30 not in fr.seq.tolist() and fr.damage == log.verify(path).damage
