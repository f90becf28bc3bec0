"""The session log: round trip, splitting, torn tails, damage, versions, verify, fast scan."""

import hashlib
import json
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tgfw import codes
from thermoguard import __version__
from thermoguard import log as lg
from thermoguard import protocol as p
from thermoguard.framing import Splitter

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text())
GOLDEN = [(v, bytes.fromhex(v["wire_hex"])) for k in ("telemetry", "events", "replies") for v in VECTORS[k]]
META = {"firmware": "0.1.0", "board": "virtual", "config": {"sample_hz": 10}, "config_hash": "1a2b3c4d",
        "operator": "J. Doe", "probe": {"lot": 7}}


def tel(seq, t_s=0, t_us=0, n=2):
    return p.encode_telemetry(seq, t_s, t_us, codes.ARMED, 31, 0, 0, 0, 0, 0, 0, 0,
                              [37 * 1024] * n, [25 * 1024] * n, [0] * n, [0] * n, [0] * n, [0] * n,
                              [0] * n, [0] * n, config_hash=0xCAFE)


def device(contents):
    return b"".join(r.data for r in contents.records if r.kind == lg.Kind.DEVICE)


def small_log(path):
    """A few records of every kind, with known times."""
    with lg.LogWriter.create(path, META) as w:
        w.write_bytes(b"MPY: soft reboot\r\n", t_ns=1000)
        w.write_bytes(GOLDEN[0][1] + GOLDEN[5][1], t_ns=2000)
        w.note_gap("port lost: [Errno 5] Input/output error", t_ns=3000)
        w.note("probe moved \u00b0C", t_ns=4000)
        w.write_bytes(GOLDEN[12][1], t_ns=5000)
    return lg.read_log(path)


def rewrite_record(blob, off, data=None, **fields):
    """A record at off rebuilt with new data or header fields, CRCs made to match again."""
    n, kind, flags, res, t_ns, chain, _, _ = lg.RECORD.unpack_from(blob, off)
    old = bytes(blob[off + 32 : off + 32 + n])
    data = old if data is None else data
    f = dict(n=len(data), kind=kind, flags=flags, res=res, t_ns=t_ns, chain=chain) | fields
    head28 = struct.pack("<IBBHq8sI", f["n"], f["kind"], f["flags"], f["res"], f["t_ns"], f["chain"],
                         zlib.crc32(data))
    return blob[:off] + head28 + struct.pack("<I", zlib.crc32(head28)) + data + blob[off + 32 + n :]


# Round trip


@pytest.mark.req("SR-LOG-01")
def test_round_trip_keeps_records_times_and_metadata(tmp_path):
    c = small_log(tmp_path / "s.tglog")
    assert c.version == "1.0" and c.closed and not c.damage and c.torn_tail_offset is None
    for key, value in META.items():
        assert c.meta[key] == value  # unknown keys are kept too
    assert c.meta["thermoguard"] == __version__
    assert {"host", "start_utc", "start_ns"} <= set(c.meta)
    got = [(r.kind, r.t_ns, r.data) for r in c.records]
    assert got == [
        (lg.Kind.DEVICE, 1000, b"MPY: soft reboot\r\n"),
        (lg.Kind.DEVICE, 2000, GOLDEN[0][1]),
        (lg.Kind.DEVICE, 2000, GOLDEN[5][1]),
        (lg.Kind.GAP, 3000, b"port lost: [Errno 5] Input/output error"),
        (lg.Kind.NOTE, 4000, "probe moved \u00b0C".encode()),
        (lg.Kind.DEVICE, 5000, GOLDEN[12][1]),
        (lg.Kind.END, c.records[-1].t_ns, b""),
    ]
    raw = (tmp_path / "s.tglog").read_bytes()
    for r in c.records:  # each record's offset points at its header, its data follows
        assert raw[r.offset + 32 : r.offset + 32 + len(r.data)] == r.data


