"""The crash-safe session log: what the board sent, bit for bit, with the host's receive time.

Format: docs/log-format.md. A header (signature, format version, metadata JSON, CRC),
then append-only records, each with a fixed 32-byte header (length first), a CRC and a
link of a hash chain. A writer killed at any moment leaves a file whose complete records
all read and verify; the reader stops cleanly at a torn tail and says where it is.

Writing::

    with LogWriter.create(path, {"firmware": "0.1.0", "board": "rp2_pico", "config": cfg,
                                 "config_hash": "1a2b3c4d"}) as w:   # force=True to replace
        w.write_bytes(data)            # bytes as read from the port; t_ns defaults to now
        w.note_gap("port lost: ...")   # the stream broke (port lost, reconnect, reset)
        w.note("probe moved")          # free text

    `write_bytes` cuts the stream into one record per frame (framing.Splitter), holding a
    frame's bytes until its closing 0x00 (at most SYNC_INTERVAL_S, then they are written
    as they are); text is written at once. A thread fsyncs written records within
    SYNC_INTERVAL_S; `close` writes an END record and fsyncs.

Reading::

    read_log(path) -> LogContents      .meta .records [Record(kind, t_ns, data, offset)]
                                        .damage [(offset, what)] .torn_tail_offset .closed
    verify(path) -> VerifyReport        integrity and a summary of the session; .ok
    decoded_items(path)                 (t_ns, item) in order: protocol items, Gap, Note
    scan_records(path) -> RecordIndex   numpy arrays offsets, lengths, t_ns, kinds (fast)

Every problem with the file as a whole (missing, empty, not a log, cut-off or damaged
header, newer format) is a LogError with one sentence; damage inside is reported, never
raised.
"""

from __future__ import annotations

import enum
import hashlib
import json
import mmap
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from . import __version__
from .framing import Splitter
from .protocol import SEQ_MOD, Decoder, Event, Reply, Telemetry

MAGIC = b"\x89TGLOG\r\n"  # high bit and CR LF: a text-mode copy or a 7-bit channel breaks it
MAJOR = 1
MINOR = 0
FILE_HEAD = struct.Struct("<8sHHI")  # magic, major, minor, metadata length; then JSON, then crc32
RECORD = struct.Struct("<IBBHq8sII")  # length, kind, flags, reserved, t_ns, chain, data crc, head crc
RECORD_SIZE = RECORD.size  # 32
CHAIN_SIZE = 8
MAX_DATA = 1 << 20  # the writer never makes a longer record; a longer length is damage
MAX_META = 1 << 24
SYNC_INTERVAL_S = 0.5  # written records reach the disk within this (+ the fsync itself)

_HEAD_CRC_AT = RECORD_SIZE - 4
_U32 = struct.Struct("<I")


class Kind(enum.IntEnum):
    DEVICE = 1  # bytes from the board as received: one frame with its zeros, or a run
    GAP = 2  # the host lost the stream (port lost, reconnected, reset); data: the reason
    NOTE = 3  # free text from the host or the operator
    END = 4  # written by close(): the log was closed, not cut


_KINDS = {k.value: k for k in Kind}


class LogError(Exception):
    """A file that cannot be read as a log at all; the message is one sentence."""


class LogExists(LogError, FileExistsError):
    """The log file exists and force was not given."""


class Record(NamedTuple):
    kind: Kind
    t_ns: int  # host receive time, time.time_ns()
    data: bytes
    offset: int  # of the record in the file


@dataclass(frozen=True)
class Gap:
    reason: str


@dataclass(frozen=True)
class Note:
    text: str


def _now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _crc(data) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _link(prev: bytes, head16, data) -> bytes:
    """The next chain value: it binds a record to every record and the header before it."""
    h = hashlib.sha256(prev)
    h.update(head16)
    h.update(data)
    return h.digest()[:CHAIN_SIZE]


def encode_header(meta: dict) -> bytes:
    text = json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    head = FILE_HEAD.pack(MAGIC, MAJOR, MINOR, len(text)) + text
    return head + _U32.pack(_crc(head))


def _seed(header: bytes) -> bytes:
    return hashlib.sha256(header).digest()[:CHAIN_SIZE]


