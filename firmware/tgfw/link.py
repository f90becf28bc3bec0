"""The serial link, device side: frames out, command lines in (docs/protocol.md).

Frames are `0x00 + COBS(payload + crc32_le(payload)) + 0x00`. Device text (prints,
tracebacks) never contains 0x00, so the host can tell the two apart. COBS input stays
at most 253 bytes, so COBS adds exactly one byte and every telemetry frame of a board has
the same length: it is encoded into one preallocated buffer, without allocating.

Values that can reach 2**31 (INT32_MIN markers, CRCs) are only ever handled as bytes,
in viper code: on a 32-bit port such an int would be a heap-allocated bigint.
"""
# ruff: noqa: F821 - ptr8, ptr32 and uint are viper's built-in types

import select
import struct

import micropython
from micropython import const

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
from tgfw.commands import (  # noqa: F401 - re-exported: the reader's vocabulary
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
    VERBS,
    check_args,
)
from tgfw.crc import crc32_hex_into, crc32_into

HEADER_SIZE = const(14)  # u8 version, u8 kind, u32 seq, u32 t_s, u32 t_us
TELEMETRY_FIXED = const(37)  # header + telemetry body up to and including n_channels
CHANNEL_SIZE = const(19)
MAX_CHANNELS = const(8)
MAX_PAYLOAD = const(249)  # + 4 CRC bytes = 253: COBS then adds exactly one byte
SEQ_MAX = const(0x3FFFFFFF)  # seq counts modulo 2**30: always a small int
_N_OFF = const(36)  # offset of n_channels in a telemetry payload


@micropython.native
def next_seq(seq):
    """The sequence number after seq (wraps to 0 after 2**30 - 1, never reaching 2**30)."""
    return 0 if seq >= SEQ_MAX else seq + 1


@micropython.viper
def _cobs(src, n: int, dst):
    """dst[0:n+3] = 0x00 + COBS(src[0:n]) + 0x00, for n <= 253 (one COBS block)."""
    s = ptr8(src)
    d = ptr8(dst)
    d[0] = 0
    code_at = 1
    code = 1
    o = 2
    for i in range(n):
        b = s[i]
        if b == 0:
            d[code_at] = code
            code_at = o
            code = 1
        else:
            d[o] = b
            code += 1
        o += 1
    d[code_at] = code
    d[o] = 0


@micropython.viper
def _pack_channels(payload, cols):
    """Write the per-channel records of a telemetry payload from the eight column arrays.

    The arrays are read as bytes, so a value is copied as its 4 little-endian bytes and
    never becomes an int the width of the machine word disagrees about.
    """
    p = ptr8(payload)
    temp = ptr8(cols[0])
    cj = ptr8(cols[1])
    fault = ptr32(cols[2])
    warn = ptr32(cols[3])
    trip = ptr32(cols[4])
    rate = ptr8(cols[5])
    dose_hi = ptr8(cols[6])
    dose_lo = ptr8(cols[7])
    n = int(p[_N_OFF])
    for i in range(n):
        b = TELEMETRY_FIXED + CHANNEL_SIZE * i
        a = 4 * i
        faulted = fault[i] != 0
        # A faulted channel never carries a temperature or a rate: INT32_MIN instead.
        if faulted:
            p[b] = 0
            p[b + 1] = 0
            p[b + 2] = 0
            p[b + 3] = 0x80
            p[b + 9] = 0
            p[b + 10] = 0
            p[b + 11] = 0
            p[b + 12] = 0x80
        else:
            p[b] = temp[a]
            p[b + 1] = temp[a + 1]
            p[b + 2] = temp[a + 2]
            p[b + 3] = temp[a + 3]
            p[b + 9] = rate[a]
            p[b + 10] = rate[a + 1]
            p[b + 11] = rate[a + 2]
            p[b + 12] = rate[a + 3]
            if rate[a] == 0 and rate[a + 1] == 0 and rate[a + 2] == 0 and rate[a + 3] == 0xC0:
                p[b + 12] = 0x80  # codes.RATE_UNKNOWN (-2**30) goes out as INT32_MIN
        # Cold junction: Q10 in, 1/64 C out (rounded); INT32_MIN or codes.MISSING in, or a
        # fault -> INT16_MIN.
        if faulted or (cj[a] == 0 and cj[a + 1] == 0 and cj[a + 2] == 0 and (cj[a + 3] == 0x80 or cj[a + 3] == 0xC0)):
            y = -32768
        else:
            top = int(cj[a + 3])
            x = int(cj[a]) | (int(cj[a + 1]) << 8) | (int(cj[a + 2]) << 16) | (((top ^ 0x80) - 0x80) << 24)
            if x > 0x100000:
                y = 32767
            elif x < -0x100000:
                y = -32767
            else:
                y = (x + 8) >> 4
                if y > 32767:
                    y = 32767
                elif y < -32767:
                    y = -32767
        p[b + 4] = y
        p[b + 5] = y >> 8
        p[b + 6] = fault[i]
        p[b + 7] = warn[i]
        p[b + 8] = trip[i]
        p[b + 13] = dose_hi[a]
        p[b + 14] = dose_hi[a + 1]
        p[b + 15] = dose_hi[a + 2]
        p[b + 16] = dose_hi[a + 3]
        p[b + 17] = dose_lo[a]
        p[b + 18] = dose_lo[a + 1]


