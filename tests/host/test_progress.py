"""Progress bars of `thermoguard verify`, `export` and `replay`: shown on stderr when it is a
terminal (the real entry point run under a pseudo-terminal), never when stderr is a pipe,
and what the commands write is the same either way."""

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from thermoguard import log, progress, protocol

EXE = str(Path(sys.executable).with_name("thermoguard"))
HIDE_CURSOR = b"\x1b[?25l"  # rich hides the cursor while a bar is live
CONFIG = {"channels": [{"name": f"t{i}"} for i in range(8)]}


def write_log(path: Path, frames_n: int) -> Path:
    with log.LogWriter.create(path, {"config": CONFIG}, sync_interval_s=5.0) as w:
        batch = []
        for i in range(frames_n):
            t_us = 5_000_000 + i * 100_000
            batch.append(protocol.encode_telemetry(
                i, t_us // 1_000_000, t_us % 1_000_000, 2, 1, 0, 255, 0, 0, 10, 0, 0,
                [(37 + i % 50) * 1024] * 8, [25 * 64 * 16] * 8, [0] * 8, [0] * 8, [0] * 8, [0] * 8,
                [i] * 8, [0] * 8))
            if i % 5000 == 4999:
                batch.append(b"board text line\n")
            if len(batch) >= 200:
                w.write_bytes(b"".join(batch), 10**18 + i * 100_000_000)
                batch = []
        if batch:
            w.write_bytes(b"".join(batch), 10**18 + frames_n * 100_000_000)
    return path


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress")
    path = write_log(d / "big.tglog", 25_000)
    assert path.stat().st_size > progress.MIN_BYTES  # large enough for a bar
    return path


def under_pty(args, cwd):
    """Run the entry point with stderr on a pseudo-terminal: (code, stdout, terminal bytes)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen([EXE, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            cwd=cwd, env=env)
    os.close(slave)
    seen = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal closed it
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    out, _ = proc.communicate(timeout=300)
    reader.join(timeout=60)
    os.close(master)
    return proc.returncode, out, bytes(seen)


def piped(args, cwd):
    proc = subprocess.run([EXE, *args], capture_output=True, cwd=cwd, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.req("SR-HOST-10")
def test_verify_shows_a_bar_on_a_terminal_and_none_in_a_pipe_with_the_same_output(big_log, tmp_path):
    code_t, out_t, term = under_pty(["verify", str(big_log)], tmp_path)
    code_p, out_p, err_p = piped(["verify", str(big_log)], tmp_path)
    assert b"verifying" in term and HIDE_CURSOR in term
    assert err_p == b""  # no bar, no control codes in a pipe
    assert (code_t, out_t) == (code_p, out_p) == (0, out_p) and b"25000 telemetry" in out_p


@pytest.mark.req("SR-EXP-01")
def test_export_shows_a_bar_on_a_terminal_and_writes_the_same_files(big_log, tmp_path):
    outs = {}
    for where in ("term", "pipe"):
        d = tmp_path / where
        d.mkdir()
        args = ["export", str(big_log), "--csv", "o.csv", "--npz", "o.npz", "--mcap", "o.mcap"]
        code, out, err = (under_pty if where == "term" else piped)(args, d)
        assert code == 0, err
        outs[where] = (out, err, {n: (d / n).read_bytes() for n in ("o.csv", "o.npz", "o.mcap")})
    (out_t, term, files_t), (out_p, err_p, files_p) = outs["term"], outs["pipe"]
    assert b"loading" in term and b"writing o.csv" in term and HIDE_CURSOR in term
    assert err_p == b""
    assert out_t == out_p and b"o.csv: 25000 rows" in out_p
    assert files_t["o.csv"] == files_p["o.csv"] and files_t["o.npz"] == files_p["o.npz"]
    assert len(files_t["o.mcap"]) == len(files_p["o.mcap"])


@pytest.mark.req("SR-HOST-13")
def test_replay_shows_a_bar_on_a_terminal_and_prints_the_same_lines(big_log, tmp_path):
    args = ["replay", str(big_log), "--speed", "max", "--every", "500"]
    code_t, out_t, term = under_pty(args, tmp_path)
    code_p, out_p, err_p = piped(args, tmp_path)
    assert b"replaying" in term and HIDE_CURSOR in term
    assert err_p == b""
    assert code_t == code_p == 0 and out_t == out_p and b"replayed 25000 telemetry frames" in out_p
    assert out_p.count(b"board: board text line") == 5


@pytest.mark.req("SR-HOST-10")
def test_no_bar_with_no_progress_or_for_a_small_log_even_on_a_terminal(big_log, tmp_path):
    _, out, term = under_pty(["verify", "--no-progress", str(big_log)], tmp_path)
    assert HIDE_CURSOR not in term and b"verifying" not in term and b"OK" in out
    small = write_log(tmp_path / "small.tglog", 100)
    _, out, term = under_pty(["verify", str(small)], tmp_path)
    assert HIDE_CURSOR not in term and b"verifying" not in term and b"100 telemetry" in out


def test_a_disabled_bar_does_nothing_and_a_log_that_is_no_log_is_one_sentence(tmp_path):
    with progress.bar(tmp_path / "missing.tglog") as bar:
        assert not bar.shown
        bar.task("x", 10)(5)  # a no-op
    (tmp_path / "x.tglog").write_bytes(b"not a log" * 600_000)  # large: the bar would start
    code, out, term = under_pty(["verify", str(tmp_path / "x.tglog")], tmp_path)
    assert code == 2 and b"not a thermoguard log" in term and b"Traceback" not in term


@pytest.mark.req("SR-HOST-10")
def test_the_work_reports_its_position_in_order_up_to_the_end_of_the_file(big_log):
    from thermoguard import export, frames, replay

    size = big_log.stat().st_size
    for run_with in (lambda step: frames.load_telemetry(big_log, progress=step, chunk=4096),
                     lambda step: log.verify(big_log, progress=step),
                     lambda step: export._careful_damage(big_log, step),
                     lambda step: replay.play(big_log, [], speed=None, progress=step)):
        seen = []
        run_with(seen.append)
        assert len(seen) >= 5 and seen == sorted(seen) and seen[-1] == size and 0 <= seen[0] < size
