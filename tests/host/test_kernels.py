"""The compiled loops of the loader (thermoguard.kernels) against the reference code they
replace: protocol.cobs_decode for COBS, protocol.decode_frame for the fields, and the
careful reader for runs of equal records. tests/host/test_frames.py checks the whole
loader against protocol.Decoder on damaged logs."""

import random
import struct
import zlib

import numpy as np
import pytest
import test_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from thermoguard import arrays, frames, kernels, log, protocol

# 4 channels: start + length is a multiple of 8 with start 32 or 0, so a row has no byte
# past the data.
LENGTHS = [protocol.TELEMETRY_FIXED + protocol.CHANNEL.size * n + 7 for n in (0, 1, 3, 4, 8)]


def reference(data: bytes):
    """(whole frame, message) as the rows should read: message None when not a frame."""
    if data[0] != 0 or data[-1] != 0 or 0 in data[1:-1]:
        return False, None
    msg = protocol.cobs_decode(data[1:-1])
    if msg is None or len(msg) != len(data) - 3:
        return False, None
    return True, msg


def damaged(rng: random.Random, length: int) -> bytes:
    """A frame of `length` record bytes, then maybe damaged in the ways that matter here."""
    payload = bytes(rng.choice([0, 0, 0, 1, 0xFE, 0xFF, rng.randrange(256)]) for _ in range(length - 7))
    data = bytearray(protocol.encode_frame(payload))
    assert len(data) == length
    how = rng.randrange(6)
    if how == 1:  # any byte set to any value: a zero inside, a code too long or too short
        data[rng.randrange(length)] = rng.choice([0, 1, 2, 0xFF, rng.randrange(256)])
    elif how == 2:  # several bytes
        for _ in range(rng.randint(2, 6)):
            data[rng.randrange(length)] = rng.randrange(256)
    elif how == 3:  # no delimiters at all
        data = bytearray(rng.randrange(1, 256) for _ in range(length))
    return bytes(data)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 41), start=st.sampled_from([0, log.RECORD_SIZE]))