@micropython.native
def _check_columns(cols, n):
    # Viper reads the columns unchecked: each must be an array('i') of n_channels items.
    for a in cols:
        if len(a) < n:
            raise ValueError("telemetry columns must be array('i') of n_channels items")


class Telemetry:
    """Encoder of the telemetry frames of a board with n_channels channels."""

    def __init__(self, n_channels, config_hash):
        if not 0 <= n_channels <= MAX_CHANNELS:
            raise ValueError("n_channels must be 0..8")
        n = TELEMETRY_FIXED + CHANNEL_SIZE * n_channels
        self._n = n
        self._p = bytearray(n + 4)  # payload + CRC
        self._wire = bytearray(n + 7)
        self.frame = memoryview(self._wire)
        self.payload = memoryview(self._p)[:n]
        self._cols = [None] * 8
        self._checked = [None] * 8
        p = self._p
        p[0] = VERSION
        p[1] = KIND_TELEMETRY
        p[_N_OFF] = n_channels
        if isinstance(config_hash, int):
            struct.pack_into("<I", p, 16, config_hash)  # once: may be a bigint on 32-bit
        else:
            p[16:20] = config_hash  # 4 bytes, as written by crc.crc32_into

    @micropython.native
    def encode(self, seq, t_s, t_us, state, flags, global_causes, first_channel, first_cause,
               first_fault, max_late_us, overruns, dropped,
               temp, cj, fault, warn, trip, rate, dose_hi, dose_lo):
        """Encode one frame and return a memoryview of it (valid until the next encode)."""
        p = self._p
        struct.pack_into("<IIIBB", p, 2, seq, t_s, t_us, state, flags)
        struct.pack_into("<BBBBIII", p, 20, global_causes, first_channel, first_cause, first_fault,
                         max_late_us, overruns, dropped)
        c = self._cols
        c[0] = temp
        c[1] = cj
        c[2] = fault
        c[3] = warn
        c[4] = trip
        c[5] = rate
        c[6] = dose_hi
        c[7] = dose_lo
        k = self._checked
        for i in range(8):
            if c[i] is not k[i]:  # new arrays: check them once
                _check_columns(c, p[_N_OFF])
                for j in range(8):
                    k[j] = c[j]
                break
        _pack_channels(p, c)
        n = self._n
        crc32_into(p, n, p, n)
        _cobs(p, n + 4, self._wire)
        return self.frame


