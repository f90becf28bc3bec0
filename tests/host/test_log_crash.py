"""A log writer killed with SIGKILL at random moments leaves a log that reads and verifies,
and holds everything the writer had been given (at most one unfinished frame is missing)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from thermoguard import log as lg

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text())
GOLDEN = [bytes.fromhex(v["wire_hex"]) for k in ("telemetry", "events", "replies") for v in VECTORS[k]]
RUNS = 50
AT_ONCE = 5

# The child writes golden frames at a few hundred per second, in reads that cut frames
# anywhere, and reports after every write how many bytes it handed over ("W n") and
# whenever the writer's fsync count grew ("S records").
CHILD = r"""
import json, os, random, sys, time
from thermoguard.log import LogWriter
path, seed = sys.argv[1], int(sys.argv[2])
frames = [bytes.fromhex(h) for h in json.loads(sys.argv[3])]
rng = random.Random(seed)
stream = b"".join(frames[rng.randrange(len(frames))] for _ in range(20000))
w = LogWriter.create(path, {"board": "virtual", "run": seed})
os.write(1, b"R\n")
pos, synced = 0, 0
while True:
    n = rng.randint(1, 200)
    w.write_bytes(stream[pos : pos + n])
    pos += n
    os.write(1, b"W %d\n" % pos)
    if w.synced_records > synced:
        synced = w.synced_records
        os.write(1, b"S %d\n" % synced)
    time.sleep(0.003)
"""


def expected_stream(seed):
    rng = random.Random(seed)
    return b"".join(GOLDEN[rng.randrange(len(GOLDEN))] for _ in range(20000))


def frame_ends(stream):
    """Offsets just after each frame's closing zero."""
    ends, pos = [], 0
    while pos < len(stream):
        pos = stream.index(b"\0", pos + 1) + 1
        ends.append(pos)
    return ends


def start_child(path, seed):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(seed), json.dumps([g.hex() for g in GOLDEN])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def reported(lines, tag):
    return max([int(x.split()[1]) for x in lines if x.startswith(tag + " ")], default=0)


@pytest.mark.req("SR-LOG-02")
def test_sigkill_at_random_moments_leaves_a_log_that_reads_and_verifies(tmp_path):
    rng = random.Random(20240611)
    results = []
    for first in range(0, RUNS, AT_ONCE):
        batch = []  # (kill time, seed, path, process)
        for seed in range(first, first + AT_ONCE):
            path = tmp_path / f"run{seed}.tglog"
            proc = start_child(path, seed)
            assert proc.stdout.readline() == b"R\n", proc.stderr.read().decode()
            batch.append((time.monotonic() + rng.uniform(0.05, 0.4), seed, path, proc))
        for kill_at, _, _, proc in sorted(batch, key=lambda b: b[0]):
            time.sleep(max(0.0, kill_at - time.monotonic()))
            proc.send_signal(signal.SIGKILL)
        for _, seed, path, proc in batch:
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == -signal.SIGKILL, err.decode()
            results.append((seed, path, out.decode().split("\n")))

    for seed, path, lines in results:
        written, synced = reported(lines, "W"), reported(lines, "S")
        stream = expected_stream(seed)
        ends = frame_ends(stream)
        c = lg.read_log(path)
        assert not c.damage, (seed, c.damage)
        assert c.meta["run"] == seed and not c.closed
        got = b"".join(r.data for r in c.records)
        assert stream.startswith(got), f"run {seed}: the log does not hold the bytes as written"
        # Everything write_bytes had returned from is in the file, but for the frame it
        # was still waiting to see the end of; everything fsynced is there too.
        assert len(got) >= max([e for e in ends if e <= written], default=0), (seed, len(got), written)
        assert len(c.records) >= synced
        rep = lg.verify(path)
        assert not rep.damage and rep.ok == (c.torn_tail_offset is None)
        assert rep.frames == sum(e <= len(got) for e in ends)
        assert rep.crc_errors == rep.garbage == rep.malformed == 0


def test_child_runs_are_long_enough_to_write_and_sync(tmp_path):
    """The crash runs above are only worth something if the child really writes and syncs."""
    path = tmp_path / "long.tglog"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "7", json.dumps([g.hex() for g in GOLDEN])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"R\n"
    said, end = [], time.monotonic() + 20  # a busy machine slows the child: wait for what it says

    def enough() -> bool:
        return said.count("S") >= 1 and said.count("W") > 100

    while not enough() and time.monotonic() < end:
        said += proc.stdout.readline().decode().split()[:1]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert enough()
    assert len(lg.read_log(path).records) > 100
