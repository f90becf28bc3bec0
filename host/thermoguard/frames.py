"""Load a log's telemetry as numpy arrays, fast: `load_telemetry(path) -> Frames`.

The result is what `protocol.Decoder` gives when it reads the log (`log.decoded_items`),
item for item, only as arrays: one row per telemetry frame, in log order, and the other
items (events, replies, text, gaps, notes) in a list beside them.

How it is fast. `log.scan_file` indexes the records, taking runs of telemetry records
on trust from the first and last header of each block. For a given board every telemetry
frame has the same length on the wire (docs/protocol.md), so the DEVICE records of one
telemetry length are decoded together, in chunks:

- Rows. Each record is copied whole, header and data, into a row of a work array
  (numpy, a strided copy), the data from byte 32.
- COBS. A payload below 254 bytes is one COBS block: the code bytes form a chain from
  the first byte (each code is the distance to the next) and every code stands for a
  0x00. A compiled loop (`kernels.cobs_decode_rows`) checks the delimiters and that no
  0x00 is inside, follows each row's chain (four rows at a time), and turns the data
  into the decoded message in place. A frame whose chain does not end exactly at its
  last byte, or that holds a 0x00 inside, is not a frame here.
- CRCs: each row's record header CRC and its frame's link CRC-32. CRC-32 is affine over
  GF(2) and every message followed by its CRC has the same residue, so the rows of a
  chunk are checked together first: the CRC of the XOR of their headers and of their
  frames, apart (any one bad header or frame shows), and the CRC-32 of all the rows in a
  row (zlib-ng's, with SIMD), which must equal that of as many valid rows (any two bad
  rows show; `_rows_crcs_ok` says why). When a check differs, every header and every
  frame is checked on its own: a frame's CRC exactly, from one 65536-entry table per pair
  of byte positions, and it passes when its residue is the CRC-32 residue (0x2144DF1C),
  as `zlib.crc32(payload + crc)` gives. Three or more bad rows in one chunk, independently
  damaged, hide from all the checks at once with probability 2**-64; even then no wrong
  value is taken silently unless its COBS chain, version, kind, channel count and time
  fields are also valid.
- Data CRCs: each record's data CRC (in its header) is checked too, through the XOR of
  the records as copied, before decoding (`_data_crcs_ok`: any one record whose data is
  not what its header's CRC was made of shows, say a block of another frame); when it
  differs, every record's data CRC is computed on its own, and a record that fails goes
  to the exact path, which reports it as damage as the careful reader does.
- Fields: a compiled loop (`kernels.telemetry_fields`) reads them from the decoded rows
  into the result arrays, and checks version, kind, channel count and t_us. It also
  checks each header's length and kind (the scan took them on trust) and takes its
  record's host time. A header that is not the record the index says, or fails its CRC,
  makes the loader scan again strictly (`log.scan_file` without trust: every header's
  CRC, and the careful reader from a header that fails, which resynchronises as the
  Decoder's reader does) and decode again.

Anything else goes through the exact Python path: a Decoder is fed every record that is
not a fast frame (text, events, replies, corrupt or torn frames, frames of other
lengths), in order, GAP records start a new Decoder as `log.decoded_items` does, and a
run of fast frames is only taken as decoded when the Decoder is between frames (so
whatever it holds is read exactly as the Decoder would read it). Chunks are decoded on
up to two threads (numpy, zlib and the compiled loops release the GIL), each reusing
its work arrays from chunk to chunk.

`log.verify` decodes the frames of runs of equal records with the same code (`_payloads`,
there with every link CRC computed on its own) and the record header CRCs with
`_crc_of_rows`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tgfw import codes
from zlib_ng import zlib_ng  # CRC-32 as zlib.crc32, some ten times faster on large buffers (SIMD)

from thermoguard import arrays, kernels, log, protocol

CHUNK = 32768  # frames decoded together: arrays of one chunk stay in the CPU caches
CRC_RESIDUE = 0x2144DF1C  # zlib.crc32(m + crc32(m) as 4 little-endian bytes), for every m
Q10 = 1024.0

_CHANNEL_DTYPE = np.dtype([("temp", "<i4"), ("cj", "<i2"), ("fault", "u1"), ("warn", "u1"), ("trip", "u1"),
                           ("rate", "<i4"), ("dose_hi", "<u4"), ("dose_lo", "<u2")])


@functools.lru_cache(maxsize=16)
def _payload_dtype(n_channels: int, itemsize: int, shift: int = 0) -> np.dtype:
    """The telemetry payload (docs/protocol.md) as a packed little-endian record starting at byte shift."""
    names = ["version", "kind", "seq", "t_s", "t_us", "state", "flags", "config_hash", "global_causes",
             "first_channel", "first_cause", "first_fault", "max_late_us", "overruns", "dropped", "n_channels"]
    formats = ["u1", "u1", "<u4", "<u4", "<u4", "u1", "u1", "<u4", "u1", "u1", "u1", "u1", "<u4", "<u4", "<u4",
               "u1"]
    offsets = [0, 1, 2, 6, 10, 14, 15, 16, 20, 21, 22, 23, 24, 28, 32, 36]
    if n_channels:
        names.append("ch")
        formats.append((_CHANNEL_DTYPE, (n_channels,)))
        offsets.append(protocol.TELEMETRY_FIXED)
    offsets = [o + shift for o in offsets]
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})


@functools.lru_cache(maxsize=8)
def _crc_pair_tables(m: int, shift: int = 0) -> tuple[np.ndarray, int]:
    """Tables for the CRC-32 of an m-byte message held at bytes shift .. shift + m - 1 of a row:
    crc = base ^ XOR_q T[q][row byte 2q | row byte 2q+1 << 8].

    CRC-32 is affine: crc(x) = L(x) ^ crc(zeros), L linear; T[q] is L of the row bytes 2q
    and 2q+1 (bytes outside the message contribute nothing).
    """
    base = zlib.crc32(bytes(m))
    width = m + shift
    unit = np.zeros((width + 1, 8), np.uint32)  # L of one set bit at each row byte; row `width`: past the end
    for p in range(shift, width):
        for bit in range(8):
            msg = bytearray(m)
            msg[p - shift] = 1 << bit
            unit[p, bit] = zlib.crc32(msg) ^ base
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (256, 8)
    single = np.zeros((width + 1, 256), np.uint32)
    for bit in range(8):
        single ^= np.where(bits[:, bit], unit[:, bit:bit + 1], np.uint32(0))
    pairs = (width + 1) // 2
    lo = np.arange(65536) & 0xFF
    hi = np.arange(65536) >> 8
    tables = np.empty((pairs, 65536), np.uint32)
    for q in range(pairs):
        tables[q] = single[2 * q][lo] ^ single[min(2 * q + 1, width)][hi]
    return tables, base


def _crc_of_rows(pairs16, m: int, n: int, shift: int = 0) -> np.ndarray:
    """CRC-32 of n m-byte messages held at bytes shift .. shift + m - 1 of rows; pairs16(q)
    gives row bytes 2q, 2q+1 of every row as uint16 (bytes outside the message must be zero)."""
    tables, base = _crc_pair_tables(m, shift)
    acc = np.full(n, base, np.uint32)
    index = np.empty(n, np.intp)
    part = np.empty(n, np.uint32)
    for q in range(len(tables)):
        np.copyto(index, pairs16(q))
        np.take(tables[q], index, out=part)
        acc ^= part
    return acc


@dataclass
class Frames:
    """Telemetry of a log as arrays (one row per frame, log order) and the other items.

    Per frame: seq, t_s, t_us, t_dev_s (t_s + t_us / 1e6), t_host_ns (host receive time of
    the record that completed the frame), state, flags, interlock (flags bit 0),
    config_hash, global_causes, first_channel, first_cause, first_fault, max_late_us,
    overruns, dropped, n_channels. Per frame and channel (shape (frames, channels)):
    temp_c, cj_c and rate_c_per_s (NaN when the channel is faulted or has no value: the
    wire carries INT32_MIN / INT16_MIN), fault, warn, trip, dose_cem43. Channels a frame
    does not have (a log whose channel count changes) read NaN and 0 here; `channel_layout`
    says which channel of which frame is which sensor, for exports.

    `items` holds everything else in order as (frame index, t_ns, item): the item came
    after frames[:frame index]. Items are protocol Event, Reply and Text, and log Gap and
    Note. `names` are the channel names of the log's configuration (`ch<i>` when the
    configuration does not match the telemetry).
    """

    path: str
    meta: dict
    names: list[str]
    seq: np.ndarray
    t_s: np.ndarray
    t_us: np.ndarray
    t_dev_s: np.ndarray
    t_host_ns: np.ndarray
    state: np.ndarray
    flags: np.ndarray
    interlock: np.ndarray
    config_hash: np.ndarray
    global_causes: np.ndarray
    first_channel: np.ndarray
    first_cause: np.ndarray
    first_fault: np.ndarray
    max_late_us: np.ndarray
    overruns: np.ndarray
    dropped: np.ndarray
    n_channels: np.ndarray
    temp_c: np.ndarray
    cj_c: np.ndarray
    fault: np.ndarray
    warn: np.ndarray
    trip: np.ndarray
    rate_c_per_s: np.ndarray
    dose_cem43: np.ndarray
    items: list[tuple[int, int, Any]] = field(default_factory=list)
    damage: list[tuple[int, str]] = field(default_factory=list)
    torn_tail_offset: int | None = None
    closed: bool = False
    fast: int = 0  # frames decoded by the vectorised path
    slow: int = 0  # frames decoded by protocol.Decoder

    def __len__(self) -> int:
        return len(self.seq)

    @property
    def channels(self) -> int:
        return self.temp_c.shape[1]

    def telemetry(self, i: int) -> protocol.Telemetry:
        """Frame i as the protocol.Telemetry the Decoder gives."""
        chans = []
        for c in range(int(self.n_channels[i])):
            fault = int(self.fault[i, c])
            chans.append(protocol.Channel(
                index=c, temp_c=_opt(self.temp_c[i, c]), cj_c=_opt(self.cj_c[i, c]), fault=fault,
                fault_word=protocol._fault_word(fault), warn=int(self.warn[i, c]), trip=int(self.trip[i, c]),
                rate_c_per_s=_opt(self.rate_c_per_s[i, c]), dose_cem43=float(self.dose_cem43[i, c])))
        return protocol.Telemetry(
            int(self.seq[i]), int(self.t_s[i]), int(self.t_us[i]), int(self.state[i]), int(self.flags[i]),
            int(self.config_hash[i]), int(self.global_causes[i]), int(self.first_channel[i]),
            int(self.first_cause[i]), int(self.first_fault[i]), int(self.max_late_us[i]), int(self.overruns[i]),
            int(self.dropped[i]), tuple(chans))

    def decoded_items(self):
        """(t_ns, item) in log order, like `log.decoded_items(path)`: frames as Telemetry."""
        k = 0
        for at, t_ns, item in self.items:
            while k < at:
                yield int(self.t_host_ns[k]), self.telemetry(k)
                k += 1
            yield t_ns, item
        while k < len(self):
            yield int(self.t_host_ns[k]), self.telemetry(k)
            k += 1

    def events(self) -> list[tuple[int, protocol.Event]]:
        return [(at, item) for at, _, item in self.items if isinstance(item, protocol.Event)]


def _opt(v) -> float | None:
    v = float(v)
    return None if v != v else v


def channel_names(meta: dict, n: int) -> list[str]:
    cfg = meta.get("config") or {}
    chans = cfg.get("channels", []) if isinstance(cfg, dict) else []
    names = [ch.get("name", f"ch{i}") if isinstance(ch, dict) else f"ch{i}" for i, ch in enumerate(chans)]
    return names if len(names) == n else [f"ch{i}" for i in range(n)]


# Channel sets that change within a log.


@dataclass(frozen=True)
class Segment:
    """A run of frames with one configuration hash and channel count."""

    start: int  # first frame
    config_hash: int
    names: tuple[str, ...]  # the names of its channels, in the frames' order
    named: bool  # the names come from a configuration in the log; else ch<i>


@dataclass
class Layout:
    """Where each frame's channels go when a log is exported as one table.

    `names` is the union of the channel names of every segment, in order of first
    appearance; `column[i, c]` is the column (index into names) of channel c of frame i,
    -1 where frame i has no channel c. A column a frame does not fill is that frame's
    "no channel": empty in CSV, NaN (fault -1) in npz, no message in MCAP.
    """

    names: list[str]
    column: np.ndarray  # (frames, Frames.channels) intp
    segments: list[Segment]

    @property
    def uniform(self) -> bool:
        """Every frame fills every column, channel c in column c."""
        return (len(self.column) == 0 or self.column.shape[1] == len(self.names)) and bool(
            (self.column == np.arange(self.column.shape[1])).all())

    def changes(self) -> list[tuple[Segment, Segment]]:
        """(before, after) wherever the channel names change (segments are merged where they do not)."""
        return list(zip(self.segments, self.segments[1:], strict=False))

    def per_column(self, a: np.ndarray, fill) -> np.ndarray:
        """a (frames, channels) rearranged as (frames, len(names)), fill where a frame has no such channel."""
        n = len(self.column)
        if self.uniform:
            return a
        out = np.full((n, len(self.names)), fill, dtype=a.dtype)
        if not n or not self.column.shape[1]:
            return out
        rows = np.arange(n)
        for c in range(self.column.shape[1]):
            col = self.column[:, c]
            has = col >= 0
            out[rows[has], col[has]] = a[has, c]
        return out


def by_name(fr: Frames, layout: Layout | None = None) -> Frames:
    """fr with one channel per name of channel_layout: a column is the same sensor in every
    frame (NaN, no fault, no flags where a frame lacks it), and `first_channel` points into
    those columns. fr itself when the channels never change. For views that plot or sum a
    channel over the whole log (report); exports use the layout directly."""
    import dataclasses

    layout = layout or channel_layout(fr)
    if layout.uniform and list(layout.names) == list(fr.names):
        return fr
    n, width = len(fr), fr.channels
    first = fr.first_channel.astype(np.int64)
    own = (first >= 0) & (first < width)
    rows = np.flatnonzero(own)
    first[rows] = layout.column[rows, first[rows]]  # a GLOBAL cause keeps its marker
    nan = np.nan
    return dataclasses.replace(
        fr, names=list(layout.names), n_channels=np.full(n, len(layout.names), fr.n_channels.dtype),
        first_channel=first.astype(fr.first_channel.dtype),
        temp_c=layout.per_column(fr.temp_c, nan), cj_c=layout.per_column(fr.cj_c, nan),
        rate_c_per_s=layout.per_column(fr.rate_c_per_s, nan), dose_cem43=layout.per_column(fr.dose_cem43, nan),
        fault=layout.per_column(fr.fault, 0), warn=layout.per_column(fr.warn, 0), trip=layout.per_column(fr.trip, 0))


def index_layout(fr: Frames, names: list[str]) -> Layout:
    """Channel c of every frame in column c, named names[c] (ch<c> past the end of names)."""
    width = fr.channels
    names = list(names[:width]) + [f"ch{c}" for c in range(len(names), width)]
    column = np.where(np.arange(width) < fr.n_channels[:, None].astype(np.intp), np.arange(width), -1)
    seg = Segment(0, int(fr.config_hash[0]) if len(fr) else 0, tuple(names), True)
    return Layout(names, column.astype(np.intp).reshape(len(fr), width), [seg])


def _config_names(cfg) -> tuple[str, ...] | None:
    chans = cfg.get("channels") if isinstance(cfg, dict) else None
    if not isinstance(chans, list) or not all(isinstance(ch, dict) and isinstance(ch.get("name"), str)
                                              for ch in chans):
        return None
    names = tuple(ch["name"] for ch in chans)
    return names if len(set(names)) == len(names) else None


def _config_hash(cfg) -> int | None:
    from tgfw import config

    try:
        return config.config_hash(config.validate(cfg))
    except Exception:  # noqa: BLE001 - any configuration the firmware would refuse has no hash
        return None


def _configs_in_log(fr: Frames) -> dict[int, tuple[str, ...]]:
    """Channel names by configuration hash: the log header's, and every configuration the
    board sent whole in answer to GET (`OK GET i/n <piece>`) while it was recorded."""
    known: dict[int, tuple[str, ...]] = {}
    cfg = fr.meta.get("config")
    names = _config_names(cfg)
    if names is not None:
        h = fr.meta.get("config_hash")
        try:
            h = int(h, 16) if isinstance(h, str) else _config_hash(cfg)
        except ValueError:
            h = None
        if h is not None:
            known[h] = names
    pieces: list[str] = []
    for _, _, item in fr.items:
        if not (isinstance(item, protocol.Reply) and item.verb == "GET" and item.ok):
            continue
        head, _, rest = item.detail.partition(" ")
        i, _, total = head.partition("/")
        if not (i.isdigit() and total.isdigit()) or int(i) != len(pieces) + 1:
            pieces = []
            if i != "1":
                continue
        pieces.append(rest)
        if i == total:
            try:
                got = json.loads("".join(pieces))
            except ValueError:
                got = None
            pieces = []
            names, h = _config_names(got), _config_hash(got)
            if names is not None and h is not None:
                known.setdefault(h, names)
    return known


def channel_layout(fr: Frames) -> Layout:
    """The channels of every frame, named from what the log records about configurations.

    A segment (frames with one configuration hash and channel count) takes the names of
    the configuration with that hash: the log header's, or one the board sent whole in
    answer to GET. A segment right after a CONFIG event (the board tightened a limit:
    same channels, new hash) keeps the names of the one before. A log whose header has a
    configuration but no hash names segments of that channel count with it (as older
    logs were read). Any other segment's channels are ch<i>: the log does not say which
    sensors they are, and they are never put in the columns of named channels.
    """
    n = len(fr)
    width = fr.channels
    if not n:
        names = list(fr.names)
        return Layout(names, np.zeros((0, width), np.intp), [])
    key = (fr.config_hash.astype(np.int64) << 8) | fr.n_channels
    starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1)).tolist()
    known = _configs_in_log(fr)
    header = _config_names(fr.meta.get("config"))
    by_count = header if header is not None and fr.meta.get("config_hash") is None else None
    config_events = sorted(at for at, _, item in fr.items
                           if isinstance(item, protocol.Event) and item.event == protocol.EV_CONFIG)
    segments: list[Segment] = []
    for s in starts:
        h, cnt = int(fr.config_hash[s]), int(fr.n_channels[s])
        names = known.get(h)
        named = names is not None and len(names) == cnt
        if not named and segments:
            prev = segments[-1]
            j = np.searchsorted(config_events, prev.start, side="right")
            tightened = j < len(config_events) and config_events[j] <= s
            if tightened and len(prev.names) == cnt and prev.named:
                names, named = prev.names, True
                known.setdefault(h, names)
        if not named and by_count is not None and len(by_count) == cnt:
            names, named = by_count, True
        if not named:
            names = tuple(f"ch{c}" for c in range(cnt))
        segments.append(Segment(s, h, tuple(names), named))
    union: list[str] = []
    for seg in segments:
        union += [nm for nm in seg.names if nm not in union]
    seg_cols = np.full((len(segments), width), -1, np.intp)
    for k, seg in enumerate(segments):
        seg_cols[k, :len(seg.names)] = [union.index(nm) for nm in seg.names]
    seg_of = np.searchsorted(np.array(starts), np.arange(n), side="right") - 1
    # Merge segments that are the same channel set (a tightened limit): report changes only.
    merged = [segments[0]]
    for seg in segments[1:]:
        if seg.names != merged[-1].names:
            merged.append(seg)
    return Layout(union, seg_cols[seg_of], merged)


# The vectorised decoder.


class _Group:
    """Decoded fields of the fast frames of one record length, in record order."""

    def __init__(self, rec_idx: np.ndarray, n_ch: int, length: int):
        n = len(rec_idx)
        self.rec = rec_idx
        self.n_ch = n_ch
        self.length = length  # of the records' data
        self.misread = False  # a header is not the record the index says (log.scan_file)
        # Every row is written by the chunk that holds it (_decode_chunk).
        self.ok = arrays.empty(n, bool)
        self.head_ok = arrays.empty(n, bool)
        self.scalars = {name: arrays.empty(n, dtype) for name, dtype in _SCALARS.items()}
        self.t_dev = arrays.empty(n, np.float64)
        self.t_host = arrays.empty(n, np.int64)
        self.interlock = arrays.empty(n, bool)
        self.temp, self.cj, self.rate, self.dose = (arrays.empty((n, n_ch), np.float64) for _ in range(4))
        self.fault, self.warn, self.trip = (arrays.empty((n, n_ch), np.uint8) for _ in range(3))


_SCALARS = {"seq": np.int64, "t_s": np.uint32, "t_us": np.uint32, "state": np.uint8, "flags": np.uint8,
            "config_hash": np.uint32, "global_causes": np.uint8, "first_channel": np.uint8, "first_cause": np.uint8,
            "first_fault": np.uint8, "max_late_us": np.uint32, "overruns": np.uint32, "dropped": np.uint32}


def _rows(b: np.ndarray, starts: np.ndarray, width: int, stride: int, out: np.ndarray) -> None:
    """out[i, :width] = b[starts[i] : starts[i] + width], copying runs of equally spaced rows at once."""
    n = len(starts)
    if n == 0:
        return
    breaks = np.flatnonzero(np.diff(starts) != stride) + 1
    if len(breaks) > n // 16:
        out[:, :width] = b[starts[:, None] + np.arange(width)]
        return
    bounds = np.concatenate(([0], breaks, [n]))
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        view = np.lib.stride_tricks.as_strided(b[int(starts[s]):], shape=(e - s, width), strides=(stride, 1))
        out[s:e, :width] = view


@functools.lru_cache(maxsize=64)
def _valid_headers_crc(n: int) -> int:
    block = bytes(28) + zlib.crc32(bytes(28)).to_bytes(4, "little")
    return zlib_ng.crc32(block * n)


def _headers_ok(head: np.ndarray) -> np.ndarray:
    """Which of n record headers (n, 32) carry a good header CRC (bytes 28..31 = CRC-32 of 0..27).

    Two checks of the whole set first: the CRC of the XOR of all headers (every single bad
    header shows) and the CRC of all headers in a row (two bad headers always show: x has
    order 2**32 - 1 modulo the CRC-32 polynomial, so x**(256 d) - 1 is prime to it for
    every d below 2**24, far more than a chunk); more, independently damaged, can only
    hide with probability 2**-64. When either fails, every header is checked on its own.
    """
    n = len(head)
    folded = np.bitwise_xor.reduce(head.view(np.uint64), axis=0).view(np.uint8)
    base = zlib.crc32(bytes(28))
    syndrome = zlib.crc32(folded[:28].tobytes()) ^ int.from_bytes(folded[28:32].tobytes(), "little")
    if n % 2 == 0:
        syndrome ^= base
    if syndrome == 0 and zlib_ng.crc32(head) == _valid_headers_crc(n):
        return np.ones(n, bool)
    h16 = head.view("<u2")
    return _crc_of_rows(lambda q: h16[:, q], 28, n) == head.view("<u4")[:, 7]


@functools.lru_cache(maxsize=32)
def _valid_rows_crcs(width: int, start: int, m: int, n: int) -> tuple[tuple[int, ...], int]:
    """For n rows of `width` bytes, each a valid record header (bytes 0 .. 31) when start is
    log.RECORD_SIZE (nothing when 0), then 00 00, a valid m-byte message (payload + its
    CRC), zeros: the CRC-32 of their XOR, of its header and its frame part apart (bytes
    before start, and from start), and the CRC-32 of all the rows in a row. They are the
    same for any valid headers and messages (CRC-32 is affine and every message followed
    by its CRC has the same residue)."""
    head = bytes(28) + zlib.crc32(bytes(28)).to_bytes(4, "little") if start else b""
    zeros = bytes(m - 4)
    row = head + bytes(2) + zeros + zlib.crc32(zeros).to_bytes(4, "little")
    row += bytes(width - len(row))
    folded = row if n % 2 else bytes(width)
    parts = (folded[:start], folded[start:]) if start else (folded,)
    return tuple(zlib.crc32(p) for p in parts), zlib_ng.crc32(row * n)


def _rows_crcs_ok(x: np.ndarray, ok: np.ndarray, start: int, m: int, folded: np.ndarray) -> bool:
    """True when every row of x (n, w) uint8 with ok set carries a good link CRC and, with
    start = log.RECORD_SIZE, a good record header CRC: bytes 0 .. 31 a record header (28
    bytes and their CRC), bytes start + 2 .. start + m + 1 payload + CRC, every other byte
    0. folded: the XOR of those rows as uint64 (kernels.cobs_decode_rows gives it).

    As for the record headers (_headers_ok), the rows are checked together: the CRC of
    the XOR of their headers and of their frames, apart, shows any one bad row (a header
    and a frame are each as well checked as by their own CRC), and the CRC of all of them
    in a row any two (x has order 2**32 - 1 modulo the CRC-32 polynomial, which divides
    no 8 * w * d below it: rows of w bytes, d rows apart; a chunk is far shorter). More
    bad rows, independently damaged, can only hide with probability 2**-64. zlib-ng
    computes the last at tens of gigabytes per second. False means some row may be bad:
    each must then be checked on its own (_link_crcs, _headers_ok).
    """
    sel = x if ok.all() else x[ok]
    fold_want, row_want = _valid_rows_crcs(x.shape[1], start, m, len(sel))
    f = folded.view(np.uint8)
    parts = (f[:start], f[start:]) if start else (f,)
    return (tuple(zlib.crc32(p) for p in parts) == fold_want) and zlib_ng.crc32(sel) == row_want


def _data_crcs_ok(raw: np.ndarray, length: int, n: int) -> bool:
    """True when the data CRCs of n records (each header's bytes 24..27: the CRC-32 of the
    record's data) hold, so far as their XOR shows: raw is the XOR of the n rows as the
    loader copied them (the header, then the data of `length` bytes at byte 32).

    CRC-32 is affine, crc(d) = A(d) ^ crc(zeros): the XOR of n CRCs is the CRC of the XOR
    of the data, with crc(zeros) once more when n is even. Any one record whose data
    no longer matches its header shows; more can only hide with probability 2**-32.
    False means some record may be bad (_data_crcs)."""
    r = raw.view(np.uint8)
    want = int.from_bytes(r[24:28].tobytes(), "little")
    got = zlib.crc32(r[log.RECORD_SIZE:log.RECORD_SIZE + length])
    if n % 2 == 0:
        got ^= _zeros_crc(length)
    return got == want


@functools.lru_cache(maxsize=16)
def _zeros_crc(length: int) -> int:
    return zlib.crc32(bytes(length))


def _data_crcs(b: np.ndarray, data_off: np.ndarray, length: int, head: np.ndarray) -> np.ndarray:
    """Which records (data at data_off in b, headers (n, 32)) have data whose CRC-32 is
    the one their header holds, each on its own."""
    view = memoryview(b)
    crc = zlib.crc32
    got = np.fromiter((crc(view[o:o + length]) for o in data_off.tolist()), np.uint32, len(data_off))
    return got == np.ascontiguousarray(head[:, 24:28]).view("<u4").ravel()


def _link_crcs(x: np.ndarray, start: int, m: int) -> np.ndarray:
    """Which rows of x (as _rows_crcs_ok) carry a good link CRC, every row on its own (one
    table lookup per byte pair)."""
    r16 = x.view(np.uint16)[:, start // 2:]
    return _crc_of_rows(lambda q: r16[:, q], m, len(x), shift=2) == CRC_RESIDUE


def _link_crcs_exact(x: np.ndarray, ok: np.ndarray, m: int) -> np.ndarray:
    """As _link_crcs, with zlib, and only rows with ok set can pass: rows (n, w) uint8,
    payload + CRC at bytes 2 .. m + 1."""
    w = x.shape[1]
    flat = memoryview(x.reshape(-1))
    crc = zlib.crc32
    res = np.array([crc(flat[i:i + m]) for i in range(2, len(x) * w, w)], np.uint32)
    return ok & (res == CRC_RESIDUE)


def _scratch(ws, name: str, shape: tuple, dtype) -> np.ndarray:
    """A work array kept between the chunks a thread decodes: fresh ones cost a page fault
    per 4 KiB on every chunk. Its content is whatever the last chunk left."""
    bufs = ws.__dict__.setdefault("bufs", {})
    a = bufs.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = bufs[name] = arrays.empty(shape, dtype)
    return a


def _decode_chunk(b: np.ndarray, idx, g: _Group, lo: int, hi: int, ws) -> None:
    """Decode g's records lo .. hi - 1 (of the log's bytes b, indexed by idx) into g[lo:hi]."""
    sl = slice(lo, hi)
    length = g.length
    data_off = idx.offsets[g.rec[sl]] + log.RECORD_SIZE
    m = length - 3  # payload + CRC; the record is 00, m + 1 COBS bytes, 00
    x, ok, folded, raw = _decoded_rows(b, data_off, length, ws, log.RECORD_SIZE)
    # The data CRCs: a record whose data is not what its header says goes to _walk, which
    # reports it as the careful reader does.
    if not _data_crcs_ok(raw, length, len(data_off)):
        ok &= _data_crcs(b, data_off, length, x[:, :log.RECORD_SIZE])
    # The record headers (the scan trusts runs of equal records) and the link CRCs.
    if _rows_crcs_ok(x, ok, log.RECORD_SIZE, m, folded):
        head_ok = ok.copy()
        if not ok.all():
            head_ok[~ok] = _headers_ok(x[~ok, :log.RECORD_SIZE])
    else:
        head_ok = _headers_ok(np.ascontiguousarray(x[:, :log.RECORD_SIZE]))
        ok &= _link_crcs(x, log.RECORD_SIZE, m)
    g.head_ok[sl] = head_ok
    if kernels.telemetry_fields(x, g.n_ch, length, log.Kind.DEVICE, protocol.VERSION, protocol.KIND_TELEMETRY,
                                protocol.FL_INTERLOCK_ON, ok, lo, g.rec, idx.t_ns,
                                tuple(g.scalars[name] for name in _SCALARS), (g.t_dev, g.t_host, g.interlock),
                                g.temp, g.cj, g.rate, g.dose, g.fault, g.warn, g.trip):
        g.misread = True
    g.ok[sl] = ok


def _decoded_rows(b: np.ndarray, data_off: np.ndarray, length: int, ws, start: int):
    """The records of data length `length` at data_off in b (the log's bytes) as decoded
    frames: (rows, ok, folded, raw). rows: uint8 (n, start + length rounded up to 8), with
    start = log.RECORD_SIZE each record whole, its header first, or with start = 0 its
    data only, decoded as kernels.cobs_decode_rows leaves them; ok: which were whole
    frames (00 COBS 00); folded: the XOR of the whole frames' rows as uint64; raw: the XOR
    of every row as copied, before decoding. rows is ws's work array."""
    n = len(data_off)
    x = _scratch(ws, "x", (n, (start + length + 7) // 8 * 8), np.uint8)
    _rows(b, data_off - start, start + length, log.RECORD_SIZE + length, x)
    ok = np.empty(n, bool)
    folded = np.empty(x.shape[1] // 8, np.uint64)
    raw = np.empty(x.shape[1] // 8, np.uint64)
    kernels.cobs_decode_rows(x, start, length, ok, folded, raw)
    return x, ok, folded, raw


def _payloads(b: np.ndarray, data_off: np.ndarray, length: int, n_ch: int, ws, exact: bool = False):
    """The records of data length `length` at data_off read as telemetry frames of n_ch channels:
    (ok, p). ok[i] is True when record i is one whole frame (00 COBS 00) with a good link
    CRC, protocol version, kind, channel count and t_us, that is exactly when
    protocol.Decoder, between frames, reads it as one Telemetry. p is the payloads as a
    record array (_payload_dtype) inside ws's work arrays: valid until the next call with ws.

    exact: every link CRC is computed on its own (no check of the frames together first).
    """
    m = length - 3  # payload + CRC; the record is 00, m + 1 COBS bytes, 00
    x, ok, folded, _ = _decoded_rows(b, data_off, length, ws, 0)
    if exact:
        ok &= _link_crcs_exact(x, ok, m)
    elif not _rows_crcs_ok(x, ok, 0, m, folded):
        ok &= _link_crcs(x, 0, m)
    p = x.view(np.uint64).view(_payload_dtype(n_ch, x.shape[1], 2)).ravel()
    ok &= (p["version"] == protocol.VERSION) & (p["kind"] == protocol.KIND_TELEMETRY)
    ok &= (p["n_channels"] == n_ch) & (p["t_us"] <= 999_999)
    return ok, p


def _decode_groups(b: np.ndarray, idx, threads: int | None, chunk: int, progress=None) -> list[_Group]:
    """Decode the DEVICE records of every telemetry length. Each record's header is checked
    against the index (g.misread, see log.scan_file's trusted runs), and its host time
    is written into idx.t_ns."""
    chunk = max(1, min(chunk, 65536))  # the two-bad-rows guarantee of _rows_crcs_ok: 8 * width * chunk < 2**32
    order = arrays.empty(len(idx.kinds), np.int64)
    ends = kernels.group_by_length(idx.kinds, idx.lengths, log.Kind.DEVICE, _LENGTH_GROUPS, order)
    groups = []
    jobs = []
    for k, (length, n_ch) in enumerate(log._TELEMETRY_LENGTHS.items()):
        rec = order[ends[k - 1] if k else 0:ends[k]]
        if not len(rec):
            continue
        g = _Group(rec, n_ch, length)
        groups.append(g)
        jobs += [(g, lo, min(lo + chunk, len(rec))) for lo in range(0, len(rec), chunk)]
    ws = threading.local()  # each thread's work arrays, freed with this call
    workers = min(2, os.cpu_count() or 1) if threads is None else max(1, threads)
    done = 0  # bytes of the records decoded, for progress
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="thermoguard-frames") as pool:
            for (g, lo, hi), fut in [(job, pool.submit(_decode_chunk, b, idx, *job, ws)) for job in jobs]:
                fut.result()
                if progress is not None:
                    done += (hi - lo) * (log.RECORD_SIZE + g.length)
                    progress(done)
    else:
        for g, lo, hi in jobs:
            _decode_chunk(b, idx, g, lo, hi, ws)
            if progress is not None:
                done += (hi - lo) * (log.RECORD_SIZE + g.length)
                progress(done)
    return groups


# Group k of kernels.group_by_length: the k-th telemetry length (log._TELEMETRY_LENGTHS).
_LENGTH_GROUPS = np.full(max(log._TELEMETRY_LENGTHS) + 1, -1, np.int64)
_LENGTH_GROUPS[list(log._TELEMETRY_LENGTHS)] = np.arange(len(log._TELEMETRY_LENGTHS))


# The exact path, and putting it together.


def _between_frames(dec: protocol.Decoder) -> bool:
    """True when a whole frame record (00 frame 00) would give just that frame: `dec` holds
    nothing, in text mode or in frame mode. Afterwards it is in text mode, holding nothing.

    Reads Decoder internals (protocol.Decoder).
    """
    return not dec._chunk and (dec._in_frame or not dec._line)


def load_telemetry(path, *, threads: int | None = None, chunk: int = CHUNK, progress=None) -> Frames:
    """Every telemetry frame of the log at path as arrays, and the other items; see Frames.

    progress(bytes), when given, is told how far the work has gone, a chunk at a time.

    Raises log.LogError when the file is not a readable log. Damage inside the log is
    reported in .damage (as `log.verify` words it), never raised.
    """
    f = log._File(path)
    try:
        b = np.frombuffer(f.buf, np.uint8)
        try:
            # Telemetry records are taken on trust by the scan: decoding reads every
            # header of them anyway, checks it, and fills in its host time.
            idx = log.scan_file(f, frozenset(log._TELEMETRY_LENGTHS))
            groups = _decode_groups(b, idx, threads, chunk, progress)
            if any(g.misread or not g.head_ok.all() for g in groups):
                # A header was not the record the index says, or is damaged: the careful
                # reader must resynchronise there, as log.decoded_items does. The strict
                # scan leaves every such header to it (no progress: it went to the end).
                idx = log.scan_file(f)
                groups = _decode_groups(b, idx, threads, chunk)
        finally:
            del b  # the mapping can only close once no array looks into it
        n_rec = len(idx.offsets)
        fast_rec = np.zeros(n_rec, bool)
        head_bad = np.zeros(n_rec, bool)
        for g in groups:
            if g.ok.all() and g.head_ok.all():  # as a clean log is: no masks to build
                fast_rec[g.rec] = True
            else:
                fast_rec[g.rec[g.ok & g.head_ok]] = True
                head_bad[g.rec[~g.head_ok]] = True
        slow_items, fast_rec, damage = _walk(f.buf, idx, fast_rec, head_bad)
    finally:
        f.close(wait=False)  # every array of the result is a copy: nothing looks into the mapping
    if progress is not None:
        progress(f.size)
    return _assemble(idx, groups, fast_rec, slow_items, damage)


def _walk(mm, idx, fast_rec: np.ndarray, head_bad: np.ndarray):
    """Feed every record that is not a fast frame to a Decoder, in order, as log.decoded_items does.

    Returns the items as (record index, sub-order, t_ns, item), the fast-frame mask (less
    the frames the Decoder had to read itself) and damage found in records the scan did
    not check.
    """
    kinds, t_ns, offsets, lengths = idx.kinds, idx.t_ns, idx.offsets, idx.lengths
    n_rec = len(kinds)
    last_t = 0  # host time of the last DEVICE record read: what a flush is stamped with
    out: list[tuple[int, int, int, Any]] = []
    damage: list[tuple[int, str]] = []
    dec = protocol.Decoder()
    slow = np.flatnonzero(~fast_rec).tolist() + [n_rec]
    prev = -1
    fast_rec = fast_rec.copy()

    def emit(r, items, t):
        for sub, item in enumerate(items):
            out.append((r, sub, t, item))

    for r in slow:
        k = prev + 1  # records prev+1 .. r-1 are fast frames: the Decoder must be between frames
        while k < r and not _between_frames(dec):
            fast_rec[k] = False
            emit(k, dec.feed(_data(mm, offsets[k], lengths[k])), int(t_ns[k]))
            k += 1
        if k < r:  # the Decoder would have read whole frames: it is in text mode, holding nothing
            dec._in_frame = False
            last_t = int(t_ns[r - 1])
        elif r > prev + 1:
            last_t = int(t_ns[r - 1])
        prev = r
        if r == n_rec:
            break
        kind = int(kinds[r])
        off = int(offsets[r])
        data = _data(mm, off, lengths[r])
        if head_bad[r] or not _record_ok(mm, off, data):
            damage.append((off, _damage_words(mm, off, kind, len(data), head_bad[r])))
            continue
        t = int(t_ns[r])
        if kind == log.Kind.DEVICE:
            last_t = t
            emit(r, dec.feed(data), t)
        elif kind == log.Kind.GAP:
            emit(r, dec.flush(), last_t)
            dec = protocol.Decoder()
            out.append((r, 1 << 20, t, log.Gap(data.decode("utf-8", "replace"))))
        elif kind == log.Kind.NOTE:
            out.append((r, 0, t, log.Note(data.decode("utf-8", "replace"))))
    emit(n_rec, dec.flush(), last_t)
    return out, fast_rec, damage


def _data(mm, off, n) -> bytes:
    a = int(off) + log.RECORD_SIZE
    return mm[a:a + int(n)] if mm is not None else b""


def _record_ok(mm, off: int, data: bytes) -> bool:
    """The record's header and data CRCs, as the careful reader checks them."""
    head = mm[off:off + log.RECORD_SIZE]
    n, _kind, _fl, _res, _t, _chain, dcrc, hcrc = log.RECORD.unpack(head)
    return zlib.crc32(head[:28]) == hcrc and zlib.crc32(data) == dcrc


def _damage_words(mm, off: int, kind: int, n: int, head_bad: bool) -> str:
    head = mm[off:off + log.RECORD_SIZE]
    if head_bad or zlib.crc32(head[:28]) != log.RECORD.unpack(head)[7]:
        return (f"{log.RECORD_SIZE + n} bytes are not a valid record (record header CRC does not match); "
                f"reading resumes at {off + log.RECORD_SIZE + n}")
    name = log.Kind(kind).name if kind in (1, 2, 3, 4) else f"type {kind}"
    return f"{name} record of {n} bytes is damaged (its data CRC does not match)"


def _assemble(idx, groups: list[_Group], fast_rec: np.ndarray, slow_items, damage) -> Frames:
    slow_tel = [(r, s, t, it) for r, s, t, it in slow_items if isinstance(it, protocol.Telemetry)]
    others = [(r, s, t, it) for r, s, t, it in slow_items if not isinstance(it, protocol.Telemetry)]
    picks = [(g, fast_rec[g.rec]) for g in groups]
    picks = [(g, sel) for g, sel in picks if sel.any()]
    # Order key of every frame: (record index, sub-order); a record is fast or slow, never both.
    slow_keys = np.array([(r << 21) + s for r, s, _, _ in slow_tel], np.int64)
    if len(picks) == 1 and not slow_tel:
        g, sel = picks[0]
        every = bool(sel.all())

        def take(a):
            return a if every else a[sel]

        keys = take(g.rec)  # record indices: no other frames to order them among
        okeys = np.array([r for r, _, _, _ in others], np.int64)
        cols = {name: take(a) for name, a in g.scalars.items()}
        t_host, t_dev, interlock = take(g.t_host), take(g.t_dev), take(g.interlock)
        n_channels = np.full(len(keys), g.n_ch, np.uint8)
        temp, cj, rate, dose = take(g.temp), take(g.cj), take(g.rate), take(g.dose)
        fault, warn, trip = take(g.fault), take(g.warn), take(g.trip)
        fast_count = len(keys)
    else:
        keys, cols, t_host, n_channels, temp, cj, rate, dose, fault, warn, trip, fast_count = _merge(
            idx, picks, slow_tel, slow_keys)
        t_dev = cols["t_s"] + cols["t_us"] / 1e6
        interlock = (cols["flags"] & protocol.FL_INTERLOCK_ON) != 0
        okeys = np.array([(r << 21) + s for r, s, _, _ in others], np.int64)
    positions = np.searchsorted(keys, okeys).tolist() if len(others) else []
    items = [(p, t, it) for p, (_, _, t, it) in zip(positions, others, strict=True)]
    n = len(keys)
    return Frames(
        path=idx.path, meta=idx.meta, names=channel_names(idx.meta, temp.shape[1]),
        seq=cols["seq"], t_s=cols["t_s"], t_us=cols["t_us"], t_dev_s=t_dev, t_host_ns=t_host,
        state=cols["state"], flags=cols["flags"], interlock=interlock,
        config_hash=cols["config_hash"], global_causes=cols["global_causes"], first_channel=cols["first_channel"],
        first_cause=cols["first_cause"], first_fault=cols["first_fault"], max_late_us=cols["max_late_us"],
        overruns=cols["overruns"], dropped=cols["dropped"], n_channels=n_channels,
        temp_c=temp, cj_c=cj, fault=fault, warn=warn, trip=trip, rate_c_per_s=rate, dose_cem43=dose,
        items=items, damage=sorted(idx.damage + damage), torn_tail_offset=idx.torn_tail_offset, closed=idx.closed,
        fast=fast_count, slow=n - fast_count)


def _merge(idx, picks, slow_tel, slow_keys):
    """Frames from several record lengths and from the Decoder, in log order."""
    parts_key = [g.rec[sel].astype(np.int64) << 21 for g, sel in picks] + [slow_keys]
    keys = np.concatenate(parts_key)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    n = len(keys)
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)  # where each part's rows go
    width = max([g.n_ch for g, _ in picks] + [len(t.channels) for _, _, _, t in slow_tel] + [0])
    cols = {name: np.zeros(n, dtype) for name, dtype in _SCALARS.items()}
    t_host = np.zeros(n, np.int64)
    n_channels = np.zeros(n, np.uint8)
    temp, cj, rate, dose = (np.full((n, width), np.nan) for _ in range(4))
    fault, warn, trip = (np.zeros((n, width), np.uint8) for _ in range(3))
    at = 0
    for g, sel in picks:
        k = int(sel.sum())
        dst = pos[at:at + k]
        at += k
        for name in _SCALARS:
            cols[name][dst] = g.scalars[name][sel]
        t_host[dst] = g.t_host[sel]
        n_channels[dst] = g.n_ch
        c = g.n_ch
        temp[dst, :c], cj[dst, :c], rate[dst, :c], dose[dst, :c] = g.temp[sel], g.cj[sel], g.rate[sel], g.dose[sel]
        fault[dst, :c], warn[dst, :c], trip[dst, :c] = g.fault[sel], g.warn[sel], g.trip[sel]
    fast_count = at
    for k, (_, _, t_ns, t) in enumerate(slow_tel):
        i = int(pos[at + k])
        for name in _SCALARS:
            cols[name][i] = getattr(t, name)
        t_host[i] = t_ns
        n_channels[i] = len(t.channels)
        for c, ch in enumerate(t.channels):
            temp[i, c] = np.nan if ch.temp_c is None else ch.temp_c
            cj[i, c] = np.nan if ch.cj_c is None else ch.cj_c
            rate[i, c] = np.nan if ch.rate_c_per_s is None else ch.rate_c_per_s
            dose[i, c] = ch.dose_cem43
            fault[i, c], warn[i, c], trip[i, c] = ch.fault, ch.warn, ch.trip
    return keys, cols, t_host, n_channels, temp, cj, rate, dose, fault, warn, trip, fast_count


def state_names() -> list[str]:
    """Name of every state code, as Telemetry.state_name gives it."""
    return [protocol._name(codes.STATE_NAMES, i) for i in range(256)]


def fault_words() -> list[str]:
    """The fault word of every fault code, as Channel.fault_word gives it."""
    return [protocol._fault_word(i) for i in range(256)]