def test_cobs_rows_decode_and_refuse_exactly_as_the_reference(seed, n, start):
    """Rows of data only (log.verify) and of whole records, the header first (the loader):
    the header is left as it is, and the fold covers the whole row."""
    rng = random.Random(seed)
    length = rng.choice(LENGTHS)
    datas = [damaged(rng, length) for _ in range(n)]
    heads = [bytes(rng.randrange(256) for _ in range(start)) for _ in range(n)]
    w = (start + length + 7) // 8 * 8
    x = np.full((n, w), 0xA5, np.uint8)  # what an earlier chunk left in the work rows
    for i, d in enumerate(datas):
        x[i, :start] = np.frombuffer(heads[i], np.uint8)
        x[i, start:start + length] = np.frombuffer(d, np.uint8)
    ok = np.zeros(n, bool)
    fold, raw = np.full(w // 8, 7, np.uint64), np.full(w // 8, 7, np.uint64)
    as_copied = x.copy()
    as_copied[:, start + length:] = 0
    kernels.cobs_decode_rows(x, start, length, ok, fold, raw)
    want = np.zeros(w // 8, np.uint64)
    for i in np.flatnonzero(ok):
        want ^= x[i].view(np.uint64)
    assert np.array_equal(fold, want)
    assert np.array_equal(raw, np.bitwise_xor.reduce(as_copied.view(np.uint64), axis=0))
    for i, d in enumerate(datas):
        whole, msg = reference(d)
        assert ok[i] == whole, (i, d.hex())
        assert bytes(x[i, :start]) == heads[i]
        assert not x[i, start + length:].any()
        if whole:
            assert bytes(x[i, start:]) == b"\0\0" + msg + bytes(w - start - 2 - len(msg))


def test_fields_are_the_decoders_fields_and_a_wrong_kind_or_count_is_refused():
    rng = random.Random(7)
    n_ch = 3
    length = LENGTHS[2]
    temps = [[protocol.INT32_MIN, -5 * 1024, 40 * 1024 + 3] for _ in range(6)]
    payloads = [protocol.telemetry_payload(
        1000 + i, 12, 999_999 - i, 2, 1, 0, 255, 0, 0, 17, 1, 2, temps[i], [25 * 64, protocol.INT32_MIN, -3],
        [0, 0, 0], [1, 0, 2], [0, 0, 0], [protocol.INT32_MIN, 2048, -1],
        [rng.randrange(1 << 32) for _ in range(n_ch)], [rng.randrange(1 << 16) for _ in range(n_ch)],
        config_hash=0xDEADBEEF) for i in range(6)]
    # A fault code beside values (the encoder writes "no value" for a faulted channel; a
    # board might not): the Decoder reads no value, and so must the loader.
    at = protocol.TELEMETRY_FIXED + protocol.CHANNEL.size * 2 + 6
    payloads[2] = payloads[2][:at] + bytes([5]) + payloads[2][at + 1:]
    payloads[3] = bytes([protocol.VERSION + 1]) + payloads[3][1:]  # another version
    payloads[4] = payloads[4][:36] + bytes([2]) + payloads[4][37:]  # n_channels says 2
    payloads[5] = payloads[5][:15] + bytes([0x7F]) + payloads[5][16:]  # every flag, the interlock's too
    payloads[0] = payloads[0][:15] + bytes([0x7E]) + payloads[0][16:]  # every flag but the interlock's
    wire = [protocol.encode_frame(p) for p in payloads]
    # Rows as the loader holds them: the record header (kernels.HEAD bytes), then the frame.
    x = np.zeros((len(wire), (kernels.HEAD + length + 7) // 8 * 8), np.uint8)
    for i, d in enumerate(wire):
        x[i, :kernels.HEAD] = np.frombuffer(record(log.Kind.DEVICE, -5 + 10**15 * i, d)[:log.RECORD_SIZE], np.uint8)
        x[i, kernels.HEAD:kernels.HEAD + length] = np.frombuffer(d, np.uint8)
    x[1, 4] = log.Kind.NOTE  # a header that is not the record the index says: kind,
    x[2, 0] += 1  # and length
    ok = np.zeros(len(wire), bool)
    kernels.cobs_decode_rows(x, kernels.HEAD, length, ok, *np.zeros((2, x.shape[1] // 8), np.uint64))
    assert ok.all()
    rec = np.array([5, 3, 0, 1, 4, 2]) + 10
    t_ns = np.zeros(20, np.int64)
    g = frames._Group(rec, n_ch, length)
    misread = kernels.telemetry_fields(
        x, n_ch, length, log.Kind.DEVICE, protocol.VERSION, protocol.KIND_TELEMETRY, protocol.FL_INTERLOCK_ON, ok,
        0, rec, t_ns, tuple(g.scalars[k] for k in frames._SCALARS), (g.t_dev, g.t_host, g.interlock),
        g.temp, g.cj, g.rate, g.dose, g.fault, g.warn, g.trip)
    assert misread == 2
    assert ok.tolist() == [True, True, True, False, False, True]
    assert g.t_host.tolist() == [-5 + 10**15 * i for i in range(6)]
    assert t_ns[rec].tolist() == g.t_host.tolist() and not t_ns[:10].any()
    for i, d in enumerate(wire):
        if not ok[i]:
            continue
        dec = protocol.Decoder()
        (t,) = dec.feed(d)
        for name in frames._SCALARS:
            assert g.scalars[name][i] == getattr(t, name), name
        assert g.t_dev[i] == t.t_s + t.t_us / 1e6
        assert g.interlock[i] == t.interlock_on
        for c, ch in enumerate(t.channels):
            for got, want in ((g.temp, ch.temp_c), (g.cj, ch.cj_c), (g.rate, ch.rate_c_per_s)):
                assert (np.isnan(got[i, c]) and want is None) or got[i, c] == want
            assert g.dose[i, c] == ch.dose_cem43
            assert (g.fault[i, c], g.warn[i, c], g.trip[i, c]) == (ch.fault, ch.warn, ch.trip)
    assert g.interlock[[0, 5]].tolist() == [False, True]


def frame_like(rng: random.Random, n: int) -> bytes:
    """A record's worth of device bytes: 00, n bytes that are never 0, 00 (the writer cuts at zeros)."""
    return b"\0" + bytes(rng.randrange(1, 256) for _ in range(n)) + b"\0"


def index_columns(idx):
    return (idx.offsets.tolist(), idx.lengths.tolist(), idx.kinds.tolist(), idx.t_ns.tolist(),
            idx.damage, idx.torn_tail_offset, idx.closed)


@pytest.mark.parametrize("odd_every", [0.2, 0.02, 1e-4])
def test_equal_runs_index_the_records_the_careful_reader_reads(tmp_path, odd_every):
    """Short runs, and runs long enough for the largest blocks of the scan."""
    path = tmp_path / "runs.tglog"
    rng = random.Random(3)
    with log.LogWriter.create(path, {"board": "virtual"}) as w:
        for _ in range(300 if odd_every > 0.01 else 20_000):
            w.write_bytes(frame_like(rng, 41 if rng.random() < odd_every else 40))
            if rng.random() < odd_every / 10:
                w.note("a note")
    idx = log.scan_records(path)
    with log._File(path) as f:
        careful = [(off, k, t, b - a) for off, k, t, a, b in log._Walk(f, chain=False)]
    assert idx.offsets.tolist() == [off for off, _, _, _ in careful]
    assert idx.kinds.tolist() == [k for _, k, _, _ in careful]
    assert idx.t_ns.tolist() == [t for _, _, t, _ in careful]
    assert idx.lengths.tolist() == [n for _, _, _, n in careful]
    assert max(np.bincount(idx.lengths)) > (250 if odd_every > 0.01 else 19_000) // 2  # long runs: 42-byte records


def record(kind: int, t_ns: int, data: bytes) -> bytes:
    """One record as docs/log-format.md lays it out (a chain value of zeros)."""
    head28 = struct.pack("<IBBHq", len(data), kind, 0, 0, t_ns) + bytes(8) + struct.pack("<I", zlib.crc32(data))
    return head28 + struct.pack("<I", zlib.crc32(head28)) + data


def test_a_run_stops_before_a_header_whose_crc_fails():
    rng = random.Random(5)
    records = b"".join(record(log.Kind.DEVICE, 1000 + i, frame_like(rng, 40)) for i in range(20))
    buf = np.frombuffer(records, np.uint8).copy()
    stride = log.RECORD_SIZE + 42
    assert kernels._crc32(buf, 0, 28, kernels.CRC_TABLE) == int.from_bytes(records[28:32], "little")
    offsets, t_ns = np.zeros(20, np.int64), np.zeros(20, np.int64)
    assert kernels.equal_run(buf, 0, len(buf), 20, offsets, t_ns, kernels.CRC_TABLE) == 20
    assert offsets.tolist() == [i * stride for i in range(20)] and t_ns.tolist() == [1000 + i for i in range(20)]
    buf[7 * stride + 12] ^= 4  # a bit of record 7's host time: its length and kind still match
    assert kernels.equal_run(buf, 0, len(buf), 20, offsets, t_ns, kernels.CRC_TABLE) == 7


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_the_loaders_trusted_scan_ends_as_the_strict_scan(tmp_path, seed):
    """frames.load_telemetry scans with runs of telemetry taken on trust (log.scan_file)
    and checks every hidden header while decoding. On logs whose runs come back into step
    after other records, with records of telemetry length that are no frames, bit flips
    and torn tails: either decoding finds a header to distrust (and the loader scans
    again), or the index it ends with is the strict scan's, host times included; and the
    loader's result is the Decoder's.

    One difference is allowed: a record whose data CRC fails (its header is good) may be
    in one index and listed as damage by the other scan. A scan lists it when it reads
    that record on its own, and indexes it when the record is inside a run (runs leave
    data CRCs to whoever reads the data: the loader checks such a record before the
    Decoder reads it); the two scans' runs need not end at the same records."""
    rng = random.Random(seed)
    path = tmp_path / "trust.tglog"
    n_ch = rng.choice([0, 1, 8])
    length = protocol.TELEMETRY_FIXED + protocol.CHANNEL.size * n_ch + 7
    stride = log.RECORD_SIZE + length
    with log.LogWriter.create(path, {}, force=True) as w:  # hypothesis reuses tmp_path
        total = rng.choice([70, 330, 1400])
        odd_at = set(rng.sample(range(total), rng.randint(0, 4)))
        for i in range(total):
            w.write_bytes(test_frames.telemetry(rng, i, i / 10, n_ch), 1000 + i)
            if i in odd_at:
                k = rng.randint(1, 3)
                c = rng.randrange(5)
                if c == 0:  # one text record of k records' room: the grid comes back into step
                    w.write_bytes(bytes(rng.randrange(1, 256) for _ in range(k * stride - 32)), 7)
                elif c == 1:  # two records filling k + 1 records' room
                    a = rng.randint(1, (k + 1) * stride - 64 - 1)
                    w.write_bytes(b"y" * a, 7)
                    w.note("n" * ((k + 1) * stride - 64 - a), 7)
                elif c == 2:
                    w.note("z" * length, 7)
                elif c == 3:  # a DEVICE record of telemetry length that is no frame
                    w.write_bytes(b"\0" + b"\1" * (length - 2) + b"\0", 7)
                else:  # a text line and the frame of another channel count
                    w.write_bytes(b"text\n", 7)
                    w.write_bytes(test_frames.telemetry(rng, i, i / 10, (n_ch + 1) % 9), 7)
    raw = bytearray(path.read_bytes())
    start = log.FILE_HEAD.size + int.from_bytes(raw[12:16], "little") + 4
    for _ in range(rng.choice([0, 0, 1, 3])):
        raw[rng.randrange(start, len(raw))] ^= 1 << rng.randrange(8)
    if rng.random() < 0.4:
        del raw[rng.randrange(start + 1, len(raw)):]
    path.write_bytes(bytes(raw))
    with log._File(path) as f:
        trusted = log.scan_file(f, frozenset(log._TELEMETRY_LENGTHS))
        b = np.frombuffer(f.buf, np.uint8)
        groups = frames._decode_groups(b, trusted, 2, 64)
        del b
        strict = log.scan_file(f)
    if not any(g.misread or not g.head_ok.all() for g in groups):
        data_bad = [off for off, why in trusted.damage + strict.damage if "data CRC" in why]
        for name in ("offsets", "lengths", "kinds", "t_ns"):
            a, b = (getattr(idx, name)[~np.isin(idx.offsets, data_bad)].tolist() for idx in (trusted, strict))
            assert a == b, name
        assert [d for d in trusted.damage if d[0] not in data_bad] == [d for d in strict.damage if d[0] not in data_bad]
        assert (trusted.torn_tail_offset, trusted.closed) == (strict.torn_tail_offset, strict.closed)
    test_frames.assert_same(path, chunk=64)


def test_without_a_folder_for_numbas_cache_the_loops_are_compiled_all_the_same(monkeypatch):
    """numba refuses cache=True at import where it can write no cache (a read-only install
    and no home folder): kernels.njit compiles without the cache then."""
    calls = []

    def fake_njit(**options):
        calls.append(options)
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'kernels.py'")
        return lambda fn: fn

    monkeypatch.setattr(kernels, "_njit", fake_njit)
    compiled = kernels.njit(inline="always")(lambda: 7)
    assert compiled() == 7
    assert calls == [{"nogil": True, "cache": True, "inline": "always"}, {"nogil": True, "inline": "always"}]


def test_records_are_grouped_by_length_in_record_order():
    groups = np.full(50, -1, np.int64)
    groups[[10, 20, 40]] = [0, 1, 2]
    kinds = np.array([1, 1, 2, 1, 1, 1, 1, 1], np.uint8)
    lengths = np.array([20, 10, 10, 40, 20, 99, 11, 20], np.uint32)  # 99: past the end of groups
    order = np.full(len(kinds), -7, np.int64)
    ends = kernels.group_by_length(kinds, lengths, 1, groups, order)
    assert ends.tolist() == [1, 4, 5]
    assert order[:5].tolist() == [1, 0, 4, 7, 3]


@pytest.mark.parametrize("shape,dtype", [((3,), np.uint8), ((1 << 20,), bool), ((300_000, 8), np.float64),
                                         ((5 << 20,), np.uint32)])
def test_large_arrays_start_on_a_huge_page_boundary(shape, dtype):
    a = arrays.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    if a.nbytes >= 1 << 20:
        assert a.ctypes.data % arrays.HUGE_PAGE == 0
    a[...] = 1  # every byte of it is memory of its own
    assert a.sum() == a.size
