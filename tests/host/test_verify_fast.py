"""`log.verify` checks runs of equal records and decodes their frames with numpy; its report
is the one the record-by-record path (`verify(path, exact=True)`) gives, field for field,
on random logs: text, events, replies, corrupt and split frames, gaps, notes, mixed
channel counts, sequence wraps and board restarts, then flipped bits in headers, data
and chain, records removed, repeated or rewritten, a damaged file header, torn tails."""

import dataclasses
import hashlib
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessionlog import CONFIG, SEQ_MOD, make_session_log, telemetry
from thermoguard import log, protocol
from thermoguard.cli import main as cli_main


def records(raw: bytes) -> list[tuple[int, int]]:
    """(offset, end) of every record of an undamaged log."""
    pos = log.FILE_HEAD.size + struct.unpack_from("<I", raw, 12)[0] + 4
    out = []
    while pos + log.RECORD_SIZE <= len(raw):
        end = pos + log.RECORD_SIZE + struct.unpack_from("<I", raw, pos)[0]
        out.append((pos, end))
        pos = end
    return out


def rewrite(raw: bytes, a: int, e: int, **fields) -> bytes:
    """The record at a..e with new header fields and both CRCs made to match again."""
    n, kind, flags, res, t_ns, chain, _, _ = log.RECORD.unpack_from(raw, a)
    data = raw[a + 32 : e]
    f = dict(kind=kind, t_ns=t_ns, chain=chain, data_crc=zlib.crc32(data)) | fields
    head28 = struct.pack("<IBBHq8sI", n, f["kind"], flags, res, f["t_ns"], f["chain"], f["data_crc"])
    return raw[:a] + head28 + struct.pack("<I", zlib.crc32(head28)) + data + raw[e:]


def damage(path, rng: random.Random) -> None:
    """Damage of every kind the format describes, one to three of them."""
    raw = path.read_bytes()
    for _ in range(rng.randint(1, 3)):
        spans = records(raw)
        if len(spans) < 4:
            break
        a, e = spans[rng.randrange(len(spans) - 1)]
        what = rng.randrange(12)
        b = bytearray(raw)
        if what == 0:  # anywhere in the records
            b[rng.randrange(spans[0][0], len(b))] ^= 1 << rng.randrange(8)
        elif what == 1:  # a record header: length, kind, time, chain or a CRC
            b[a + rng.randrange(32)] ^= 1 << rng.randrange(8)
        elif what == 2:  # the host time: the length and kind stay those of the run
            b[a + 8 + rng.randrange(8)] ^= 1 << rng.randrange(8)
        elif what == 3:  # the data
            if e > a + 32:
                b[rng.randrange(a + 32, e)] ^= 1 << rng.randrange(8)
        elif what == 4:  # a burst over several records
            at, k = rng.randrange(a, len(b)), rng.randint(1, 600)
            b[at : at + k] = bytes([rng.choice([0, 0xFF, 0x55])]) * len(b[at : at + k])
        elif what == 5:  # a record removed
            del b[a:e]
        elif what == 6:  # a record repeated
            b[e:e] = raw[a:e]
        elif what == 7:  # the chain value or the data CRC of a record
            b[a + rng.choice([16, 19, 23, 24, 27])] ^= 1 << rng.randrange(8)
        elif what == 8:  # rewritten with good CRCs: only the chain shows it
            b = bytearray(rewrite(raw, a, e, t_ns=rng.randrange(1 << 40)))
        elif what == 9:  # a wrong data CRC in a header with a good CRC: the chain holds
            b = bytearray(rewrite(raw, a, e, data_crc=zlib.crc32(raw[a + 32 : e]) ^ 1 << rng.randrange(32)))
        elif what == 10:  # the file header's metadata
            b[rng.randrange(16, spans[0][0] - 4)] ^= 1 << rng.randrange(8)
        else:  # two neighbours swapped
            a2, e2 = spans[spans.index((a, e)) + 1]
            b[a:e2] = raw[a2:e2] + raw[a:e]
        raw = bytes(b)
    path.write_bytes(raw)


def tear(path, rng: random.Random) -> None:
    raw = path.read_bytes()
    spans = records(raw)
    start = spans[0][0]
    how = rng.randrange(4)
    if how == 0:
        raw = raw[: rng.randrange(start + 1, len(raw))]
    elif how == 1 and len(spans) > 2:  # a few bytes of a header after a run of equal records
        raw = raw[: spans[-2][1] + rng.randint(1, 6)]
    elif how == 2:  # zeros where the last records should be (power loss)
        cut = rng.randrange(start + 1, len(raw))
        raw = raw[:cut] + bytes(rng.randint(1, 500))
    else:
        raw = raw + bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    path.write_bytes(raw)


