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
from .protocol import CHANNEL, MAX_CHANNELS, SEQ_MOD, TELEMETRY_FIXED, Decoder, Event, Reply, Telemetry

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


_UNMAP_APART_FROM = 16 << 20  # bytes: below, starting a thread costs more than it saves


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

    def close(self, wait: bool = True) -> None:
        """Unmap the file. wait=False: a large one on a thread of its own, for a caller
        that is done with it: unmapping takes its page table apart (8 ms for 228 MB here),
        which the caller need not wait for."""
        if not wait and self.size >= _UNMAP_APART_FROM:
            try:
                threading.Thread(target=self._unmap, name="thermoguard-unmap", daemon=True).start()
                return
            except RuntimeError:
                pass  # no thread to be had (the interpreter is ending, or at its limit): here then
        self._unmap()

    def _unmap(self) -> None:
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


def verify(path, progress: Callable[[int], None] | None = None, *, exact: bool = False) -> VerifyReport:
    """Check the header, every record's CRCs and the hash chain, decode the device bytes and
    summarise the session. progress(offset), when given, is told how far the check has
    gone, about every PROGRESS_STEP bytes. Raises LogError only when the file is not a
    readable log.

    Runs of records of one length and kind (a session's telemetry) are checked and decoded
    with numpy (_verify_fast); exact=True takes the reference path, record by record and
    frame by frame through protocol.Decoder. Both give the same report for every file.
    """
    if not exact:
        with _File(path) as f:
            return _verify_fast(f, progress)
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


# Verifying fast: the same report as the record-by-record path above, for every file.
#
# 1. The records. Where the next _RUN_MIN records or more have the length and kind of
#    the one at pos, a block of them is checked at once: header CRCs with numpy (frames._crc_of_rows, exact
#    per record), data CRCs and chain links with zlib and hashlib over one array of
#    messages (the chain of a record is read from the file, so every link is checked on
#    its own, as _Walk does). The first record that fails any check, and everything that
#    is not such a run, goes through _Walk.step, which words the damage, resynchronises
#    and stops at a torn tail.
# 2. The frames. DEVICE records of a telemetry length are decoded with numpy
#    (frames._payloads, every link CRC computed on its own); a record that is exactly one
#    good frame is taken as decoded when the Decoder is between frames, as
#    frames.load_telemetry does. Every other record goes through protocol.Decoder in
#    order, a new one after each GAP, as _items does.
# 3. The summary of the frame items (losses, restarts, device times) with numpy, in the
#    order verify's loop adds them.

_RUN_FIRST = 64  # records in the first block of a run; each full block, four times more
_RUN_BYTES = 1 << 20  # up to about this many bytes (progress is told after each block)
_RUN_MAX = 32768
_RUN_MIN = 16  # shorter runs are read one record at a time
_RUN_KEY = struct.Struct("<IB")  # length, kind
_SEGMENT = 4096  # records read one at a time before they are decoded (a log of text, events, odd lengths)


def _verify_fast(f: _File, progress) -> VerifyReport:
    import numpy as np

    from . import frames

    rep = VerifyReport(f.path, f.version, f.meta)
    walk = _Walk(f)
    items = _FastItems(np, rep)
    b = np.frombuffer(f.buf, np.uint8)
    ws = _Scratch()
    try:
        if progress is not None:
            progress(f.start)
        # Segments are decoded together once they hold enough records: numpy's work on a
        # few frames costs about what it costs on thousands (short runs between events).
        pending: list[tuple[Any, Any, Any, Any]] = []
        held, since = 0, f.start
        for pos, seg in _checked_segments(np, frames, f, walk, b):
            pending.append(seg)
            held += len(seg[0])
            if held >= _SEGMENT or pos - since >= _RUN_BYTES:
                _decode_segment(np, frames, f, b, ws, _joined(np, pending), items)
                pending, held, since = [], 0, pos
                if progress is not None:
                    progress(pos)
        if pending:
            _decode_segment(np, frames, f, b, ws, _joined(np, pending), items)
    finally:
        del b, ws  # the mapping can only close once no array looks into it
    items.finish()
    rep.damage, rep.torn_tail_offset = walk.damage, walk.torn_tail_offset
    rep.torn_tail_reason, rep.closed, rep.skipped = walk.torn_tail_reason, walk.closed, walk.skipped
    if progress is not None:
        progress(f.size)
    return rep