@pytest.mark.req("SR-LOG-01")
def test_frame_split_across_reads_is_one_record_stamped_when_complete(tmp_path):
    frame = GOLDEN[1][1]
    with lg.LogWriter.create(tmp_path / "a.tglog", {}) as w:
        w.write_bytes(frame[:1], t_ns=10)
        w.write_bytes(frame[1:30], t_ns=20)
        w.write_bytes(frame[30:], t_ns=30)
        w.write_bytes(frame[:9], t_ns=40)  # the port is lost mid-frame: its bytes are kept
        w.note_gap("port lost", t_ns=50)
    recs = lg.read_log(tmp_path / "a.tglog").records
    assert [(r.kind, r.t_ns, r.data) for r in recs[:3]] == [
        (lg.Kind.DEVICE, 30, frame), (lg.Kind.DEVICE, 40, frame[:9]), (lg.Kind.GAP, 50, b"port lost")]


stream_parts = st.lists(
    st.one_of(
        st.sampled_from([g for _, g in GOLDEN]),
        st.binary(max_size=40),  # garbage, zeros included
        st.text(max_size=30).map(lambda s: s.replace("\0", "").encode() + b"\r\n"),
        st.just(b"\0"),
    ),
    max_size=25,
)


def chunked(data, cuts):
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.req("SR-LOG-01")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=stream_parts, cuts=st.lists(st.integers(0, 10_000), max_size=20), gap_at=st.integers(0, 30))
def test_every_byte_is_kept_for_any_chunking(tmp_path, parts, cuts, gap_at):
    data = b"".join(parts)
    path = tmp_path / "h.tglog"
    with lg.LogWriter.create(path, {}, force=True) as w:
        for i, piece in enumerate(chunked(data, cuts)):
            if i == gap_at:
                w.note_gap("reconnected")
            w.write_bytes(piece)
    c = lg.read_log(path)
    assert device(c) == data
    assert all(0 < len(r.data) <= lg.MAX_DATA for r in c.records if r.kind == lg.Kind.DEVICE)


@pytest.mark.req("SR-LOG-01")
@settings(deadline=None)  # a busy machine can hold one example up past hypothesis' 200 ms
@given(parts=st.lists(st.one_of(st.sampled_from([g for _, g in GOLDEN]),
                                st.text(min_size=1, max_size=30).map(lambda s: s.replace("\0", "").encode())),
                      max_size=20),
       cuts=st.lists(st.integers(0, 10_000), max_size=20))
def test_splitter_gives_each_frame_its_own_chunk_however_it_arrives(parts, cuts):
    data = b"".join(parts)
    s = Splitter()
    chunks = [c for piece in chunked(data, cuts) for c in s.feed(piece)]
    chunks.append(s.flush())
    assert b"".join(chunks) == data
    for part in parts:
        if part.startswith(b"\0"):
            assert part in chunks