# Writing.


class LogWriter:
    """Appends records to a new log file; use `LogWriter.create`. Thread-safe."""

    def __init__(self, fd: int, path: str, header: bytes, sync_interval_s: float):
        self.path = path
        self.records = 0  # records handed to the operating system
        self.synced_records = 0  # records known to be on disk (after an fsync)
        self._fd = fd
        self._chain = _seed(header)
        self._buf = bytearray()
        self._split = Splitter()
        self._partial_since: float | None = None  # monotonic time the held frame began
        self._partial_t_ns = 0  # host time of the held frame's latest bytes
        self._lock = threading.Lock()
        self._closed = False
        self._error: OSError | None = None
        self._interval = sync_interval_s
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_loop, name="thermoguard-log-sync", daemon=True)
        self._syncer.start()

    @classmethod
    def create(cls, path, meta: dict | None = None, force: bool = False,
               sync_interval_s: float = SYNC_INTERVAL_S) -> LogWriter:
        """A new log at path with the metadata (missing standard keys filled in).

        Raises LogExists (a FileExistsError) if path exists, unless force=True.
        """
        path = os.fspath(path)
        full = {"firmware": None, "board": None, "config": None, "config_hash": None,
                "host": socket.gethostname(), "start_utc": _now_utc(), "start_ns": time.time_ns(),
                **(meta or {}), "thermoguard": __version__}
        try:
            header = encode_header(full)
        except (TypeError, ValueError) as e:
            raise ValueError(f"log metadata must be JSON (a dict of str keys, finite numbers): {e}") from None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            if not force:
                raise LogExists(f"{path} already exists; a log is never overwritten "
                                "(remove it, or pass force=True to replace it)") from None
            os.unlink(path)
            fd = os.open(path, flags, 0o644)
        try:
            _write_all(fd, header)
            os.fsync(fd)
            _fsync_dir(path)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path, header, sync_interval_s)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_bytes(self, data: bytes, t_ns: int | None = None) -> None:
        """Bytes as read from the port, received at t_ns (default: now)."""
        t = time.time_ns() if t_ns is None else t_ns
        with self._lock:
            self._check()
            for chunk in self._split.feed(bytes(data)):
                self._append(Kind.DEVICE, t, chunk)
            if self._split.pending:
                if self._partial_since is None:
                    self._partial_since = time.monotonic()
                self._partial_t_ns = t
            else:
                self._partial_since = None
            self._flush_stale_partial()
            self._commit()

    def note_gap(self, reason: str, t_ns: int | None = None) -> None:
        """The stream broke here; bytes of an unfinished frame are written first."""
        self._note(Kind.GAP, reason, t_ns, end_partial=True)

    def note(self, text: str, t_ns: int | None = None) -> None:
        self._note(Kind.NOTE, text, t_ns, end_partial=False)

    def sync(self) -> None:
        """Write everything held and fsync now."""
        with self._lock:  # the fsync too: close() must not close the descriptor under it
            self._check()
            self._commit()
            os.fsync(self._fd)
            self.synced_records = max(self.synced_records, self.records)

    def close(self) -> None:
        """Write held bytes and the END record, fsync, close. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._error is None:
                    self._end_partial(time.time_ns())
                    self._append(Kind.END, time.time_ns(), b"")
                    self._commit()
            finally:
                self._closed = True
        self._stop.set()
        self._syncer.join()
        try:
            if self._error is None:
                os.fsync(self._fd)
                self.synced_records = self.records
        finally:
            os.close(self._fd)
        if self._error is not None:
            raise self._error

    # Inside: callers hold self._lock.

    def _note(self, kind: Kind, text: str, t_ns: int | None, end_partial: bool) -> None:
        data = text.encode("utf-8")
        if len(data) > MAX_DATA:
            raise ValueError(f"a note is at most {MAX_DATA} bytes of UTF-8")
        t = time.time_ns() if t_ns is None else t_ns
        with self._lock:
            self._check()
            if end_partial:
                self._end_partial(t)
            self._append(kind, t, data)
            self._commit()

    def _check(self) -> None:
        if self._closed:
            raise ValueError(f"log {self.path} is closed")
        if self._error is not None:
            raise self._error

    def _append(self, kind: int, t_ns: int, data: bytes) -> None:
        head16 = struct.pack("<IBBHq", len(data), kind, 0, 0, t_ns)
        chain = _link(self._chain, head16, data)
        head28 = head16 + chain + _U32.pack(_crc(data))
        self._buf += head28
        self._buf += _U32.pack(_crc(head28))
        self._buf += data
        self._chain = chain
        self.records += 1

    def _commit(self) -> None:
        if self._buf:
            buf, self._buf = self._buf, bytearray()  # never written twice, whatever interrupts
            try:
                _write_all(self._fd, buf)  # one write per call: whole records reach the kernel
            except BaseException as e:
                # Part may be written (an OSError, or Ctrl-C between the write and here):
                # writing it again would corrupt the log, so stop here.
                self._error = e if isinstance(e, OSError) else OSError(f"interrupted: {e!r}")
                raise

    def _end_partial(self, t_ns: int) -> None:
        data = self._split.flush()
        if data:
            self._append(Kind.DEVICE, self._partial_t_ns if self._partial_since is not None else t_ns, data)
        self._partial_since = None

    def _flush_stale_partial(self) -> None:
        # A frame that never ends must not sit in memory: a crash would lose it.
        if self._partial_since is not None and time.monotonic() - self._partial_since >= self._interval:
            self._append(Kind.DEVICE, self._partial_t_ns, self._split.take_partial())
            self._partial_since = None

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                if self._closed:
                    return
                try:
                    self._flush_stale_partial()
                    self._commit()
                except OSError as e:
                    self._error = e
                    return
                n = self.records
            if n > self.synced_records:
                try:
                    os.fsync(self._fd)  # outside the lock: a slow disk must not stall the port reader
                except OSError as e:
                    self._error = e
                    return
                self.synced_records = max(self.synced_records, n)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: str) -> None:
    # The new file's name must survive a power loss too; not every platform can do this.
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# Reading.


class _File:
    """A log file mapped read-only, its header checked; a context manager."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            raise LogError(f"{self.path}: no such log file") from None
        except IsADirectoryError:
            raise LogError(f"{self.path} is a directory, not a log file") from None
        except OSError as e:
            raise LogError(f"{self.path} cannot be opened: {e.strerror}") from None
        with f:
            self.size = os.fstat(f.fileno()).st_size
            if self.size == 0:
                raise LogError(f"{self.path} is empty: not a thermoguard log (the writer stopped before its header?)")
            self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self._header()
        except BaseException:
            self.close()
            raise

    def _header(self) -> None:
        buf, size, path = self.buf, self.size, self.path
        start = buf[: len(MAGIC)]
        if start != MAGIC[: len(start)]:
            raise LogError(f"{path} is not a thermoguard log (it does not begin with the log signature)")
        if size < FILE_HEAD.size:
            raise LogError(f"{path}: the log header is cut short ({size} bytes): the file ends before any record")
        _, self.major, self.minor, n = FILE_HEAD.unpack_from(buf)
        if self.major > MAJOR:
            raise LogError(f"{path} is a format {self.major}.{self.minor} log, newer than this thermoguard "
                           f"({__version__}, format {MAJOR}.{MINOR}) can read; update thermoguard to read it")
        if self.major < MAJOR:
            raise LogError(f"{path} is a format {self.major}.{self.minor} log, which this thermoguard does not read")
        end = FILE_HEAD.size + n + 4
        if n > MAX_META:
            raise LogError(f"{path}: the log header is damaged (its metadata length is out of range)")
        if size < end:
            raise LogError(f"{path}: the log header is cut short ({size} of {end} bytes): "
                           "the file ends before any record")
        self.start = end
        self.seed: bytes | None = _seed(buf[:end])
        self.header_damage = ""
        try:
            self.meta = json.loads(buf[FILE_HEAD.size : end - 4].decode("utf-8"))
        except ValueError:
            self.meta = None
        if _crc(buf[: end - 4]) != _U32.unpack_from(buf, end - 4)[0] or not isinstance(self.meta, dict):
            # One flipped bit here must not cost the session: the records carry their own
            # CRCs, so they are read on those; the chain restarts at the first record.
            self.header_damage = ("the log header is damaged (its CRC does not match): its metadata may be "
                                  "wrong; the records were read on their own CRCs")
            self.seed = None
            if not isinstance(self.meta, dict):
                self.meta = {}

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    def close(self) -> None:
        try:
            self.buf.close()
        except BufferError:
            pass  # a view still exists (an exception on the way): the GC closes it

    def __enter__(self) -> _File:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_ENDS_INSIDE = "the file ends inside the record"