class _Scratch:
    """Work arrays kept from chunk to chunk (frames._scratch)."""


def _checked_segments(np, frames, f: _File, walk: _Walk, b):
    """(position reached, (offsets, kinds, t_ns, lengths)): the records _Walk yields, in
    order, a segment at a time, every check done; walk gets the damage, torn tail, closed
    and skipped exactly as walking it record by record would give them."""
    buf, size = f.buf, f.size
    pos, prev = f.start, f.seed
    block = _RUN_FIRST
    careful = 0  # records to read one at a time before looking for a run again
    one: list[tuple[int, int, int, int]] = []  # records read one at a time: offset, kind, t_ns, length
    while True:
        got = None if careful else _checked_run(np, frames, buf, b, size, pos, prev, block)
        if isinstance(got, int):
            careful, got = got, None
        if got is not None:
            k, stride, n, kind, t, prev = got
            offsets = pos + np.arange(k, dtype=np.int64) * stride
            run = (offsets, np.full(k, kind, np.uint8), t, np.full(k, n, np.int64))
            if one:
                run = tuple(np.concatenate(c) for c in zip(_one_columns(np, one), run, strict=True))
                one = []
            pos += k * stride
            walk.closed = kind == Kind.END
            full = k == block
            # A block cut short ends at a record of another length or kind, or at one that
            # fails a check: that one is read by the careful reader.
            careful = 0 if full else 1
            limit = max(_RUN_FIRST, min(_RUN_MAX, _RUN_BYTES // stride))
            block = min(block * 4, limit) if full else _RUN_FIRST
            yield pos, run
            continue
        step = walk.step(pos, prev)
        if step is None:
            break
        pos, prev, rec = step
        careful = max(0, careful - 1)
        if rec is not None:
            off, kind, t_ns, a, e = rec
            one.append((off, kind, t_ns, e - a))
            if len(one) >= _SEGMENT or pos - one[0][0] >= _RUN_BYTES:
                yield pos, _one_columns(np, one)
                one = []
    if one:
        yield pos, _one_columns(np, one)


def _joined(np, segments):
    if len(segments) == 1:
        return segments[0]
    return tuple(np.concatenate(c) for c in zip(*segments, strict=True))


def _one_columns(np, one):
    off, kind, t, n = zip(*one, strict=True)
    return np.array(off, np.int64), np.array(kind, np.uint8), np.array(t, np.int64), np.array(n, np.int64)


def _checked_run(np, frames, buf, b, size: int, pos: int, prev: bytes | None, block: int):
    """Up to `block` records from pos with the length and kind of the one at pos, each with
    good header and data CRCs and a chain link that holds (what _Walk.step accepts with
    no damage): (count, stride, length, kind, t_ns array, chain of the last). None when
    the first of them is not such a record; how many records to read one at a time when
    no run of at least _RUN_MIN starts at pos (numpy's cost would be more than theirs)."""
    if size - pos < 2 * RECORD_SIZE:
        return 1
    n, kind = _RUN_KEY.unpack_from(buf, pos)
    stride = RECORD_SIZE + n
    if n > MAX_DATA or kind not in _KINDS:
        return 1
    count = min(block, (size - pos) // stride)
    m = 1  # records from pos with the same length and kind, as far as _RUN_MIN
    while m < min(count, _RUN_MIN) and _RUN_KEY.unpack_from(buf, pos + m * stride) == (n, kind):
        m += 1
    if m < 2 or m < min(count, _RUN_MIN):
        return m  # no record of these starts a long enough run either
    raw = b[pos : pos + count * stride].reshape(count, stride)
    head = raw[:, :RECORD_SIZE].copy()
    h16 = head.view("<u2")
    good = (head[:, 0:4].view("<u4").ravel() == n) & (head[:, 4] == kind)
    good &= frames._crc_of_rows(lambda q: h16[:, q], _HEAD_CRC_AT, count) == head[:, 28:32].view("<u4").ravel()
    j = count if good.all() else int(np.argmin(good))
    if not j:
        return None
    # One message per record: previous chain value, header bytes 0..15, data (_link).
    w = CHAIN_SIZE + 16 + n
    msg = np.empty((j, w), np.uint8)
    msg[0, :CHAIN_SIZE] = np.frombuffer(prev, np.uint8) if prev is not None else 0
    msg[1:, :CHAIN_SIZE] = head[: j - 1, 16:24]
    msg[:, CHAIN_SIZE : CHAIN_SIZE + 16] = head[:j, :16]
    msg[:, CHAIN_SIZE + 16 :] = raw[:j, RECORD_SIZE:]
    del raw
    flat = memoryview(msg.reshape(-1))
    crc = zlib.crc32
    at = CHAIN_SIZE + 16
    data_crc = np.array([crc(flat[i : i + n]) for i in range(at, at + j * w, w)], np.uint32)
    good = data_crc == head[:j, 24:28].view("<u4").ravel()
    k = j if good.all() else int(np.argmin(good))
    if k:
        sha = hashlib.sha256
        digests = b"".join([sha(flat[i : i + w]).digest() for i in range(0, k * w, w)])
        good = np.frombuffer(digests, np.uint64)[::4] == head[:k, 16:24].copy().view(np.uint64).ravel()
        if prev is None:
            good[0] = True  # the chain restarts here: nothing to check this record against
        if not good.all():
            k = int(np.argmin(good))
    flat.release()
    if not k:
        return None
    t = head[:k, 8:16].copy().view("<i8").ravel()
    return k, stride, n, kind, t, head[k - 1, 16:24].tobytes()


class _FastItems:
    """verify's loop over the decoded items, gathered as arrays: the frame items' sequence
    numbers and device times in log order, and whether a gap came before each."""

    def __init__(self, np, rep: VerifyReport):
        self.np = np
        self.rep = rep
        self.dec = Decoder()
        self.decoders = [self.dec]
        self.gap = False  # a gap since the last frame item
        self.parts: list[tuple[Any, Any, Any, Any]] = []
        self.one: list[tuple[int, int, int, bool]] = []  # frame items from the Decoder, not yet in parts
        self.fast = 0

    def take(self, items) -> None:
        rep = self.rep
        for item in items:
            if isinstance(item, (Telemetry, Event, Reply)):
                rep.telemetry += isinstance(item, Telemetry)
                rep.events += isinstance(item, Event)
                rep.replies += isinstance(item, Reply)
                self.one.append((item.seq, item.t_s, item.t_us, self.gap))
                self.gap = False

    def new_stream(self) -> None:
        self.dec = Decoder()
        self.decoders.append(self.dec)

    def telemetry(self, seq, t_s, t_us) -> None:
        """Telemetry frames decoded together (arrays), in order."""
        np = self.np
        self._flush_one()
        gap = np.zeros(len(seq), bool)
        gap[0] = self.gap
        self.gap = False
        self.parts.append((seq, t_s, t_us, gap))
        self.rep.telemetry += len(seq)
        self.fast += len(seq)

    def _flush_one(self) -> None:
        if self.one:
            np = self.np
            seq, t_s, t_us, gap = zip(*self.one, strict=True)
            self.parts.append((np.array(seq, np.int64), np.array(t_s, np.int64), np.array(t_us, np.int64),
                               np.array(gap, bool)))
            self.one = []

    def finish(self) -> None:
        np, rep = self.np, self.rep
        self.take(self.dec.flush())
        self._flush_one()
        rep.frames += self.fast
        for d in self.decoders:
            rep.frames += d.frames
            rep.crc_errors += d.crc_errors
            rep.garbage += d.garbage
            rep.malformed += d.malformed
            rep.text_lines += d.text_lines
        if not self.parts:
            return
        seq, t_s, t_us, gap = (np.concatenate([p[i] for p in self.parts]) for i in range(4))
        t = t_s.astype(np.float64) + t_us / 1e6  # item.t_s + item.t_us / 1e6, the same float
        missing = (seq[1:] - seq[:-1] - 1) % SEQ_MOD
        back = (t_s[1:] < t_s[:-1]) | ((t_s[1:] == t_s[:-1]) & (t_us[1:] < t_us[:-1]))
        restart = back | (missing >= SEQ_MOD // 2)
        counted = ~restart
        rep.restarts = int(restart.sum())
        rep.lost = int(missing[counted & ~gap[1:]].sum())
        rep.lost_in_gaps = int(missing[counted & gap[1:]].sum())
        # Each session's length added in order, as the loop does: the same float sum.
        start = float(t[0])
        duration = 0.0
        for i in np.flatnonzero(restart).tolist():
            duration += float(t[i]) - start
            start = float(t[i + 1])
        rep.device_duration_s = duration + (float(t[-1]) - start)
        rep.first_device_s, rep.last_device_s = float(t[0]), float(t[-1])


# Data length of a record that is one telemetry frame -> its channel count: 00, COBS code,
# payload, CRC, 00 (one COBS block: every telemetry payload is below 254 bytes).
_TELEMETRY_LENGTHS = {TELEMETRY_FIXED + CHANNEL.size * n + 7: n for n in range(MAX_CHANNELS + 1)}


def _decode_segment(np, frames, f: _File, b, ws, seg, items: _FastItems) -> None:
    """The records of seg through the Decoder, in order, except the whole telemetry frames
    numpy decoded, which are taken as decoded where the Decoder is between frames."""
    offsets, kinds, t_ns, lengths = seg
    nseg = len(offsets)
    if not nseg:
        return
    rep = items.rep
    device = kinds == Kind.DEVICE
    rep.records += nseg
    rep.device_bytes += int(lengths[device].sum())
    if rep.first_host_ns is None:
        rep.first_host_ns = int(t_ns[0])
    rep.last_host_ns = int(t_ns[-1])
    fast = np.zeros(nseg, bool)
    seq = np.zeros(nseg, np.int64)
    t_s = np.zeros(nseg, np.int64)
    t_us = np.zeros(nseg, np.int64)
    for length, n_ch in _TELEMETRY_LENGTHS.items():
        sel = np.flatnonzero(device & (lengths == length))
        for lo in range(0, len(sel), frames.CHUNK):
            s = sel[lo : lo + frames.CHUNK]
            ok, p = frames._payloads(b, offsets[s] + RECORD_SIZE, length, n_ch, ws, exact=True)
            fast[s] = ok
            seq[s], t_s[s], t_us[s] = p["seq"], p["t_s"], p["t_us"]
            del p
    buf = f.buf
    between = frames._between_frames
    done = -1  # records up to here are read
    for r in np.flatnonzero(~fast).tolist() + [nseg]:
        k = done + 1  # records k .. r-1 are whole frames: the Decoder must be between frames
        while k < r and not between(items.dec):
            a = int(offsets[k]) + RECORD_SIZE
            items.take(items.dec.feed(buf[a : a + int(lengths[k])]))
            k += 1
        if k < r:  # the Decoder would have read those whole frames: text mode, holding nothing
            items.dec._in_frame = False
            items.telemetry(seq[k:r], t_s[k:r], t_us[k:r])
        done = r
        if r == nseg:
            break
        kind = int(kinds[r])
        off = int(offsets[r])
        a = off + RECORD_SIZE
        data = buf[a : a + int(lengths[r])]
        if kind == Kind.DEVICE:
            items.take(items.dec.feed(data))
        elif kind == Kind.GAP:
            items.take(items.dec.flush())
            items.new_stream()
            rep.gaps.append((off, int(t_ns[r]), data.decode("utf-8", "replace")))
            items.gap = True
        elif kind == Kind.NOTE:
            rep.notes += 1


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
    """Index a log fast: runs of records with the same length and kind, like the telemetry
    of a session, are read in blocks by a compiled loop (kernels.equal_run: length, kind
    and header CRC of every record); anything else, a record whose header fails included,
    goes through the careful reader, which resynchronises after damage and stops at a
    torn tail.

    It does not check data CRCs inside such runs, nor the hash chain: `verify` does, and
    the link CRC of every frame still guards what is decoded from it.
    """
    with _File(path) as f:
        return scan_file(f)


def scan_file(f: _File, trusted: frozenset[int] = frozenset()) -> RecordIndex:
    """scan_records of an open log.

    trusted: data lengths of DEVICE records whose runs are taken on trust, for a caller
    that reads every header of those records anyway (frames.load_telemetry): of a block of
    such records only the first and last headers are read. The others are assumed to have
    the same length and kind and a good header CRC, and their t_ns is left unset; the
    caller must check all three and fill in t_ns, or scan again without trust.
    """
    import numpy as np

    from . import arrays, kernels

    view = np.frombuffer(f.buf, np.uint8)
    try:
        walk = _Walk(f, chain=False)
        # Parts of the index in order: runs taken on trust (_Run), and columns (offsets,
        # lengths, t_ns, kinds) of records read otherwise.
        parts: list[Any] = []
        one: list[tuple[int, int, int, int]] = []  # records read one at a time, not yet in parts
        pos, same, block = f.start, 0, 64
        while True:
            if same >= 4:
                got = _strided_run(np, kernels, view, f.size, pos, block, trusted)
                same = 0
                if got is not None:
                    if one:
                        parts.append(_columns(np, one))
                        one = []
                    parts.append(got)
                    n, length = (got.count, got.length) if isinstance(got, _Run) else (len(got[0]), int(got[1][0]))
                    pos += n * (RECORD_SIZE + length)
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
    finally:
        del view  # the mapping can only close once no array looks into it
    if one:
        parts.append(_columns(np, one))
    cols = _joined_parts(np, arrays, kernels, parts)
    closed = bool(len(cols[3]) and cols[3][-1] == Kind.END) and walk.torn_tail_offset is None
    return RecordIndex(f.path, f.meta, cols[0], cols[1], cols[2], cols[3], walk.damage, walk.torn_tail_offset,
                       closed)


def _columns(np, rows):
    off, n, t, k = zip(*rows, strict=True)
    return (np.array(off, np.int64), np.array(n, np.uint32), np.array(t, np.int64), np.array(k, np.uint8))


class _Run(NamedTuple):
    """Records taken on trust by scan_file: count records of data length `length` and
    kind `kind`, one after another from offset pos."""

    pos: int
    count: int
    length: int
    kind: int


def _joined_parts(np, arrays, kernels, parts):
    """The index columns (offsets, lengths, t_ns, kinds) of scan_file's parts, each filled
    once in its place. A trusted run's host times are left unset, for the caller to
    fill in: written here they would cost a pass over fresh memory on one thread."""
    total = sum(p.count if isinstance(p, _Run) else len(p[0]) for p in parts)
    offsets, t_ns = arrays.empty(total, np.int64), arrays.empty(total, np.int64)
    lengths, kinds = arrays.empty(total, np.uint32), arrays.empty(total, np.uint8)
    at = 0
    for p in parts:
        if isinstance(p, _Run):
            start, m, n, kind = p
            kernels.arithmetic(offsets[at:at + m], start, RECORD_SIZE + n)
            lengths[at:at + m], kinds[at:at + m] = n, kind
        else:
            m = len(p[0])
            offsets[at:at + m], lengths[at:at + m], t_ns[at:at + m], kinds[at:at + m] = p
        at += m
    return offsets, lengths, t_ns, kinds


_TRUSTED_BLOCK = 1 << 16  # records


def _strided_run(np, kernels, view, size: int, pos: int, block: int, trusted: frozenset[int]):
    """Up to `block` records from pos with the same length and kind as the one at pos:
    (pos, count, length, kind) when taken on trust between the first and the last (a
    trusted length, scan_file), else their columns (offsets, lengths, t_ns, kinds)."""
    if size - pos < RECORD_SIZE:  # a torn tail shorter than a record header
        return None
    n, kind = struct.unpack_from("<IB", view, pos)
    if n > MAX_DATA:
        return None
    if kind == Kind.DEVICE and n in trusted:
        # A few headers read whatever the count: the largest block at once.
        stride = RECORD_SIZE + n
        count = min(_TRUSTED_BLOCK, (size - pos) // stride)

        def same(k: int) -> bool:
            return struct.unpack_from("<IB", view, pos + k * stride) == (n, kind)

        # The last record of the block, else the run's end found by halving.
        m = count
        if count >= 2 and not same(count - 1):
            good, bad = 0, count - 1
            while bad - good > 1:
                mid = (good + bad) // 2
                if same(mid):
                    good = mid
                else:
                    bad = mid
            m = bad  # records 0 .. bad - 1
        return _Run(pos, m, n, kind) if m >= 2 else None
    offsets = np.empty(block, np.int64)
    t_ns = np.empty(block, np.int64)
    m = kernels.equal_run(view, pos, size, block, offsets, t_ns, kernels.CRC_TABLE)
    if m < 2:
        return None
    return offsets[:m], np.full(m, n, np.uint32), t_ns[:m], np.full(m, kind, np.uint8)