@pytest.mark.req("SR-LOG-01")
def test_decoding_the_log_gives_what_the_live_decoder_saw(tmp_path):
    stream = b"boot\r\n" + b"".join(tel(i, i // 10, i % 10 * 100_000) for i in range(40)) + b"done\n"
    live = p.Decoder().feed(stream)
    with lg.LogWriter.create(tmp_path / "d.tglog", {}) as w:
        for k in range(0, len(stream), 37):
            w.write_bytes(stream[k : k + 37], t_ns=k)
    got = list(lg.decoded_items(tmp_path / "d.tglog"))
    assert [item for _, item in got] == live
    assert [t for t, _ in got] == sorted(t for t, _ in got)


# Crash safety: torn tails and fsync


def record_ends(c):
    return [(r.offset, r.offset + 32 + len(r.data)) for r in c.records]


@pytest.mark.req("SR-LOG-02", "SR-LOG-05")
def test_torn_tail_at_every_byte_reads_cleanly(tmp_path):
    full_path = tmp_path / "full.tglog"
    full = small_log(full_path)
    raw = full_path.read_bytes()
    spans = record_ends(full)
    header_end = spans[0][0]
    cut_path = tmp_path / "cut.tglog"
    for n in range(len(raw)):
        cut_path.write_bytes(raw[:n])
        if n < header_end:
            with pytest.raises(lg.LogError) as e:
                lg.read_log(cut_path)
            assert str(cut_path) in str(e.value) and "\n" not in str(e.value)
            continue
        c = lg.read_log(cut_path)
        whole = [s for s in spans if s[1] <= n]
        assert record_ends(c) == whole
        assert [r.data for r in c.records] == [r.data for r in full.records[: len(whole)]]
        assert not c.damage and not c.closed
        torn = None if n in (header_end, *(e for _, e in whole)) else spans[len(whole)][0]
        assert c.torn_tail_offset == torn
        rep = lg.verify(cut_path)
        assert rep.ok == (torn is None) and rep.torn_tail_offset == torn and not rep.damage
        list(lg.decoded_items(cut_path))


@pytest.mark.req("SR-LOG-02")
def test_fsync_within_a_second_of_every_write_and_at_close(tmp_path, monkeypatch):
    syncs = []
    real = os.fsync
    # Stamped as each fsync starts: when the writer asked for it (the disk's own time is not its).
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(time.monotonic()), real(fd)))
    writes = []
    w = lg.LogWriter.create(tmp_path / "f.tglog", {})
    frame = tel(1)
    end = time.monotonic() + 1.6
    while time.monotonic() < end:
        w.write_bytes(frame)
        writes.append(time.monotonic())
        time.sleep(0.01)
    w.note("idle from here")  # nothing more is written: the writer must sync by itself
    writes.append(time.monotonic())
    idle = time.monotonic() + 5
    while w.synced_records < w.records and time.monotonic() < idle:
        time.sleep(0.05)
    assert w.synced_records == w.records
    before_close = len(syncs)
    w.close()
    assert len(syncs) > before_close  # close syncs the END record
    for t in writes:
        assert any(t <= s <= t + 1.0 for s in syncs), "a write waited more than a second for its fsync"


@pytest.mark.req("SR-LOG-02")
def test_a_frame_that_never_ends_is_written_anyway(tmp_path):
    path = tmp_path / "p.tglog"
    with lg.LogWriter.create(path, {}, sync_interval_s=0.1) as w:
        w.write_bytes(b"\0\x05abc", t_ns=7)  # an opening zero, then the board stopped
        time.sleep(0.35)
        c = lg.read_log(path)  # read while the writer is open
        assert device(c) == b"\0\x05abc" and c.records[-1].t_ns == 7
        w.write_bytes(b"d\0")
    assert device(lg.read_log(path)) == b"\0\x05abcd\0"


# Damage: bit flips, removed and reordered records


@pytest.mark.req("SR-LOG-03")
def test_every_bit_flip_in_a_record_is_found_at_that_record(tmp_path):
    path = tmp_path / "s.tglog"
    full = small_log(path)
    raw = path.read_bytes()
    spans = record_ends(full)
    bad = tmp_path / "bad.tglog"
    for pos in range(spans[0][0], len(raw)):
        i = next(k for k, (a, b) in enumerate(spans) if a <= pos < b)
        for bit in (0, 3, 7):
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            bad.write_bytes(flipped)
            rep = lg.verify(bad)
            assert not rep.ok
            where = [off for off, _ in rep.damage] + [rep.torn_tail_offset] * (rep.torn_tail_offset is not None)
            assert where == [spans[i][0]], (pos, bit, rep.damage, rep.torn_tail_offset)
            c = lg.read_log(bad)
            others = [r.data for k, r in enumerate(full.records) if k != i]
            assert [r.data for r in c.records] == others  # the rest still reads
            if pos >= spans[i][0] + 32:
                assert "CRC" in rep.damage[0][1]