_Rec = tuple[int, int, int, int, int]  # offset, kind, t_ns, data start, data end


class _Walk:
    """Record by record from the first one: checks CRCs and the chain, resynchronises
    after damage, stops at a torn tail. Yields (offset, kind, t_ns, data_start, data_end)."""

    def __init__(self, f: _File, chain: bool = True):
        self.f = f
        self.chain = chain
        self.damage: list[tuple[int, str]] = [(0, f.header_damage)] if f.header_damage else []
        self.torn_tail_offset: int | None = None
        self.torn_tail_reason = ""
        self.skipped = 0  # records of unknown kinds in a newer minor version
        self.closed = False

    def __iter__(self) -> Iterator[_Rec]:
        pos, prev = self.f.start, self.f.seed
        while True:
            step = self.step(pos, prev)
            if step is None:
                return
            pos, prev, rec = step
            if rec is not None:
                yield rec

    def step(self, pos: int, prev: bytes | None):
        """One record at pos: (next pos, chain value, record or None), or None at the end."""
        buf, size = self.f.buf, self.f.size
        if pos >= size:
            return None
        r = _parse(buf, size, pos)
        if isinstance(r, str):
            nxt = None if r is _ENDS_INSIDE else _resync(buf, size, pos + 1)
            if nxt is None:
                self.torn_tail_offset, self.torn_tail_reason = pos, r
                return None
            self.damage.append((pos, f"{nxt - pos} bytes are not a valid record ({r}); reading resumes at {nxt}"))
            return nxt, None, None  # the chain cannot be checked across unreadable bytes
        n, kind, t_ns, chain, dcrc = r
        a, b = pos + RECORD_SIZE, pos + RECORD_SIZE + n
        name = _KINDS[kind].name if kind in _KINDS else f"type {kind}"
        if _crc(buf[a:b]) != dcrc:
            self.damage.append((pos, f"{name} record of {n} bytes is damaged (its data CRC does not match)"))
            return b, chain, None
        if self.chain and prev is not None and _link(prev, buf[pos : pos + 16], buf[a:b]) != chain:
            self.damage.append((pos, "hash chain broken: a record before this one was removed or reordered, "
                                "or this one was moved or altered"))
        self.closed = kind == Kind.END
        if kind not in _KINDS:
            if self.f.minor > MINOR:
                self.skipped += 1  # a newer minor version may add kinds: skip them
            else:
                self.damage.append((pos, f"unknown record type {kind} in a format {self.f.version} log"))
            return b, chain, None
        return b, chain, (pos, kind, t_ns, a, b)