def assert_same(path, **kw) -> log.VerifyReport:
    fast = log.verify(path, **kw)
    ref = log.verify(path, exact=True)
    for f in dataclasses.fields(ref):
        a, b = getattr(fast, f.name), getattr(ref, f.name)
        assert a == b and type(a) is type(b), (f.name, a, b)
    assert fast.summary() == ref.summary()
    return fast


def use_small_blocks(monkeypatch):
    """Runs checked a few records at a time, records read one by one decoded a few at a time:
    block and segment edges everywhere in a small log."""
    monkeypatch.setattr(log, "_RUN_FIRST", 2)
    monkeypatch.setattr(log, "_RUN_BYTES", 2000)
    monkeypatch.setattr(log, "_SEGMENT", 3)


@pytest.fixture
def small_blocks(monkeypatch):
    use_small_blocks(monkeypatch)


@pytest.mark.req("SR-LOG-06")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_logs_verify_exactly_as_record_by_record(tmp_path, seed):
    path = tmp_path / "r.tglog"
    make_session_log(path, seed)
    rep = assert_same(path)
    assert rep.ok and rep.closed


@pytest.mark.req("SR-LOG-03", "SR-LOG-06")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), torn=st.booleans(), small=st.booleans())
def test_damaged_and_torn_logs_verify_exactly_as_record_by_record(tmp_path, monkeypatch, seed, torn, small):
    if small:
        use_small_blocks(monkeypatch)
    rng = random.Random(seed)
    path = tmp_path / "d.tglog"
    make_session_log(path, seed, steps=60)
    damage(path, rng)
    if torn:
        tear(path, rng)
    assert_same(path)


@pytest.mark.req("SR-LOG-06")
@pytest.mark.parametrize("seed", range(6))
def test_block_and_segment_edges_change_nothing(tmp_path, small_blocks, seed):
    path = tmp_path / "e.tglog"
    make_session_log(path, 1000 + seed)
    if seed % 2:
        damage(path, random.Random(seed))
    assert_same(path)