@pytest.mark.req("SR-LOG-03")
def test_removed_reordered_or_rewritten_records_break_the_chain(tmp_path):
    path = tmp_path / "s.tglog"
    full = small_log(path)
    raw = path.read_bytes()
    (a0, b0), (a1, b1), (a2, b2) = record_ends(full)[1:4]

    def damage_of(blob):
        (tmp_path / "x.tglog").write_bytes(blob)
        rep = lg.verify(tmp_path / "x.tglog")
        assert not rep.ok and rep.torn_tail_offset is None
        assert all("chain" in what for _, what in rep.damage)
        return [off for off, _ in rep.damage]

    assert damage_of(raw[:a1] + raw[b1:]) == [a1]  # record 2 removed: record 3 now sits at a1
    swapped = raw[:a0] + raw[a1:b1] + raw[a0:b0] + raw[b1:]
    assert damage_of(swapped) == [a0, a0 + b1 - a1, b1]  # each of the three links around the pair
    assert damage_of(raw[:a2] + raw[a1:b1] + raw[a2:]) == [a2]  # a record repeated
    # A record changed with both CRCs made to match again: only the chain can see it.
    assert damage_of(rewrite_record(raw, a1, data=GOLDEN[6][1])) == [a1]
    assert damage_of(rewrite_record(raw, a1, t_ns=1)) == [a1]


@pytest.mark.req("SR-LOG-03")
def test_damage_in_the_middle_is_skipped_and_reading_resumes(tmp_path):
    path = tmp_path / "m.tglog"
    with lg.LogWriter.create(path, {}) as w:
        for i in range(200):
            w.write_bytes(tel(i), t_ns=i)
    c = lg.read_log(path)
    raw = bytearray(path.read_bytes())
    hit = c.records[50].offset
    raw[hit + 100 : hit + 400] = b"\xff" * 300  # a burst from the end of record 50 into record 53
    path.write_bytes(raw)
    rep = lg.verify(path)
    # Record 50's header is whole (its data is not); 51 to 53 cannot be parsed at all.
    assert [off for off, _ in rep.damage] == [hit, c.records[51].offset]
    assert "data CRC" in rep.damage[0][1] and f"reading resumes at {c.records[54].offset}" in rep.damage[1][1]
    assert rep.frames == 200 - 4 and rep.torn_tail_offset is None and rep.closed
    assert rep.lost == 4  # the frames in the damaged bytes show as a sequence gap too
    idx = lg.scan_records(path)
    assert [off for off, _ in idx.damage] == [c.records[51].offset]  # the scan does not check data CRCs
    assert list(idx.t_ns[:-1]) == [i for i in range(200) if not 51 <= i <= 53]


# Overwrite, versions, files that are not logs


@pytest.mark.req("SR-LOG-04")
def test_an_existing_log_is_never_overwritten_without_force(tmp_path):
    path = tmp_path / "s.tglog"
    small_log(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError) as e:
        lg.LogWriter.create(path, {})
    assert isinstance(e.value, lg.LogError)
    assert str(path) in str(e.value) and "force" in str(e.value)
    assert path.read_bytes() == before
    with lg.LogWriter.create(path, {"board": "other"}, force=True) as w:
        w.note("new")
    c = lg.read_log(path)
    assert c.meta["board"] == "other" and [r.data for r in c.records] == [b"new", b""]


def with_version(raw, major, minor):
    meta_len = struct.unpack_from("<I", raw, 12)[0]
    end = 16 + meta_len
    head = raw[:8] + struct.pack("<HH", major, minor) + raw[12:end]
    return head + struct.pack("<I", zlib.crc32(head)) + raw[end + 4 :]


@pytest.mark.req("SR-LOG-05")
def test_a_newer_major_version_is_refused_with_one_clear_sentence(tmp_path):
    path = tmp_path / "s.tglog"
    small_log(path)
    path.write_bytes(with_version(path.read_bytes(), 2, 0))
    for read in (lg.read_log, lg.verify, lg.scan_records, lambda q: list(lg.decoded_items(q))):
        with pytest.raises(lg.LogError) as e:
            read(path)
        msg = str(e.value)
        assert "format 2.0" in msg and "newer" in msg and "update thermoguard" in msg and "\n" not in msg