def _utf8(text, limit):
    """text as UTF-8, cut at a character boundary to at most limit bytes."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut]


def _text_frame(kind, seq, t_s, t_us, head, text):
    """Frame of a rare kind (events, replies): allocates a fresh buffer each time."""
    data = _utf8(text, MAX_PAYLOAD - HEADER_SIZE - len(head))
    n = HEADER_SIZE + len(head) + len(data)
    p = bytearray(n + 4)
    p[0] = VERSION
    p[1] = kind
    struct.pack_into("<III", p, 2, seq, t_s, t_us)
    p[HEADER_SIZE:HEADER_SIZE + len(head)] = head
    p[HEADER_SIZE + len(head):n] = data
    crc32_into(p, n, p, n)
    wire = bytearray(n + 7)
    _cobs(p, n + 4, wire)
    return wire


def encode_event(seq, t_s, t_us, event, state, text=""):
    return _text_frame(KIND_EVENT, seq, t_s, t_us, bytes((event, state)), text)


def encode_reply(seq, t_s, t_us, text):
    return _text_frame(KIND_REPLY, seq, t_s, t_us, b"", text)


class Sender:
    """Writes frames only when the stream can take them now; otherwise drops and counts."""

    def __init__(self, stream):
        self._stream = stream
        self._poll = select.poll()
        self._poll.register(stream, select.POLLOUT)
        self.sent = 0
        self.dropped = 0
        self._writable()  # the first ipoll allocates its result tuple: not in the cycle

    @micropython.native
    def _writable(self):
        for _, ev in self._poll.ipoll(0):
            return ev & select.POLLOUT
        return 0

    @micropython.native
    def send(self, frame):
        if self._writable():
            try:
                n = self._stream.write(frame)
            except OSError:
                n = 0
            if n == len(frame):
                if self.sent < SEQ_MAX:
                    self.sent += 1
                return True
        # Not writable, or a short write: the frame is lost (the host resynchronises at the
        # next 0x00 and sees the gap in seq).
        if self.dropped < SEQ_MAX:
            self.dropped += 1
        return False


# Commands, host -> device: `VERB [ARGS]*CCCCCCCC\n`.

CMD_NONE = const(0)
CMD_HB = const(1)
CMD_LINE = const(2)
CMD_BAD = const(3)


MAX_LINE = const(200)  # bytes before the line end, checksum included (tgfw.commands.MAX_LINE)


class CommandReader:
    """Reads command lines without blocking.

    poll() returns CMD_NONE (no complete line yet), CMD_HB (a valid heartbeat: this path
    does not allocate), CMD_LINE (a valid command: self.verb, self.args) or CMD_BAD
    (self.error_kind, self.error; self.verb when the checksum was good). A bad line
    changes nothing but these attributes and self.bad_lines.

    A cycle calls poll() until it returns CMD_NONE; all these calls together read at most
    max_bytes_per_poll bytes, so a flood of lines cannot stretch the cycle.
    """

    def __init__(self, stream, max_bytes_per_poll=64):
        self._stream = stream
        self._poll = select.poll()
        self._poll.register(stream, select.POLLIN)
        self._max = max_bytes_per_poll
        self._budget = max_bytes_per_poll
        self._one = bytearray(1)
        self._line = bytearray(MAX_LINE)
        self._hex = bytearray(8)
        self.verb = ""
        self.args = ""
        self.error = ""
        self.error_kind = ""
        self.bad_lines = 0
        self._clear()
        self._readable()  # the first ipoll allocates its result tuple: not in the cycle

    @micropython.native
    def _clear(self):
        self._n = 0
        self._star = -1
        self._cr = False
        self._kind = None
        self._msg = None

    @micropython.native
    def _readable(self):
        for _, ev in self._poll.ipoll(0):
            return ev & select.POLLIN
        return 0

    @micropython.native
    def poll(self):
        one = self._one
        while self._budget > 0 and self._readable():
            try:
                got = self._stream.readinto(one)
            except OSError:
                break
            if not got:
                break
            self._budget -= 1
            r = self._take(one[0])
            if r:
                return r
        self._budget = self._max  # CMD_NONE ends this cycle's reading
        return CMD_NONE

    @micropython.native
    def _fail(self, kind, msg):
        if self._kind is None:  # the first problem of a line is the one reported
            self._kind = kind
            self._msg = msg

    @micropython.native
    def _take(self, b):
        if b == 10:
            r = self._end()
            self._clear()
            return r
        if self._cr:  # \r only directly before \n
            self._cr = False
            self._fail(E_CONTROL, M_CONTROL)
        if b == 13:
            self._cr = True
        elif b < 0x20 or b == 0x7F:
            self._fail(E_CONTROL, M_CONTROL)
        elif b > 0x7F:
            self._fail(E_NOT_ASCII, M_NOT_ASCII)
        elif self._n >= MAX_LINE:
            self._fail(E_TOO_LONG, M_TOO_LONG)
        elif self._kind is None:
            if b == 42:  # '*': the last one starts the checksum
                self._star = self._n
            self._line[self._n] = b
            self._n += 1
        return CMD_NONE

    @micropython.native
    def _bad(self, kind, msg):
        self.error_kind = kind
        self.error = msg
        if self.bad_lines < SEQ_MAX:
            self.bad_lines += 1
        return CMD_BAD

    @micropython.native
    def _end(self):
        self.verb = ""
        self.args = ""
        self.error = ""
        self.error_kind = ""
        if self._kind is not None:
            return self._bad(self._kind, self._msg)
        n = self._n
        star = self._star
        if n == 0:
            return CMD_NONE  # blank line: a terminal's Enter, nothing to answer
        if star < 0:
            return self._bad(E_NO_CHECKSUM, M_NO_CHECKSUM)
        line = self._line
        if n - star != 9:
            return self._bad(E_CHECKSUM, M_CHECKSUM_FORM)
        h = self._hex
        crc32_hex_into(line, star, h, 0)
        for i in range(8):
            c = line[star + 1 + i]
            if not (48 <= c <= 57 or 97 <= c <= 102):
                return self._bad(E_CHECKSUM, M_CHECKSUM_FORM)
            if c != h[i]:
                return self._bad(E_CHECKSUM, M_CHECKSUM)
        if star == 2 and line[0] == 72 and line[1] == 66:  # "HB": no allocation
            return CMD_HB
        # An authentic command: rare, may allocate.
        verb, _, args = bytes(line[:star]).decode().partition(" ")
        args = args.strip()
        self.verb = verb
        problem = check_args(verb, args)
        if problem:
            return self._bad(problem[0], problem[1])
        self.args = args
        return CMD_LINE


def encode_command(verb, args=""):
    """The command line for verb and args, checksum and \\n included."""
    text = verb + " " + args if args else verb
    data = text.encode()
    if check_args(verb, args) or len(data) + 9 > MAX_LINE:
        raise ValueError("bad command")
    for b in data:
        if b < 0x20 or b > 0x7E:
            raise ValueError("bad command")
    out = bytearray(len(data) + 10)
    out[:len(data)] = data
    out[len(data)] = 42
    crc32_hex_into(data, len(data), out, len(data) + 1)
    out[-1] = 10
    return bytes(out)