def _parse(buf, size: int, pos: int):
    """The record header at pos as (length, kind, t_ns, chain, data crc), or why it is not one."""
    if size - pos < RECORD_SIZE:
        return "the file ends inside a record header"
    n, kind, _flags, _res, t_ns, chain, dcrc, hcrc = RECORD.unpack_from(buf, pos)
    if _crc(buf[pos : pos + _HEAD_CRC_AT]) != hcrc:
        return "record header CRC does not match"
    if n > MAX_DATA:
        return "record length out of range"
    if pos + RECORD_SIZE + n > size:
        return _ENDS_INSIDE
    return n, kind, t_ns, chain, dcrc


def _resync(buf, size: int, pos: int) -> int | None:
    """The next offset from pos where a whole record with good CRCs starts, or None."""
    for c in range(pos, size - RECORD_SIZE + 1):
        r = _parse(buf, size, c)
        if not isinstance(r, str) and _crc(buf[c + RECORD_SIZE : c + RECORD_SIZE + r[0]]) == r[4]:
            return c
    return None


@dataclass
class LogContents:
    path: str
    version: str  # format version of the file, "1.0"
    meta: dict
    records: list[Record]
    damage: list[tuple[int, str]]  # (byte offset, what is wrong there)
    torn_tail_offset: int | None  # where an incomplete last record begins
    closed: bool  # the last record is END: the writer closed the log
    skipped: int  # records of unknown kinds (newer minor version) skipped