@pytest.mark.req("SR-LOG-05")
def test_unknown_record_types_are_skipped_only_in_a_newer_minor_version(tmp_path):
    path = tmp_path / "s.tglog"
    full = small_log(path)
    note = next(r for r in full.records if r.kind == lg.Kind.NOTE)
    raw = rewrite_record(path.read_bytes(), note.offset, kind=9)
    first = full.records[0].offset

    def relinked(blob):
        """The chain made again from the header on, as a writer of that version would have."""
        out, pos, prev = bytearray(blob[:first]), first, hashlib.sha256(blob[:first]).digest()[:8]
        while pos < len(blob):
            n = struct.unpack_from("<I", blob, pos)[0]
            chain = hashlib.sha256(prev + blob[pos : pos + 16] + blob[pos + 32 : pos + 32 + n]).digest()[:8]
            out += rewrite_record(blob[pos : pos + 32 + n], 0, chain=chain)
            pos, prev = pos + 32 + n, chain
        return bytes(out)

    path.write_bytes(relinked(with_version(raw, 1, 1)))
    c = lg.read_log(path)
    assert not c.damage and c.skipped == 1 and c.version == "1.1"
    assert [r.data for r in c.records] == [r.data for r in full.records if r.kind != lg.Kind.NOTE]
    path.write_bytes(relinked(with_version(raw, 1, 0)))
    c = lg.read_log(path)
    assert [off for off, _ in c.damage] == [note.offset] and "unknown record type 9" in c.damage[0][1]


@pytest.mark.req("SR-LOG-05")
@pytest.mark.parametrize("content, words", [
    (None, "no such log file"),
    (b"", "is empty"),
    (b"t_s,tip\n0,37.0\n", "is not a thermoguard log"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "is not a thermoguard log"),
    (lg.MAGIC[:5], "cut short"),
    (lg.MAGIC + b"\x01\x00\x00\x00\x10\x00\x00\x00{}", "cut short"),
])
def test_files_that_are_not_readable_logs_give_one_sentence(tmp_path, content, words):
    path = tmp_path / "x.tglog"
    if content is not None:
        path.write_bytes(content)
    for read in (lg.read_log, lg.verify, lg.scan_records):
        with pytest.raises(lg.LogError) as e:
            read(path)
        assert words in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.req("SR-LOG-03", "SR-LOG-05")
def test_a_damaged_header_is_reported_and_the_records_still_read(tmp_path):
    path = tmp_path / "s.tglog"
    small_log(path)
    intact = lg.verify(path)
    before = [r.data for r in lg.read_log(path).records]
    raw = bytearray(path.read_bytes())
    raw[20] ^= 0x04  # inside the metadata JSON
    path.write_bytes(raw)
    rep = lg.verify(path)
    assert not rep.ok and "header is damaged" in rep.summary()
    assert rep.frames == intact.frames and rep.telemetry == intact.telemetry  # nothing recorded is lost
    assert [r.data for r in lg.read_log(path).records] == before


