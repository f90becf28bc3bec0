"""Random session logs as a recorder writes them, for the tests of the log readers
(test_frames.py, test_verify_fast.py): bursts of telemetry (runs of equal records)
between text, events, replies, corrupt and split frames, gaps, notes, other channel
counts, sequence wraps and board restarts."""

import random

from thermoguard import log, protocol

SEQ_MOD = protocol.SEQ_MOD
CONFIG = {"sample_hz": 10, "channels": [{"name": f"c{i}"} for i in range(3)]}


def telemetry(rng: random.Random, seq: int, t_s: int, t_us: int, n: int) -> bytes:
    return protocol.encode_telemetry(
        seq % SEQ_MOD, t_s, t_us, rng.randint(0, 3), rng.randint(0, 31), rng.choice([0, 2]),
        rng.choice([255, 0]), rng.choice([0, 1]), 0, rng.randint(0, 5000), 0, 0,
        [rng.choice([protocol.INT32_MIN, rng.randint(-300_000, 2_000_000), 0, 256]) for _ in range(n)],
        [rng.randint(-2000, 6000) for _ in range(n)], [rng.choice([0] * 6 + [1, 7]) for _ in range(n)],
        [rng.randint(0, 31) for _ in range(n)], [rng.choice([0, 0, 16]) for _ in range(n)],
        [rng.choice([protocol.INT32_MIN, rng.randint(-5000, 5000)]) for _ in range(n)],
        [rng.randint(0, 1 << 20) for _ in range(n)], [rng.randint(0, 65535) for _ in range(n)],
        config_hash=rng.choice([0x1A2B3C4D, 0x1A2B3C4D, 0]))


def flip(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


class Board:
    """A board's clock and sequence numbers, with the losses, wraps and restarts of a session."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.seq = rng.choice([rng.randrange(SEQ_MOD), SEQ_MOD - rng.randint(1, 40), 0])
        self.t_us = rng.randrange(0, 10**10)

    def tick(self) -> tuple[int, int, int]:
        self.seq = (self.seq + 1) % SEQ_MOD
        self.t_us += 100_000 + self.rng.randint(-40, 40)
        return self.seq, self.t_us // 1_000_000, self.t_us % 1_000_000

    def restart(self) -> None:
        self.seq = self.rng.choice([0, self.rng.randrange(SEQ_MOD)])
        self.t_us = self.rng.choice([self.rng.randrange(0, 5_000_000), max(0, self.t_us - 1_000)])


def make_session_log(path, seed: int, steps: int = 120) -> None:
    """A recorder's log: bursts of telemetry (runs of equal records) between everything else."""
    rng = random.Random(seed)
    n_main = rng.choice([0, 1, 3, 8])
    board = Board(rng)
    t_ns = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    with log.LogWriter.create(path, {"config": CONFIG if rng.random() < 0.7 else None}, force=True) as w:
        for _ in range(steps):
            t_ns += rng.randint(0, 300_000_000)
            r = rng.random()
            if r < 0.25:  # a burst of clean frames: one record each, all of one length
                n = n_main if rng.random() < 0.8 else rng.randint(0, 8)
                for _ in range(rng.choice([2, 5, 30, 100, 300])):
                    t_ns += 100_000_000
                    w.write_bytes(telemetry(rng, *board.tick(), n), t_ns)
                continue
            seq, t_s, t_us = board.tick()
            n = n_main if rng.random() < 0.9 else rng.randint(0, 8)
            frame = telemetry(rng, seq, t_s, t_us, n)
            if r < 0.45:
                data = frame
            elif r < 0.48:
                data = protocol.encode_event(seq, t_s, t_us, rng.randint(1, 8), 2, rng.choice(["", "tip:high", "é"]))
            elif r < 0.50:
                data = protocol.encode_reply(seq, t_s, t_us, rng.choice(["OK ARM", "ERR ARM tip:open"]))
            elif r < 0.54:
                data = rng.choice([b"hello\n", b"gc\r\n", b"no newline", b"\xff\xfe garbage\n", b"tab\tline\n"])
            elif r < 0.57:
                for _ in range(rng.randint(2, 9)):  # a run of equal DEVICE records that are not frames
                    w.write_bytes(b"same text\n", t_ns)
                continue
            elif r < 0.61:
                data = flip(frame, rng)  # corrupted on the wire: CRC error, COBS break or worse
            elif r < 0.63:
                data = frame[1:]  # opening zero lost
            elif r < 0.65:
                data = b"\x00" + frame  # two zeros in a row
            elif r < 0.67:
                body = protocol.telemetry_payload(seq, t_s, 1_000_000, 1, 0, 0, 255, 0, 0, 0, 0, 0,
                                                  [0], [0], [0], [0], [0], [0], [0], [0])
                data = protocol.encode_frame(body)  # t_us out of range: malformed
            elif r < 0.69:
                data = protocol.encode_frame(bytes([2]) + frame[2:40])  # another protocol version
            elif r < 0.72:
                cut = rng.randrange(1, len(frame))
                w.write_bytes(frame[:cut], t_ns)  # a frame in two reads
                data = frame[cut:]
            elif r < 0.75:
                w.write_bytes(frame[: rng.randrange(1, len(frame))], t_ns)
                w.note_gap("port lost: test", t_ns + 1)  # the port went away mid-frame
                for _ in range(rng.choice([0, 3, 50])):
                    board.tick()  # frames sent while the port was away
                continue
            elif r < 0.77:
                w.note_gap("board reset", t_ns)
                board.restart()
                continue
            elif r < 0.79:
                board.restart()  # a restart with no gap recorded: time or sequence goes back
                continue
            elif r < 0.82:
                for _ in range(rng.choice([1, 1, 2, 50])):
                    board.tick()  # frames lost on the link
                continue
            elif r < 0.85:
                for _ in range(rng.randint(1, 4)):  # notes of equal length: a run of another kind
                    w.note("operator note", t_ns)
                continue
            elif r < 0.87:
                data = frame + b"after frame, no newline"
            else:
                data = frame
            w.write_bytes(data, t_ns)
