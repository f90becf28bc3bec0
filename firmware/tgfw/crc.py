"""CRC-32 (IEEE 802.3, the one of zlib.crc32 and binascii.crc32) for the safety cycle.

binascii.crc32 returns an int up to 2**32, a heap-allocated bigint on a 32-bit port. These
functions never return the CRC as an int: they write its bytes into a buffer or compare
it there. The arithmetic runs in viper machine words, masked to 32 bits so the 64-bit
Unix port gives the same bytes as a 32-bit board. Nothing here allocates.

A port without the native emitter cannot compile this module (the viper decorator is a
compile-time error there); the `*_py` functions below are the same algorithm in plain
Python on 16-bit halves (every int stays small) for such a port, and a reference that
the tests compare with the viper code.
"""
# ruff: noqa: F821 - ptr8, ptr32 and uint are viper's built-in types

import micropython

# 256 little-endian u32 entries, filled once at import by _fill_table.
_TABLE = bytearray(1024)


@micropython.viper
def _fill_table(table):
    t = ptr32(table)
    # 0xEDB88320 (reflected polynomial) built from halves: a literal above 2**30 would be
    # a bigint constant on a 32-bit port.
    poly = (uint(0xEDB8) << 16) | uint(0x8320)
    for i in range(256):
        c = uint(i)
        for _ in range(8):
            if c & 1:
                c = (c >> 1) ^ poly
            else:
                c = c >> 1
        t[i] = c


_fill_table(_TABLE)


@micropython.viper
def crc32_into(data, n: int, out, off: int):
    """Write CRC-32 of data[0:n] little-endian into out[off:off+4]."""
    t = ptr32(_TABLE)
    d = ptr8(data)
    o = ptr8(out)
    c = (uint(0xFFFF) << 16) | uint(0xFFFF)
    for i in range(n):
        c = uint(t[(c ^ d[i]) & 0xFF]) ^ (c >> 8)
    c = ~c
    o[off] = c & 0xFF
    o[off + 1] = (c >> 8) & 0xFF
    o[off + 2] = (c >> 16) & 0xFF
    o[off + 3] = (c >> 24) & 0xFF


@micropython.viper
def crc32_check(data, n: int) -> bool:
    """True when data[n:n+4] holds the little-endian CRC-32 of data[0:n]."""
    t = ptr32(_TABLE)
    d = ptr8(data)
    c = (uint(0xFFFF) << 16) | uint(0xFFFF)
    for i in range(n):
        c = uint(t[(c ^ d[i]) & 0xFF]) ^ (c >> 8)
    c = ~c
    return (
        uint(d[n]) == (c & 0xFF)
        and uint(d[n + 1]) == ((c >> 8) & 0xFF)
        and uint(d[n + 2]) == ((c >> 16) & 0xFF)
        and uint(d[n + 3]) == ((c >> 24) & 0xFF)
    )


@micropython.viper
def crc32_hex_into(data, n: int, out, off: int):
    """Write CRC-32 of data[0:n] as 8 lowercase hex digits into out[off:off+8]."""
    t = ptr32(_TABLE)
    d = ptr8(data)
    o = ptr8(out)
    c = (uint(0xFFFF) << 16) | uint(0xFFFF)
    for i in range(n):
        c = uint(t[(c ^ d[i]) & 0xFF]) ^ (c >> 8)
    c = ~c
    for k in range(8):
        v = int((c >> (28 - 4 * k)) & 0xF)
        o[off + k] = v + 48 if v < 10 else v + 87


def crc32(data):
    """CRC-32 as an int, for code outside the cycle (a bigint on a 32-bit port)."""
    b = bytearray(4)
    crc32_into(data, len(data), b, 0)
    return b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24


# Plain-Python CRC on 16-bit halves, for ports without viper.

_T_LO: list[int] = []  # low 16 bits of each table entry
_T_HI: list[int] = []


def _fill_halves():
    for i in range(256):
        lo, hi = i, 0
        for _ in range(8):
            carry = lo & 1
            lo = (lo >> 1) | ((hi & 1) << 15)
            hi >>= 1
            if carry:
                lo ^= 0x8320
                hi ^= 0xEDB8
        _T_LO.append(lo)
        _T_HI.append(hi)


def _crc_halves(data, n):
    lo = hi = 0xFFFF
    t_lo, t_hi = _T_LO, _T_HI
    for i in range(n):
        k = (lo ^ data[i]) & 0xFF
        lo = t_lo[k] ^ ((lo >> 8) | ((hi & 0xFF) << 8))
        hi = t_hi[k] ^ (hi >> 8)
    return lo ^ 0xFFFF, hi ^ 0xFFFF


def crc32_into_py(data, n, out, off):
    if not _T_LO:
        _fill_halves()
    lo, hi = _crc_halves(data, n)
    out[off] = lo & 0xFF
    out[off + 1] = lo >> 8
    out[off + 2] = hi & 0xFF
    out[off + 3] = hi >> 8


def crc32_check_py(data, n):
    if not _T_LO:
        _fill_halves()
    lo, hi = _crc_halves(data, n)
    return (
        data[n] == lo & 0xFF
        and data[n + 1] == lo >> 8
        and data[n + 2] == hi & 0xFF
        and data[n + 3] == hi >> 8
    )


def crc32_hex_into_py(data, n, out, off):
    if not _T_LO:
        _fill_halves()
    lo, hi = _crc_halves(data, n)
    for k in range(8):
        v = ((hi, lo)[k >> 2] >> (12 - 4 * (k & 3))) & 0xF
        out[off + k] = v + 48 if v < 10 else v + 87