def test_writer_refuses_metadata_that_is_not_json_and_writes_after_close(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        lg.LogWriter.create(tmp_path / "a.tglog", {"t": object()})
    with pytest.raises(ValueError, match="JSON"):
        lg.LogWriter.create(tmp_path / "b.tglog", {"x": float("nan")})
    w = lg.LogWriter.create(tmp_path / "c.tglog", {})
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write_bytes(b"x")


# verify


@pytest.mark.req("SR-LOG-06")
def test_verify_counts_the_golden_frames_and_their_device_times(tmp_path):
    path = tmp_path / "g.tglog"
    with lg.LogWriter.create(path, META) as w:
        w.write_bytes(b"MicroPython v1.24 on 2024-01-01\r\n", t_ns=100)
        for i, (_, frame) in enumerate(GOLDEN):
            w.write_bytes(frame, t_ns=1_000 + i)
    rep = lg.verify(path)
    decoded = [v["decoded"] for v, _ in GOLDEN]
    assert rep.ok and rep.closed and rep.records == len(GOLDEN) + 2
    assert rep.frames == len(GOLDEN) == 16
    assert (rep.telemetry, rep.events, rep.replies, rep.text_lines) == (5, 7, 4, 1)
    assert rep.first_device_s == decoded[0]["t_s"] + decoded[0]["t_us"] / 1e6
    assert rep.last_device_s == decoded[-1]["t_s"] + decoded[-1]["t_us"] / 1e6 == 10.3
    assert (rep.first_host_ns, rep.crc_errors, rep.garbage, rep.malformed) == (100, 0, 0, 0)
    assert rep.device_bytes == len(b"MicroPython v1.24 on 2024-01-01\r\n") + sum(len(f) for _, f in GOLDEN)
    text = rep.summary()
    assert "16 frames (5 telemetry, 7 events, 4 replies)" in text and text.endswith("OK")


@pytest.mark.req("SR-LOG-06")
def test_verify_tells_link_losses_from_gaps_and_counts_corrupt_frames(tmp_path):
    path = tmp_path / "c.tglog"
    with lg.LogWriter.create(path, {}) as w:
        for i in range(100):
            frame = tel(i, 100 + i // 10, i % 10 * 100_000)
            if 10 <= i < 15:
                continue  # dropped by the board
            if i == 20:
                frame = frame[:30] + bytes([frame[30] ^ 0x10]) + frame[31:]  # corrupted on the wire
            if i == 60:
                w.note_gap("port lost")
            if 60 <= i < 70:
                continue  # not received while the port was away
            w.write_bytes(frame)
        w.note_gap("board reset")
        for i in range(5):
            w.write_bytes(tel(i, 0, i * 100_000))  # the board started again
    rep = lg.verify(path)
    assert rep.ok
    assert rep.frames == 100 - 5 - 1 - 10 + 5
    assert (rep.lost, rep.lost_in_gaps, rep.crc_errors, rep.restarts) == (5 + 1, 10, 1, 1)
    assert [reason for _, _, reason in rep.gaps] == ["port lost", "board reset"]
    assert rep.first_device_s == 100.0 and rep.last_device_s == 0.4
    assert rep.device_duration_s == pytest.approx(9.9 + 0.4)


# Fast scan


@pytest.mark.req("SR-LOG-01")
def test_scan_records_matches_the_careful_reader(tmp_path):
    path = tmp_path / "big.tglog"
    with lg.LogWriter.create(path, {}) as w:
        for i in range(3000):
            w.write_bytes(tel(i, n=2 if i < 1000 or i > 1003 else 8), t_ns=10 * i)
            if i % 700 == 0:
                w.write_bytes(b"text line %d\n" % i, t_ns=10 * i + 1)
            if i == 2500:
                w.note_gap("reconnected", t_ns=10 * i + 2)
    c = lg.read_log(path)
    idx = lg.scan_records(path)
    assert list(idx.offsets) == [r.offset for r in c.records]
    assert list(idx.lengths) == [len(r.data) for r in c.records]
    assert list(idx.t_ns) == [r.t_ns for r in c.records]
    assert list(idx.kinds) == [int(r.kind) for r in c.records]
    assert idx.closed and not idx.damage and idx.torn_tail_offset is None
    raw = path.read_bytes()
    r = c.records[1234]
    assert raw[idx.data_offsets[1234] : idx.data_offsets[1234] + idx.lengths[1234]] == r.data
    # Cut inside a run of equal records: the scan stops at the torn record.
    path.write_bytes(raw[: c.records[2000].offset + 40])
    idx = lg.scan_records(path)
    assert len(idx.offsets) == 2000 and idx.torn_tail_offset == c.records[2000].offset and not idx.closed


def test_writer_is_safe_to_use_from_two_threads(tmp_path):
    path = tmp_path / "t.tglog"
    frames = [tel(i) for i in range(500)]
    with lg.LogWriter.create(path, {}) as w:
        notes = threading.Thread(target=lambda: [w.note(f"n{i}") for i in range(200)])
        notes.start()
        for f in frames:
            w.write_bytes(f)
        notes.join()
    c = lg.read_log(path)
    assert not c.damage and device(c) == b"".join(frames)
    assert sum(r.kind == lg.Kind.NOTE for r in c.records) == 200


def test_the_twenty_line_reader_in_the_format_document_reads_a_log(tmp_path):
    doc = (ROOT / "docs" / "log-format.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 20
    path = tmp_path / "s.tglog"
    c = small_log(path)
    scope = {}
    exec(code.replace("sys.argv[1]", repr(str(path))), scope)
    assert scope["meta"] == c.meta
    assert scope["records"] == [(int(r.kind), r.t_ns, r.data) for r in c.records]
    assert scope["stream"] == device(c)
