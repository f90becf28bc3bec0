"""The serial link, host side: decode the board's stream, encode commands (docs/protocol.md).

The board sends frames `0x00 + COBS(payload + crc32_le(payload)) + 0x00` mixed with its
own text (prints, tracebacks), which never contains 0x00. `Decoder.feed` takes bytes as
they arrive and returns telemetry, events, replies and text lines; it never raises.
The encoders mirror the firmware's (firmware/tgfw/link.py) byte for byte: they make the
golden vectors (tools/make_vectors.py) and feed virtual boards in tests.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tgfw import codes
from tgfw.codes import (  # noqa: F401 - the frame vocabulary, one definition for board and host
    EV_ARM,
    EV_BOOT,
    EV_CONFIG,
    EV_DISARM,
    EV_REFUSED,
    EV_RESET,
    EV_TRIP,
    EV_WARNING,
    EVENT_NAMES,
    FL_CONFIG_VALID,
    FL_HAS_READBACK,
    FL_HOST_OK,
    FL_INTERLOCK_ON,
    FL_READBACK_HIGH,
    KIND_EVENT,
    KIND_REPLY,
    KIND_TELEMETRY,
    VERSION,
)
from tgfw.commands import (  # noqa: F401 - one definition with the board's reader
    E_BAD_ARGUMENT,
    E_CHECKSUM,
    E_CONTROL,
    E_MISSING_ARGUMENT,
    E_NO_CHECKSUM,
    E_NOT_ASCII,
    E_TOO_LONG,
    E_UNEXPECTED_ARGUMENT,
    E_UNKNOWN_VERB,
    M_CHECKSUM,
    M_CHECKSUM_FORM,
    M_CONTROL,
    M_NO_CHECKSUM,
    M_NOT_ASCII,
    M_TOO_LONG,
    M_UNKNOWN_VERB,
    MAX_LINE,
    VERBS,
    check_args,
)

MAX_CHANNELS = 8
MAX_PAYLOAD = 249  # + 4 CRC bytes = 253: one COBS block, so COBS adds exactly one byte
SEQ_MOD = 1 << 30
INT32_MIN = -(1 << 31)
INT16_MIN = -(1 << 15)

HEADER = struct.Struct("<BBIII")  # version, kind, seq, t_s, t_us
TELEMETRY_BODY = struct.Struct("<BBIBBBBIIIB")  # state .. n_channels
CHANNEL = struct.Struct("<ihBBBiIH")  # temp, cj, fault, warn, trip, rate, dose_hi, dose_lo
TELEMETRY_FIXED = HEADER.size + TELEMETRY_BODY.size  # 37
MIN_FRAME = HEADER.size + 4  # smallest COBS-decoded frame: header + CRC
MAX_WIRE_CHUNK = MAX_PAYLOAD + 5  # longest COBS-encoded frame between its two zeros
MAX_TEXT_LINE = 4096  # a longer device line is cut (memory stays bounded)

Q10 = 1024.0


# Decoded items.


@dataclass(frozen=True)
class Channel:
    index: int
    temp_c: float | None  # None whenever the channel is faulted or has no reading
    cj_c: float | None
    fault: int  # codes.F_*
    fault_word: str  # codes.FAULT_NAMES, "" when healthy
    warn: int  # codes.C_* bits in pre-alarm
    trip: int  # codes.C_* bits latched
    rate_c_per_s: float | None
    dose_cem43: float

    @property
    def warn_words(self) -> list[str]:
        return codes.channel_cause_words(self.warn, self.fault)

    @property
    def trip_words(self) -> list[str]:
        return codes.channel_cause_words(self.trip, self.fault)


@dataclass(frozen=True)
class Telemetry:
    seq: int
    t_s: int
    t_us: int
    state: int  # codes.BOOT .. codes.TRIPPED
    flags: int
    config_hash: int
    global_causes: int  # codes.G_* bits latched
    first_channel: int  # channel index, or codes.GLOBAL
    first_cause: int  # a C_* bit for a channel, a G_* bit for GLOBAL, 0 for none
    first_fault: int
    max_late_us: int
    overruns: int
    dropped: int
    channels: tuple[Channel, ...]

    @property
    def t_dev_s(self) -> float:
        return self.t_s + self.t_us / 1e6

    @property
    def state_name(self) -> str:
        return _name(codes.STATE_NAMES, self.state)

    @property
    def interlock_on(self) -> bool:
        return bool(self.flags & FL_INTERLOCK_ON)

    @property
    def readback_high(self) -> bool:
        return bool(self.flags & FL_READBACK_HIGH)

    @property
    def has_readback(self) -> bool:
        return bool(self.flags & FL_HAS_READBACK)

    @property
    def host_ok(self) -> bool:
        return bool(self.flags & FL_HOST_OK)

    @property
    def config_valid(self) -> bool:
        return bool(self.flags & FL_CONFIG_VALID)

    def first_cause_text(self, names: list[str] | None = None) -> str:
        """The first trip cause as exports show it (`foramen:high`, `host_timeout`), or ""."""
        if not self.first_cause:
            return ""
        if self.first_channel == codes.GLOBAL:
            return ",".join(codes.global_cause_words(self.first_cause))
        i = self.first_channel
        name = names[i] if names and i < len(names) else f"ch{i}"
        return name + ":" + ",".join(codes.channel_cause_words(self.first_cause, self.first_fault))


@dataclass(frozen=True)
class Event:
    seq: int
    t_s: int
    t_us: int
    event: int
    state: int
    text: str

    @property
    def t_dev_s(self) -> float:
        return self.t_s + self.t_us / 1e6

    @property
    def event_name(self) -> str:
        return _name(EVENT_NAMES, self.event)

    @property
    def state_name(self) -> str:
        return _name(codes.STATE_NAMES, self.state)


@dataclass(frozen=True)
class Reply:
    seq: int
    t_s: int
    t_us: int
    text: str  # `OK <VERB> [details]` or `ERR <VERB> <reason>`

    @property
    def t_dev_s(self) -> float:
        return self.t_s + self.t_us / 1e6

    @property
    def ok(self) -> bool:
        return self.text == "OK" or self.text.startswith("OK ")

    @property
    def verb(self) -> str:
        parts = self.text.split(" ", 2)
        return parts[1] if len(parts) > 1 else ""

    @property
    def detail(self) -> str:
        parts = self.text.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""


@dataclass(frozen=True)
class Text:
    """One line of the board's own output (print, traceback), without its line end."""

    text: str


