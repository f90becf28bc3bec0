"""The compiled loops of the loader (thermoguard.kernels) against the reference code they
replace: protocol.cobs_decode for COBS, protocol.decode_frame for the fields, and the
careful reader for runs of equal records. tests/host/test_frames.py checks the whole
loader against protocol.Decoder on damaged logs."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from thermoguard import frames, kernels, log, protocol

LENGTHS = [protocol.TELEMETRY_FIXED + protocol.CHANNEL.size * n + 7 for n in (0, 1, 3, 8)]


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
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 41))
def test_cobs_rows_decode_and_refuse_exactly_as_the_reference(seed, n):
    rng = random.Random(seed)
    length = rng.choice(LENGTHS)
    datas = [damaged(rng, length) for _ in range(n)]
    w = (length + 7) // 8 * 8
    x = np.full((n, w), 0xA5, np.uint8)  # what an earlier chunk left in the work rows
    for i, d in enumerate(datas):
        x[i, :length] = np.frombuffer(d, np.uint8)
    ok = np.zeros(n, bool)
    fold = np.full(w // 8, 7, np.uint64)
    kernels.cobs_decode_rows(x, length, ok, fold)
    want = np.zeros(w // 8, np.uint64)
    for i in np.flatnonzero(ok):
        want ^= x[i].view(np.uint64)
    assert np.array_equal(fold, want)
    for i, d in enumerate(datas):
        whole, msg = reference(d)
        assert ok[i] == whole, (i, d.hex())
        if whole:
            assert bytes(x[i]) == b"\0\0" + msg + bytes(w - 2 - len(msg))


def test_fields_are_the_decoders_fields_and_a_wrong_kind_or_count_is_refused():
    rng = random.Random(7)
    n_ch = 3
    length = LENGTHS[2]
    temps = [[protocol.INT32_MIN, -5 * 1024, 40 * 1024 + 3] for _ in range(6)]
    payloads = [protocol.telemetry_payload(
        1000 + i, 12, 999_999 - i, 2, 1, 0, 255, 0, 0, 17, 1, 2, temps[i], [25 * 64, protocol.INT32_MIN, -3],
        [0, 0, 5 if i == 2 else 0], [1, 0, 2], [0, 0, 0], [protocol.INT32_MIN, 2048, -1],
        [rng.randrange(1 << 32) for _ in range(n_ch)], [rng.randrange(1 << 16) for _ in range(n_ch)],
        config_hash=0xDEADBEEF) for i in range(6)]
    payloads[3] = bytes([protocol.VERSION + 1]) + payloads[3][1:]  # another version
    payloads[4] = payloads[4][:36] + bytes([2]) + payloads[4][37:]  # n_channels says 2
    wire = [protocol.encode_frame(p) for p in payloads]
    x = np.zeros((len(wire), (length + 7) // 8 * 8), np.uint8)
    for i, d in enumerate(wire):
        x[i, :length] = np.frombuffer(d, np.uint8)
    ok = np.zeros(len(wire), bool)
    kernels.cobs_decode_rows(x, length, ok, np.zeros(x.shape[1] // 8, np.uint64))
    assert ok.all()
    g = frames._Group(np.arange(len(wire)), n_ch)
    kernels.telemetry_fields(x, n_ch, protocol.VERSION, protocol.KIND_TELEMETRY, ok, 0,
                             tuple(g.scalars[k] for k in frames._SCALARS), g.temp, g.cj, g.rate, g.dose,
                             g.fault, g.warn, g.trip)
    assert ok.tolist() == [True, True, True, False, False, True]
    for i, d in enumerate(wire):
        if not ok[i]:
            continue
        dec = protocol.Decoder()
        (t,) = dec.feed(d)
        for name in frames._SCALARS:
            assert g.scalars[name][i] == getattr(t, name), name
        for c, ch in enumerate(t.channels):
            for got, want in ((g.temp, ch.temp_c), (g.cj, ch.cj_c), (g.rate, ch.rate_c_per_s)):
                assert (np.isnan(got[i, c]) and want is None) or got[i, c] == want
            assert g.dose[i, c] == ch.dose_cem43
            assert (g.fault[i, c], g.warn[i, c], g.trip[i, c]) == (ch.fault, ch.warn, ch.trip)


@pytest.mark.parametrize("odd_every", [0.2, 0.02, 1e-4])
def test_equal_runs_index_the_records_the_careful_reader_reads(tmp_path, odd_every):
    """Short runs, and runs long enough for the largest blocks of the scan."""
    path = tmp_path / "runs.tglog"
    rng = random.Random(3)
    with log.LogWriter.create(path, {"board": "virtual"}) as w:
        for _ in range(300 if odd_every > 0.01 else 60_000):
            if rng.random() < odd_every:
                w.write_bytes(b"\0" + bytes(41) + b"\0")  # another length
            else:
                w.write_bytes(b"\0" + bytes(40) + b"\0")
            if rng.random() < odd_every / 10:
                w.note("a note")
    idx = log.scan_records(path)
    careful = [(off, k, t) for off, k, t, _, _ in log._Walk(log._File(path), chain=False)]
    assert idx.offsets.tolist() == [off for off, _, _ in careful]
    assert idx.kinds.tolist() == [k for _, k, _ in careful]
    assert idx.t_ns.tolist() == [t for _, _, t in careful]