def header(path) -> dict:
    """The metadata in the header of the log at path; LogError when it is not a readable log."""
    with _File(path) as f:
        return f.meta


def read_log(path) -> LogContents:
    with _File(path) as f:
        walk = _Walk(f)
        buf = f.buf
        records = [Record(_KINDS[k], t, buf[a:b], off) for off, k, t, a, b in walk]
        return LogContents(f.path, f.version, f.meta, records, walk.damage, walk.torn_tail_offset,
                           walk.closed, walk.skipped)


def _items(f: _File, records: Iterable[_Rec], decoders: list[Decoder]) -> Iterator[tuple[int, int, Any]]:
    """(offset, t_ns, item): the device bytes decoded in order, and the host's notes.

    A gap ends a stream: the decoder is flushed and a fresh one takes over, so bytes from
    before a reconnect are never glued to bytes after it.
    """
    dec = Decoder()
    decoders.append(dec)
    last_t = 0
    for off, kind, t_ns, a, b in records:
        if kind == Kind.DEVICE:
            last_t = t_ns
            for item in dec.feed(f.buf[a:b]):
                yield off, t_ns, item
        elif kind == Kind.GAP:
            for item in dec.flush():
                yield off, last_t, item
            dec = Decoder()
            decoders.append(dec)
            yield off, t_ns, Gap(f.buf[a:b].decode("utf-8", "replace"))
        elif kind == Kind.NOTE:
            yield off, t_ns, Note(f.buf[a:b].decode("utf-8", "replace"))
    for item in dec.flush():
        yield f.size, last_t, item


def decoded_items(path, host_notes: bool = True) -> Iterator[tuple[int, Any]]:
    """(t_ns, item) in log order: Telemetry, Event, Reply and Text from the board, each with
    the host time of the record that completed it; with host_notes also Gap and Note."""
    with _File(path) as f:
        for _, t_ns, item in _items(f, _Walk(f), []):
            if host_notes or not isinstance(item, (Gap, Note)):
                yield t_ns, item


# Verifying.


@dataclass
class VerifyReport:
    path: str
    version: str
    meta: dict
    records: int = 0
    device_bytes: int = 0
    frames: int = 0  # good frames
    telemetry: int = 0
    events: int = 0
    replies: int = 0
    text_lines: int = 0
    crc_errors: int = 0  # frames with a bad link CRC (corrupted on the wire, kept as received)
    garbage: int = 0
    malformed: int = 0
    lost: int = 0  # frames missing from the sequence with no gap recorded between
    lost_in_gaps: int = 0  # frames missing across a recorded gap
    restarts: int = 0  # the board started again (time or sequence went back)
    first_device_s: float | None = None
    last_device_s: float | None = None
    device_duration_s: float = 0.0  # summed over the board's sessions between restarts
    first_host_ns: int | None = None
    last_host_ns: int | None = None
    gaps: list[tuple[int, int, str]] = field(default_factory=list)  # (offset, t_ns, reason)
    notes: int = 0
    skipped: int = 0
    damage: list[tuple[int, str]] = field(default_factory=list)
    torn_tail_offset: int | None = None
    torn_tail_reason: str = ""
    closed: bool = False

    @property
    def ok(self) -> bool:
        """No damage and no torn tail. Frames lost on the link are the session's story, not damage."""
        return not self.damage and self.torn_tail_offset is None

    def summary(self) -> str:
        m = self.meta
        lines = [f"{self.path}: thermoguard log format {self.version}, written by thermoguard "
                 f"{m.get('thermoguard')} on {m.get('host')}, started {m.get('start_utc')}",
                 f"board {m.get('board')}, firmware {m.get('firmware')}, configuration {m.get('config_hash')}",
                 f"{self.records} records, {self.device_bytes} device bytes",
                 f"{self.frames} frames ({self.telemetry} telemetry, {self.events} events, {self.replies} replies), "
                 f"{self.text_lines} text lines"]
        if self.first_device_s is not None:
            lines.append(f"device time {self.first_device_s:.6f} s to {self.last_device_s:.6f} s, "
                         f"{self.device_duration_s:.3f} s of session, {self.restarts} board restarts")
        lines.append(f"frames lost: {self.lost} on the link, {self.lost_in_gaps} across {len(self.gaps)} gaps; "
                     f"link CRC errors {self.crc_errors}, garbage {self.garbage}, malformed {self.malformed}")
        for off, _, reason in self.gaps:
            lines.append(f"gap at offset {off}: {reason}")
        for off, what in self.damage:
            lines.append(f"DAMAGE at offset {off}: {what}")
        if self.torn_tail_offset is not None:
            lines.append(f"DAMAGE: torn tail at offset {self.torn_tail_offset} ({self.torn_tail_reason}); "
                         "everything before it reads")
        if self.skipped:
            lines.append(f"{self.skipped} records of a newer format skipped")
        if not self.closed and self.torn_tail_offset is None:
            lines.append("the log was not closed (the writer stopped: crash, kill or power loss); it ends cleanly")
        lines.append("OK" if self.ok else "DAMAGED")
        return "\n".join(lines)


