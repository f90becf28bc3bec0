import binascii
import json

import micropython
from fwtest import req
from tgfw import crc

VECTORS = "tests/vectors/protocol.json"


def _data(n, seed):
    # Deterministic bytes with every value, zeros and 0xFF runs included.
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return out


def _le(v):
    return bytes((v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, (v >> 24) & 0xFF))


@req("SR-LNK-02")
def test_crc_matches_binascii_for_every_length_up_to_300():
    out = bytearray(8)
    for n in range(301):
        data = _data(n, n)
        want = binascii.crc32(data)
        crc.crc32_into(data, n, out, 2)
        assert bytes(out[2:6]) == _le(want), n
        crc.crc32_hex_into(data, n, out, 0)
        assert bytes(out) == b"%08x" % want, n
        assert crc.crc32(data) == want


@req("SR-LNK-02")
def test_crc_known_values():
    assert crc.crc32(b"") == 0
    assert crc.crc32(b"123456789") == 0xCBF43926
    assert crc.crc32(b"\xff" * 4) == 0xFFFFFFFF
    assert crc.crc32(bytes(256)) == binascii.crc32(bytes(256))


@req("SR-LNK-02")
def test_crc_of_every_golden_payload_matches_binascii_and_checks():
    with open(VECTORS) as f:
        vectors = json.load(f)
    for group in ("telemetry", "events", "replies"):
        for v in vectors[group]:
            payload = bytes.fromhex(v["payload_hex"])
            n = len(payload)
            buf = bytearray(n + 4)
            buf[:n] = payload
            crc.crc32_into(buf, n, buf, n)
            assert bytes(buf[n:]) == _le(binascii.crc32(payload)), v["name"]
            assert crc.crc32_check(buf, n)


@req("SR-LNK-02")
def test_check_rejects_every_single_and_double_bit_flip():
    n = 40
    buf = bytearray(n + 4)
    buf[:n] = _data(n, 7)
    crc.crc32_into(buf, n, buf, n)
    assert crc.crc32_check(buf, n)
    bits = (n + 4) * 8
    for i in range(bits):
        buf[i >> 3] ^= 1 << (i & 7)
        assert not crc.crc32_check(buf, n), i
        for j in range(i + 1, min(bits, i + 40)):
            buf[j >> 3] ^= 1 << (j & 7)
            assert not crc.crc32_check(buf, n), (i, j)
            buf[j >> 3] ^= 1 << (j & 7)
        buf[i >> 3] ^= 1 << (i & 7)
    assert crc.crc32_check(buf, n)


@req("SR-LNK-02", "SR-LNK-07")
def test_crc_works_on_memoryviews_and_offsets():
    data = _data(100, 3)
    mv = memoryview(data)[10:60]
    out = bytearray(12)
    crc.crc32_into(mv, 50, out, 8)
    assert bytes(out[8:]) == _le(binascii.crc32(data[10:60]))


@req("SR-LNK-07", "SR-LNK-06")
def test_crc_functions_allocate_nothing_and_return_no_int():
    data = _data(200, 5)
    buf = bytearray(204)
    buf[:200] = data
    hexbuf = bytearray(8)
    results = [None, None, None]
    micropython.heap_lock()
    try:
        for _ in range(1000):
            results[0] = crc.crc32_into(data, 200, buf, 200)
            results[1] = crc.crc32_check(buf, 200)
            results[2] = crc.crc32_hex_into(data, 200, hexbuf, 0)
    finally:
        micropython.heap_unlock()
    # No CRC ever comes back as an int (a bigint on a 32-bit port).
    assert results == [None, True, None]


@req("SR-LNK-02")
def test_plain_python_fallback_matches():
    out = bytearray(4)
    hexbuf = bytearray(8)
    for n in (0, 1, 9, 64, 255):
        data = _data(n, n + 11)
        want = binascii.crc32(data)
        crc.crc32_into_py(data, n, out, 0)
        assert bytes(out) == _le(want), n
        crc.crc32_hex_into_py(data, n, hexbuf, 0)
        assert bytes(hexbuf) == b"%08x" % want
        buf = bytearray(data) + out
        assert crc.crc32_check_py(buf, n)
        buf[0 if n else 1] ^= 4
        assert not crc.crc32_check_py(buf, n)