@pytest.mark.req("SR-LOG-03", "SR-LOG-06")
def test_every_kind_of_damage_inside_a_long_run(tmp_path):
    # One clean run of 1000 frames: blocks of 64, 256, then the rest. Each kind of damage
    # at records around the block edges is read by the careful reader, exactly.
    path = tmp_path / "run.tglog"
    rng = random.Random(3)
    with log.LogWriter.create(path, {"config": CONFIG}) as w:
        for i in range(1000):
            w.write_bytes(telemetry(rng, SEQ_MOD - 500 + i, 100 + i // 10, i % 10 * 100_000, 3), 10**18 + i)
    raw = path.read_bytes()
    spans = records(raw)
    clean = assert_same(path)
    assert clean.ok and clean.frames == 1000 and clean.lost == 0 and clean.restarts == 0  # through the wrap
    bad = tmp_path / "bad.tglog"
    for r in (0, 1, 63, 64, 65, 319, 320, 999):
        a, e = spans[r]
        for at in (a + 2, a + 4, a + 9, a + 17, a + 29, e - 1):
            b = bytearray(raw)
            b[at] ^= 0x10
            bad.write_bytes(b)
            rep = assert_same(bad)
            assert not rep.ok
        for blob in (raw[:a] + raw[e:], raw[:e] + raw[a:e] + raw[e:], raw[:a] + raw[a : a + 20],
                     rewrite(raw, a, e, t_ns=5), rewrite(raw, a, e, data_crc=7), raw[: e + 3]):
            bad.write_bytes(blob)
            rep = assert_same(bad)
            assert not rep.ok
    # The file header damaged: the chain restarts at the first record, unchecked there.
    head_bad = bytearray(raw)
    head_bad[20] ^= 4
    for r in (0, 1, 5, 64):
        a, e = spans[r]
        # A record altered with its CRCs made to match: the chain sees it after the first
        # record only. A wrong data CRC: always seen.
        for blob, seen in ((rewrite(bytes(head_bad), a, e, t_ns=5), r > 0),
                           (rewrite(bytes(head_bad), a, e, data_crc=7), True)):
            bad.write_bytes(blob)
            rep = assert_same(bad)
            assert [off for off, _ in rep.damage] == [0, a][: 1 + seen]


@pytest.mark.req("SR-LOG-03", "SR-LOG-06")
def test_records_after_an_end_record(tmp_path):
    # A file put together by hand, its chain made whole again: closed is what the last record says.
    path = tmp_path / "two.tglog"
    rng = random.Random(6)
    with log.LogWriter.create(path, {}) as w:
        for i in range(100):
            w.write_bytes(telemetry(rng, i, i // 10, i % 10 * 100_000, 1), 1000 + i)
    raw = path.read_bytes()
    spans = records(raw)
    end = raw[spans[-1][0] :]
    frames = raw[spans[0][0] : spans[-1][0]]
    for blob, closed in ((raw + frames, False), (raw + frames + end, True), (raw + end + end, True),
                         (raw + end + frames[: spans[3][0] - spans[0][0]], False)):
        path.write_bytes(relinked(blob, 0))
        rep = assert_same(path)
        assert rep.ok and rep.closed == closed


def relinked(blob: bytes, minor: int) -> bytes:
    """The log with another minor version, its header CRC and the whole chain made again."""
    meta_len = struct.unpack_from("<I", blob, 12)[0]
    head = bytearray(blob[: 16 + meta_len])
    struct.pack_into("<H", head, 10, minor)
    head += struct.pack("<I", zlib.crc32(head))
    out, pos, prev = bytearray(head), len(head), hashlib.sha256(head).digest()[:8]
    while pos < len(blob):
        n = struct.unpack_from("<I", blob, pos)[0]
        chain = hashlib.sha256(prev + blob[pos : pos + 16] + blob[pos + 32 : pos + 32 + n]).digest()[:8]
        out += rewrite(blob[pos : pos + 32 + n], 0, 32 + n, chain=chain)
        pos, prev = pos + 32 + n, chain
    return bytes(out)


@pytest.mark.req("SR-LOG-05", "SR-LOG-06")
def test_records_of_unknown_kinds_in_runs(tmp_path):
    path = tmp_path / "k.tglog"
    rng = random.Random(8)
    with log.LogWriter.create(path, {}) as w:
        for i in range(200):
            w.write_bytes(telemetry(rng, i, 5 + i // 10, i % 10 * 100_000, 2), 1000 + i)
            if i % 50 == 10:
                for _ in range(5):
                    w.note("same length", 1000 + i)
    raw = path.read_bytes()
    spans = records(raw)
    for i, (a, e) in enumerate(spans[:-1]):
        if i % 3 == 0 or raw[a + 4] == log.Kind.NOTE:
            raw = rewrite(raw, a, e, kind=9)  # a kind this version does not know
    for minor in (0, 1):  # damage in a 1.0 log, skipped records in a 1.1 log
        path.write_bytes(relinked(raw, minor))
        rep = assert_same(path)
        assert (rep.skipped > 0) == (minor == 1) and rep.ok == (minor == 1)


@pytest.mark.req("SR-LOG-06")
def test_runs_of_frames_are_not_fed_to_the_decoder_one_by_one(tmp_path, monkeypatch):
    path = tmp_path / "f.tglog"
    rng = random.Random(4)
    with log.LogWriter.create(path, {}) as w:
        w.write_bytes(b"boot text without a newline", 1)  # held by the Decoder until the next zero
        for i in range(2000):
            w.write_bytes(telemetry(rng, i, i // 10, i % 10 * 100_000, 8), 10 + i)
            if i == 1000:
                w.note_gap("port lost", 10 + i)
    fed = []
    feed = protocol.Decoder.feed
    monkeypatch.setattr(protocol.Decoder, "feed", lambda self, data: fed.append(len(data)) or feed(self, data))
    rep = assert_same(path)
    assert rep.frames == rep.telemetry == 2000 and rep.text_lines == 1 and len(rep.gaps) == 1
    # The reference feeds all 2001 DEVICE records; the fast path only the text record and
    # the frame after it, which ends the held line.
    assert len(fed) == 2001 + 2


@pytest.mark.req("SR-LOG-06")
def test_progress_goes_forward_to_the_end_and_the_report_is_the_same(tmp_path):
    path = tmp_path / "p.tglog"
    make_session_log(path, 77, steps=300)
    seen = []
    rep = log.verify(path, progress=seen.append)
    assert rep == log.verify(path, exact=True)
    size = path.stat().st_size
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == size and seen[0] < size


@pytest.mark.req("SR-LOG-06")
def test_the_command_can_verify_the_reference_way(tmp_path, capsys):
    path = tmp_path / "c.tglog"
    make_session_log(path, 5)
    outs = []
    for extra in ([], ["--exact"]):
        assert cli_main(["verify", "--no-progress", *extra, str(path)]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].rstrip().endswith("OK")
