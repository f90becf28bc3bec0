"""Compiled loops of the log loader (numba): what numpy cannot do without many passes.

Each kernel gives exactly what the reference code it replaces gives
(tests/host/test_kernels.py; tests/host/test_frames.py checks the whole loader against
protocol.Decoder). They release the GIL, so `frames` runs them on two threads. Compiled
on first use and cached beside this file (numba's cache), or compiled at every run where
no cache folder can be written.
"""

from __future__ import annotations

import zlib

import numpy as np
from numba import njit as _njit


def njit(**options):
    """numba.njit(nogil=True, cache=True, **options); without the cache where numba finds
    no folder to write it to (it refuses then, at import)."""
    def compile_(fn):
        try:
            return _njit(nogil=True, cache=True, **options)(fn)
        except RuntimeError:
            return _njit(nogil=True, **options)(fn)
    return compile_


@njit()
def cobs_decode_rows(x, start, length, ok, fold, raw):
    """Decode the frames in rows of x in place and say which are whole frames.

    x: uint8 (n, w), w >= start + length; row i holds one record's data at bytes start ..
    start + length - 1: 00, a COBS-encoded message of length - 3 bytes, 00 (bytes before
    start, a record header, are left as they are). Afterwards ok[i] is True when the data
    was exactly that: the delimiters, no 0x00 inside, and a code chain from its byte 1
    that ends exactly at the closing 00 (a message below 254 bytes is one COBS block).
    The data of every whole frame becomes its message at bytes start + 2 .. start + length
    - 2 (each code byte a 0x00), and the bytes past the data of every row 0: the layout
    `frames` reads fields and link CRCs from (other rows are left part decoded).

    fold (uint64, w / 8) becomes the XOR of the rows that are whole frames, decoded, for
    frames._rows_crcs_ok; raw (the same) the XOR of every row as it came, bytes past the
    data 0, for frames._data_crcs_ok.

    Rows are done four at a time, each pass over them while they are in the L1 cache.
    The chains of the four are followed together: each step of a chain waits on the byte
    the last one read, so four at once keep the core busy.
    """
    n, w = x.shape
    last = start + length - 1  # the closing 00
    words = x.view(np.uint64)
    ones = np.uint64(0x0101010101010101)
    highs = np.uint64(0x8080808080808080)
    q0 = start // 8
    nw = w // 8
    # Bytes that are not inside the data (the delimiters, what is before and after) set to
    # 0xFF in each word, so that a zero byte in the masked words is a 0x00 inside.
    mask = np.zeros(nw, np.uint64)
    for j in range(q0 * 8, w):
        if j <= start or j >= last:
            mask[j // 8] |= np.uint64(0xFF) << np.uint64(8 * (j % 8))
    fold[:] = 0
    raw[:] = 0
    # Unsigned positions: numba then reads x[r, p] without checking for a negative p.
    ulast = np.uint64(last)
    bad = np.uint64(last + 1)  # where a chain that meets a 0x00 goes
    first = np.uint64(start + 1)
    uq0, unw, uw = np.uint64(q0), np.uint64(nw), np.uint64(w)
    i = 0
    while i < n:
        k = min(4, n - i)
        for r in range(i, i + k):
            row, wr = x[r], words[r]
            for j in range(bad, uw):
                row[j] = 0
            zero = np.uint64(0)
            for q in range(uq0):
                raw[q] ^= wr[q]
            for q in range(uq0, unw):
                v = wr[q]
                raw[q] ^= v
                v |= mask[q]
                zero |= (v - ones) & ~v & highs
            ok[r] = row[start] == 0 and row[last] == 0 and zero == 0
        if k == 4:
            r0, r1, r2, r3 = x[i], x[i + 1], x[i + 2], x[i + 3]
            # Where each chain is: at a code byte, or done at `last` (or past it: bad).
            p0 = p1 = p2 = p3 = first
            while p0 < ulast or p1 < ulast or p2 < ulast or p3 < ulast:
                p0 = _chain_step(r0, p0, ulast, bad)
                p1 = _chain_step(r1, p1, ulast, bad)
                p2 = _chain_step(r2, p2, ulast, bad)
                p3 = _chain_step(r3, p3, ulast, bad)
            ok[i] &= p0 == ulast
            ok[i + 1] &= p1 == ulast
            ok[i + 2] &= p2 == ulast
            ok[i + 3] &= p3 == ulast
        else:
            for r in range(i, i + k):
                p0 = first
                while p0 < ulast:
                    p0 = _chain_step(x[r], p0, ulast, bad)
                ok[r] &= p0 == ulast
        for r in range(i, i + k):
            if ok[r]:
                wr = words[r]
                for q in range(unw):
                    fold[q] ^= wr[q]
        i += k


@njit(inline="always")
def _chain_step(row, p, last, bad):
    """One step of a COBS chain at p (a code byte, before `last`): the code byte becomes the
    0x00 it stands for; returns where the next code byte is, or `bad` after a 0x00. A chain
    that is done (p >= last) stays."""
    if p < last:
        v = row[p]
        row[p] = 0
        return p + v if v else bad
    return p


@njit(inline="always")
def _u32(x, i, q):
    return np.uint32(x[i, q]) | (np.uint32(x[i, q + 1]) << 8) | (np.uint32(x[i, q + 2]) << 16) | (
        np.uint32(x[i, q + 3]) << 24)


# The loader's rows: a record's header (log.RECORD_SIZE bytes), then its frame as
# cobs_decode_rows leaves it, the payload from byte P. Constants, so that numba reads a
# field's bytes as one load.
HEAD = 32
P = HEAD + 2


@njit()
def telemetry_fields(x, n_ch, length, device, version, kind, interlock, ok, lo, rec, t_ns, scalars, times,
                     temp, cj, rate, dose, fault, warn, trip):
    """The fields of the records in rows of x (a record header, then its decoded telemetry
    payload from byte P) into row lo + i of the outputs, and each record's host time into
    t_ns[rec[lo + i]]. Returns how many headers do not say data length `length` and kind
    `device` (the record the index says, log.scan_file).

    ok[i] is cleared unless the payload has this version and kind, n_ch channels and t_us
    below 1,000,000. scalars: seq, t_s, t_us, state, flags, config_hash, global_causes,
    first_channel, first_cause, first_fault, max_late_us, overruns, dropped (the order of
    frames._SCALARS). times: t_dev_s (t_s + t_us / 1e6), t_host_ns and whether the flags
    have the `interlock` bit. Temperatures, cold junctions and rates are NaN where the
    wire says "no value" (INT32_MIN, INT16_MIN) or the channel is faulted, as the
    Decoder reads them; scaling by a power of two is exact.
    """
    (seq, t_s, t_us, state, flags, config_hash, global_causes, first_channel, first_cause, first_fault,
     max_late_us, overruns, dropped) = scalars
    t_dev, t_host, on = times
    misread = 0
    # Payload offsets (frames._payload_dtype): version 0, kind 1, seq 2, t_s 6, t_us 10,
    # state 14 ... n_channels 36, then 19 bytes a channel from 37.
    for i in range(x.shape[0]):
        r = lo + i
        if _u32(x, i, 0) != length or x[i, 4] != device:
            misread += 1
        th = np.int64(_u32(x, i, 8)) | (np.int64(_u32(x, i, 12)) << 32)
        t_ns[rec[r]] = th
        t_host[r] = th
        us = _u32(x, i, P + 10)
        ok[i] &= (x[i, P] == version) & (x[i, P + 1] == kind) & (x[i, P + 36] == n_ch) & (us <= 999_999)
        seq[r] = _u32(x, i, P + 2)
        s = _u32(x, i, P + 6)
        t_s[r] = s
        t_us[r] = us
        t_dev[r] = s + us / 1e6
        state[r] = x[i, P + 14]
        fl = x[i, P + 15]
        flags[r] = fl
        on[r] = (fl & interlock) != 0
        config_hash[r] = _u32(x, i, P + 16)
        global_causes[r] = x[i, P + 20]
        first_channel[r] = x[i, P + 21]
        first_cause[r] = x[i, P + 22]
        first_fault[r] = x[i, P + 23]
        max_late_us[r] = _u32(x, i, P + 24)
        overruns[r] = _u32(x, i, P + 28)
        dropped[r] = _u32(x, i, P + 32)
        for c in range(n_ch):
            q = P + 37 + 19 * c
            t = np.int32(_u32(x, i, q))
            j = np.int16(np.uint16(x[i, q + 4]) | (np.uint16(x[i, q + 5]) << 8))
            f = x[i, q + 6]
            fault[r, c] = f
            warn[r, c] = x[i, q + 7]
            trip[r, c] = x[i, q + 8]
            rt = np.int32(_u32(x, i, q + 9))
            temp[r, c] = np.nan if f != 0 or t == -2147483648 else t * 0.0009765625
            cj[r, c] = np.nan if f != 0 or j == -32768 else j * 0.015625
            rate[r, c] = np.nan if f != 0 or rt == -2147483648 else rt * 0.0009765625
            dose[r, c] = _u32(x, i, q + 13) * 0.0009765625 + (
                np.uint32(x[i, q + 17]) | (np.uint32(x[i, q + 18]) << 8)) * 2.0**-26
    return misread


@njit(inline="always")
def _le32(a, p):
    return np.uint32(a[p]) | (np.uint32(a[p + 1]) << 8) | (np.uint32(a[p + 2]) << 16) | (np.uint32(a[p + 3]) << 24)


# The table of the usual byte-at-a-time CRC-32 loop (zlib's polynomial): T[i] is the CRC
# register after byte i from 0. zlib.crc32(bytes([i])) is T[i ^ 0xFF] ^ 0xFF000000 (its
# start and final inversions), and T is linear, so T[i] = zlib.crc32(bytes([i])) ^ that
# of byte 0.
CRC_TABLE = np.array([zlib.crc32(bytes([i])) ^ zlib.crc32(b"\0") for i in range(256)], np.uint32)


@njit(inline="always")
def _crc32(a, p, n, table):
    """zlib.crc32(a[p : p + n])."""
    c = np.uint32(0xFFFFFFFF)
    for k in range(n):
        c = table[(c ^ a[p + k]) & 0xFF] ^ (c >> 8)
    return c ^ np.uint32(0xFFFFFFFF)


@njit()
def equal_run(buf, pos, size, count, offsets, t_ns, table):
    """How many records from pos (at most count, each whole before size) have the data
    length and kind of the one at pos and a good header CRC (bytes 28..31 = CRC-32 of
    bytes 0..27); their offsets and host times go to offsets[:m] and t_ns[:m]. The run
    stops before a header that fails, so the careful reader reads it and resynchronises
    as it does anywhere (log.scan_records). table: CRC_TABLE."""
    n = _le32(buf, pos)
    kind = buf[pos + 4]
    stride = 32 + np.int64(n)
    m = 0
    while m < count and pos + stride <= size:
        if _le32(buf, pos) != n or buf[pos + 4] != kind or _crc32(buf, pos, 28, table) != _le32(buf, pos + 28):
            break
        offsets[m] = pos
        t = np.int64(0)
        for k in range(8):
            t |= np.int64(buf[pos + 8 + k]) << (8 * k)
        t_ns[m] = t
        m += 1
        pos += stride
    return m


@njit()
def arithmetic(out, start, step):
    """out[k] = start + k * step (numpy's arange, into an array that exists)."""
    v = np.int64(start)
    for k in range(out.shape[0]):
        out[k] = v
        v += step


@njit()
def group_by_length(kinds, lengths, kind, groups, order):
    """The records of kind `kind` whose length has a group (groups[length] >= 0, lengths
    past the end of groups have none), by group, into order (as long as kinds): returns
    ends, order[ends[k - 1] : ends[k]] (ends[-1] = 0) holding the record indices of
    group k in record order."""
    n_groups = groups.max() + 1
    ends = np.zeros(n_groups, np.int64)
    for i in range(kinds.shape[0]):
        if kinds[i] == kind and lengths[i] < groups.shape[0] and groups[lengths[i]] >= 0:
            ends[groups[lengths[i]]] += 1
    at = np.zeros(n_groups, np.int64)
    total = 0
    for k in range(n_groups):
        at[k] = total
        total += ends[k]
        ends[k] = total
    for i in range(kinds.shape[0]):
        if kinds[i] == kind and lengths[i] < groups.shape[0] and groups[lengths[i]] >= 0:
            k = groups[lengths[i]]
            order[at[k]] = i
            at[k] += 1
    return ends