Item = Telemetry | Event | Reply | Text


def _name(names: tuple[str, ...], i: int) -> str:
    return names[i] if 0 <= i < len(names) and names[i] else f"?{i}"


# Framing.


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b:
            out.append(b)
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """The decoded bytes, or None when data is not valid COBS."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload longer than {MAX_PAYLOAD} bytes")
    return b"\0" + cobs_encode(payload + struct.pack("<I", crc32(payload))) + b"\0"


def _header(kind: int, seq: int, t_s: int, t_us: int) -> bytes:
    return HEADER.pack(VERSION, kind, seq, t_s, t_us)


def _i32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _cj_i16(cj_q10: int, fault: int) -> int:
    """Cold junction Q10 -> 1/64 C, rounded, as the firmware does it."""
    x = _i32(cj_q10)
    if fault or x == INT32_MIN:
        return INT16_MIN
    return max(-32767, min(32767, (x + 8) >> 4))


def telemetry_payload(seq: int, t_s: int, t_us: int, state: int, flags: int, global_causes: int,
                      first_channel: int, first_cause: int, first_fault: int, max_late_us: int,
                      overruns: int, dropped: int, temp, cj, fault, warn, trip, rate, dose_hi, dose_lo,
                      config_hash: int = 0) -> bytes:
    """The payload the firmware's Telemetry.encode makes from the same arguments.

    temp, cj and rate are Q10 (1/1024 C, C/s), INT32_MIN for none; the rest per channel as in
    docs/protocol.md. A faulted channel gets INT32_MIN temperature and rate, INT16_MIN cj.
    """
    n = len(temp)
    if n > MAX_CHANNELS:
        raise ValueError(f"at most {MAX_CHANNELS} channels")
    out = bytearray(_header(KIND_TELEMETRY, seq, t_s, t_us))
    out += TELEMETRY_BODY.pack(state, flags, config_hash & 0xFFFFFFFF, global_causes, first_channel,
                               first_cause, first_fault, max_late_us, overruns, dropped, n)
    for i in range(n):
        f = fault[i]
        out += CHANNEL.pack(
            INT32_MIN if f else _i32(temp[i]),
            _cj_i16(cj[i], f),
            f & 0xFF,
            warn[i] & 0xFF,
            trip[i] & 0xFF,
            INT32_MIN if f else _i32(rate[i]),
            dose_hi[i] & 0xFFFFFFFF,
            dose_lo[i] & 0xFFFF,
        )
    return bytes(out)


def _utf8(text: str | bytes, limit: int) -> bytes:
    data = text.encode() if isinstance(text, str) else bytes(text)
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and data[cut] & 0xC0 == 0x80:  # never split a character
        cut -= 1
    return data[:cut]


def event_payload(seq: int, t_s: int, t_us: int, event: int, state: int, text: str = "") -> bytes:
    head = _header(KIND_EVENT, seq, t_s, t_us) + bytes((event, state))
    return head + _utf8(text, MAX_PAYLOAD - len(head))


def reply_payload(seq: int, t_s: int, t_us: int, text: str) -> bytes:
    head = _header(KIND_REPLY, seq, t_s, t_us)
    return head + _utf8(text, MAX_PAYLOAD - len(head))


def encode_telemetry(*args, **kwargs) -> bytes:
    return encode_frame(telemetry_payload(*args, **kwargs))


def encode_event(seq: int, t_s: int, t_us: int, event: int, state: int, text: str = "") -> bytes:
    return encode_frame(event_payload(seq, t_s, t_us, event, state, text))


def encode_reply(seq: int, t_s: int, t_us: int, text: str) -> bytes:
    return encode_frame(reply_payload(seq, t_s, t_us, text))


# Payload decoding.


class Malformed(ValueError):
    """A frame with a good CRC whose content this version does not understand."""


def _fault_word(fault: int) -> str:
    return codes.FAULT_NAMES[fault] if fault < len(codes.FAULT_NAMES) else f"fault{fault}"


def _opt(v: int, none: int, scale: float) -> float | None:
    return None if v == none else v / scale


def decode_payload(p: bytes) -> Telemetry | Event | Reply:
    """Decode a CRC-checked payload; raises Malformed."""
    if len(p) < HEADER.size:
        raise Malformed("frame shorter than its header")
    version, kind, seq, t_s, t_us = HEADER.unpack_from(p)
    if version != VERSION:
        raise Malformed(f"protocol version {version}")
    if t_us > 999_999:
        raise Malformed("t_us out of range")
    body = p[HEADER.size :]
    if kind == KIND_TELEMETRY:
        if len(p) < TELEMETRY_FIXED:
            raise Malformed("telemetry frame too short")
        (state, flags, chash, gcauses, first_ch, first_cause, first_fault, late, overruns, dropped,
         n) = TELEMETRY_BODY.unpack_from(p, HEADER.size)
        if n > MAX_CHANNELS or len(p) != TELEMETRY_FIXED + n * CHANNEL.size:
            raise Malformed("telemetry length does not match its channel count")
        chans = []
        for i in range(n):
            at = TELEMETRY_FIXED + i * CHANNEL.size
            temp, cj, fault, warn, trip, rate, dhi, dlo = CHANNEL.unpack_from(p, at)
            chans.append(
                Channel(
                    index=i,
                    # The firmware never sends a temperature for a faulted channel; the
                    # decoder enforces it too, so no faulted value can reach a display.
                    temp_c=None if fault else _opt(temp, INT32_MIN, Q10),
                    cj_c=None if fault else _opt(cj, INT16_MIN, 64.0),
                    fault=fault,
                    fault_word=_fault_word(fault),
                    warn=warn,
                    trip=trip,
                    rate_c_per_s=None if fault else _opt(rate, INT32_MIN, Q10),
                    dose_cem43=dhi / 1024 + dlo / 2**26,
                )
            )
        return Telemetry(seq, t_s, t_us, state, flags, chash, gcauses, first_ch, first_cause, first_fault,
                         late, overruns, dropped, tuple(chans))
    if kind == KIND_EVENT:
        if len(body) < 2:
            raise Malformed("event frame too short")
        return Event(seq, t_s, t_us, body[0], body[1], body[2:].decode("utf-8", "replace"))
    if kind == KIND_REPLY:
        return Reply(seq, t_s, t_us, body.decode("utf-8", "replace"))
    raise Malformed(f"unknown frame kind {kind}")


def decode_frame(chunk: bytes) -> Telemetry | Event | Reply | None:
    """Decode the bytes between two zeros; None when they are not a frame with a good CRC."""
    raw = cobs_decode(chunk)
    if raw is None or len(raw) < MIN_FRAME or not _crc_ok(raw):
        return None
    return decode_payload(raw[:-4])


def _crc_ok(raw: bytes) -> bool:
    return struct.unpack_from("<I", raw, len(raw) - 4)[0] == crc32(raw[:-4])


def _is_text(line: bytes) -> str | None:
    try:
        s = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(c.isprintable() or c == "\t" for c in s):
        return s
    return None


class Decoder:
    """Turns the board's byte stream into items; feed it bytes in any pieces.

    Counters: frames (good), crc_errors (chunks that are COBS-valid but fail the CRC),
    garbage (other chunks or lines that are neither a frame nor printable text),
    malformed (good CRC, content not understood), lost (frames missing from the
    sequence, wrap at 2**30 included), restarts (the device's time or sequence went
    backwards: a new session of the board), text_lines.
    """

    def __init__(self) -> None:
        self.frames = 0
        self.crc_errors = 0
        self.garbage = 0
        self.malformed = 0
        self.lost = 0
        self.restarts = 0
        self.text_lines = 0
        self._in_frame = False  # after a 0x00 that may open a frame
        self._chunk = bytearray()  # bytes of the chunk being collected in frame mode
        self._line = bytearray()  # text being collected in text mode
        self._last: tuple[int, int, int] | None = None  # seq, t_s, t_us of the last frame

    @property
    def rejected(self) -> int:
        return self.crc_errors + self.garbage + self.malformed

    def feed(self, data: bytes) -> list[Item]:
        out: list[Item] = []
        try:
            self._feed(bytes(data), out)
        except Exception:  # noqa: BLE001 - a decoder bug must not stop a recording
            self.garbage += 1
            self._chunk.clear()
            self._line.clear()
            self._in_frame = False
        return out

    def flush(self) -> list[Item]:
        """Items still held back (a last line without its end); call at the end of a stream."""
        out: list[Item] = []
        pending = bytes(self._chunk) if self._in_frame else b""
        self._chunk.clear()
        if pending and not self._frame(pending, out):  # a frame may lack only its closing zero
            self._not_a_frame(pending, out)
        if self._line:
            self._text_line(bytes(self._line), out)
            self._line.clear()
        return out

    def _feed(self, data: bytes, out: list[Item]) -> None:
        i, n = 0, len(data)
        while i < n:
            j = data.find(0, i)
            end = n if j < 0 else j
            if self._in_frame:
                self._chunk += data[i:end]
                if len(self._chunk) > MAX_WIRE_CHUNK:
                    # Too long for a frame: the last 0x00 did not open one; this is text.
                    self._in_frame = False
                    text = bytes(self._chunk)
                    self._chunk.clear()
                    self._text(text, out)
                    i = end  # a zero at `end` is read again, in text mode
                    continue
                if j >= 0:
                    chunk = bytes(self._chunk)
                    self._chunk.clear()
                    if chunk:
                        if self._frame(chunk, out):
                            self._in_frame = False  # the zero just read closed the frame
                        else:
                            self._not_a_frame(chunk, out)  # its zero may open the next frame
            else:
                self._text(data[i:end], out)
                if j >= 0:
                    # A zero in text mode opens a frame. Text held back without its line end
                    # is flushed: the board printed it just before sending a frame.
                    self._in_frame = True
                    if self._line:
                        line = bytes(self._line)
                        self._line.clear()
                        if self._frame(line, out):  # a frame whose opening zero was lost:
                            self._in_frame = False  # this zero closed it
                        else:
                            self._text_line(line, out)
            i = end + 1 if j >= 0 else n

    def _frame(self, chunk: bytes, out: list[Item]) -> bool:
        raw = cobs_decode(chunk)
        if raw is None or len(raw) < MIN_FRAME or not _crc_ok(raw):
            return False
        try:
            item = decode_payload(raw[:-4])
        except Malformed:
            self.malformed += 1
            return True  # a frame, only not one this version understands
        self.frames += 1
        self._track(item.seq, item.t_s, item.t_us)
        out.append(item)
        return True

    def _not_a_frame(self, chunk: bytes, out: list[Item]) -> None:
        """A chunk between zeros that is not a good frame: text, a corrupt frame or garbage."""
        lines = chunk.split(b"\n")
        if all(_is_text(x.rstrip(b"\r")) is not None for x in lines):
            for x in lines:
                if x:
                    self._text_line(x, out)
            return
        raw = cobs_decode(chunk)
        if raw is not None and len(raw) >= MIN_FRAME:
            self.crc_errors += 1
        else:
            self.garbage += 1

    def _text(self, data: bytes, out: list[Item]) -> None:
        line = self._line
        start = 0
        while True:
            k = data.find(b"\n", start)
            if k < 0:
                line += data[start:]
                break
            line += data[start:k]
            self._text_line(bytes(line), out)
            line.clear()
            start = k + 1
        while len(line) > MAX_TEXT_LINE:
            self._text_line(bytes(line[:MAX_TEXT_LINE]), out)
            del line[:MAX_TEXT_LINE]

    def _text_line(self, line: bytes, out: list[Item]) -> None:
        text = _is_text(line[:-1] if line.endswith(b"\r") else line)
        if text is None:
            self.garbage += 1
        else:
            self.text_lines += 1
            out.append(Text(text))

    def _track(self, seq: int, t_s: int, t_us: int) -> None:
        last = self._last
        self._last = (seq, t_s, t_us)
        if last is None:
            return
        gap = (seq - last[0] - 1) % SEQ_MOD
        if (t_s, t_us) < last[1:] or gap >= SEQ_MOD // 2:
            self.restarts += 1  # time or sequence went back: the board started again
        else:
            self.lost += gap


# Commands, host -> device: `VERB [ARGS]*CCCCCCCC\n`.



@dataclass(frozen=True)
class Command:
    verb: str
    args: str


class CommandError(ValueError):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def command_crc(text: str) -> str:
    """The checksum of a command: CRC-32 of the text before `*`, 8 lowercase hex digits."""
    return "{:08x}".format(crc32(text.encode("ascii")))


def encode_command(verb: str, args: str = "") -> bytes:
    text = f"{verb} {args}" if args else verb
    problem = check_args(verb, args)
    if problem:
        raise CommandError(*problem)
    if not all(0x20 <= ord(c) <= 0x7E for c in text):
        raise CommandError(E_NOT_ASCII, M_NOT_ASCII)
    if len(text) + 9 > MAX_LINE:
        raise CommandError(E_TOO_LONG, M_TOO_LONG)
    return (f"{text}*{command_crc(text)}\n").encode("ascii")


def parse_command(line: bytes) -> Command | None:
    """What the firmware's CommandReader makes of one line (with or without its \\n).

    Returns the command, None for a blank line (ignored), or raises CommandError with the
    kind the firmware reports. The same rules, byte by byte, as the firmware.
    """
    if line.endswith(b"\n"):
        line = line[:-1]
    kind = None
    kept = bytearray()
    cr = False

    def fail(k: str) -> None:
        nonlocal kind
        if kind is None:
            kind = k

    for b in line:
        if cr:
            cr = False
            fail(E_CONTROL)
        if b == 13:
            cr = True
        elif b < 0x20 or b == 0x7F:
            fail(E_CONTROL)
        elif b > 0x7F:
            fail(E_NOT_ASCII)
        elif len(kept) >= MAX_LINE:
            fail(E_TOO_LONG)
        elif kind is None:
            kept.append(b)
    if kind is not None:
        messages = {E_CONTROL: M_CONTROL, E_NOT_ASCII: M_NOT_ASCII, E_TOO_LONG: M_TOO_LONG}
        raise CommandError(kind, messages[kind])
    if not kept:
        return None
    star = kept.rfind(b"*")
    if star < 0:
        raise CommandError(E_NO_CHECKSUM, M_NO_CHECKSUM)
    text, given = kept[:star].decode("ascii"), kept[star + 1 :].decode("ascii")
    if len(given) != 8 or any(c not in "0123456789abcdef" for c in given):
        raise CommandError(E_CHECKSUM, M_CHECKSUM_FORM)
    if given != command_crc(text):
        raise CommandError(E_CHECKSUM, M_CHECKSUM)
    verb, _, args = text.partition(" ")
    args = args.strip()
    problem = check_args(verb, args)
    if problem:
        raise CommandError(*problem)
    return Command(verb, args)