def verify(path, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Check the header, every record's CRCs and the hash chain, decode the device bytes and
    summarise the session. progress(offset), when given, is told how far the check has
    gone, about every PROGRESS_STEP bytes. Raises LogError only when the file is not a
    readable log."""
    with _File(path) as f:
        rep = VerifyReport(f.path, f.version, f.meta)
        walk = _Walk(f)
        decoders: list[Decoder] = []
        last: tuple[int, int, int] | None = None  # seq, t_s, t_us of the previous frame
        session_start = last_t = 0.0
        gap_since_last = False
        for off, t_ns, item in _items(f, _counted(walk, rep, progress), decoders):
            if isinstance(item, Gap):
                rep.gaps.append((off, t_ns, item.reason))
                gap_since_last = True
            elif isinstance(item, Note):
                rep.notes += 1
            elif isinstance(item, (Telemetry, Event, Reply)):
                rep.telemetry += isinstance(item, Telemetry)
                rep.events += isinstance(item, Event)
                rep.replies += isinstance(item, Reply)
                t = item.t_s + item.t_us / 1e6
                if last is None:
                    rep.first_device_s = session_start = t
                else:
                    # The decoder's rule (docs/protocol.md), told apart by the gaps in the log.
                    missing = (item.seq - last[0] - 1) % SEQ_MOD
                    if (item.t_s, item.t_us) < last[1:] or missing >= SEQ_MOD // 2:
                        rep.restarts += 1
                        rep.device_duration_s += last_t - session_start
                        session_start = t
                    elif gap_since_last:
                        rep.lost_in_gaps += missing
                    else:
                        rep.lost += missing
                rep.last_device_s = last_t = t
                last = (item.seq, item.t_s, item.t_us)
                gap_since_last = False
        if last is not None:
            rep.device_duration_s += last_t - session_start
        for d in decoders:
            rep.frames += d.frames
            rep.crc_errors += d.crc_errors
            rep.garbage += d.garbage
            rep.malformed += d.malformed
            rep.text_lines += d.text_lines
        rep.damage, rep.torn_tail_offset = walk.damage, walk.torn_tail_offset
        rep.torn_tail_reason, rep.closed, rep.skipped = walk.torn_tail_reason, walk.closed, walk.skipped
        if progress is not None:
            progress(f.size)
        return rep


PROGRESS_STEP = 1 << 20


def _counted(records: Iterable[_Rec], rep: VerifyReport, progress=None) -> Iterator[_Rec]:
    mark = 0
    for rec in records:
        _, kind, t_ns, a, b = rec
        if progress is not None and a >= mark:
            progress(a)
            mark = a + PROGRESS_STEP
        rep.records += 1
        if kind == Kind.DEVICE:
            rep.device_bytes += b - a
        if rep.first_host_ns is None:
            rep.first_host_ns = t_ns
        rep.last_host_ns = t_ns
        yield rec


# Fast scanning.


@dataclass
class RecordIndex:
    """Where every record is: numpy arrays, one item per record, in file order.

    The data of record i is buf[offsets[i] + RECORD_SIZE : offsets[i] + RECORD_SIZE + lengths[i]].
    """

    path: str
    meta: dict
    offsets: Any  # int64, record offsets in the file
    lengths: Any  # uint32, data lengths
    t_ns: Any  # int64, host receive times
    kinds: Any  # uint8, Kind values
    damage: list[tuple[int, str]]
    torn_tail_offset: int | None
    closed: bool

    @property
    def data_offsets(self):
        return self.offsets + RECORD_SIZE


def scan_records(path) -> RecordIndex:
    """Index a log fast (numpy): runs of records with the same length and kind, like the
    telemetry of a session, are read as strided arrays; anything else goes through the
    careful reader, which resynchronises after damage and stops at a torn tail.

    It does not check data CRCs inside such runs, nor the hash chain: `verify` does, and
    the link CRC of every frame still guards what is decoded from it.
    """
    import numpy as np

    with _File(path) as f:
        walk = _Walk(f, chain=False)
        parts: list[tuple[Any, Any, Any, Any]] = []
        one: list[tuple[int, int, int, int]] = []  # records read one at a time, not yet in parts
        pos, same, block = f.start, 0, 64
        while True:
            if same >= 4:
                got = _strided_run(np, f.buf, f.size, pos, block)
                same = 0
                if got is not None:
                    if one:
                        parts.append(_columns(np, one))
                        one = []
                    parts.append(got)
                    n = len(got[0])
                    pos += n * (RECORD_SIZE + int(got[1][0]))
                    block = min(block * 4, 1 << 16) if n == block else 64
                    continue
            step = walk.step(pos, None)
            if step is None:
                break
            pos, _, rec = step
            if rec is None:
                same = 0
                continue
            off, kind, t_ns, a, b = rec
            same = same + 1 if one and (one[-1][1], one[-1][3]) == (b - a, kind) else 1
            one.append((off, b - a, t_ns, kind))
        if one:
            parts.append(_columns(np, one))
        if parts:
            cols = [np.concatenate([p[i] for p in parts]) for i in range(4)]
        else:
            cols = [np.zeros(0, t) for t in (np.int64, np.uint32, np.int64, np.uint8)]
        closed = bool(len(cols[3]) and cols[3][-1] == Kind.END) and walk.torn_tail_offset is None
        return RecordIndex(f.path, f.meta, cols[0], cols[1], cols[2], cols[3], walk.damage, walk.torn_tail_offset,
                           closed)


def _columns(np, rows):
    off, n, t, k = zip(*rows, strict=True)
    return (np.array(off, np.int64), np.array(n, np.uint32), np.array(t, np.int64), np.array(k, np.uint8))


def _strided_run(np, buf, size: int, pos: int, block: int):
    """Up to `block` records from pos with the same length and kind as the one at pos."""
    if size - pos < RECORD_SIZE:  # a torn tail shorter than a record header
        return None
    n, kind = struct.unpack_from("<IB", buf, pos)
    stride = RECORD_SIZE + n
    count = min(block, (size - pos) // stride)
    if n > MAX_DATA or count < 2:
        return None
    raw = np.frombuffer(buf, np.uint8, count * stride, pos).reshape(count, stride)
    try:
        head = raw[:, 0:16].copy()  # one pass over the headers: length, kind, flags, reserved, t_ns
        lens = head[:, 0:4].view("<u4").ravel()
        kinds = head[:, 4]
        same = (lens == n) & (kinds == kind)
        m = count if same.all() else int(np.argmin(same))
        if m < 2:
            return None
        t = head[:m, 8:16].view("<i8").ravel()
        offsets = pos + np.arange(m, dtype=np.int64) * stride
        return offsets, lens[:m].copy(), t, kinds[:m].copy()
    finally:
        del raw  # the mapping can only close once no array looks into it
