"""`thermoguard monitor` run as users run it, against the virtual board
(`python -m thermoguard.virtual`): plain lines when stdout is no terminal, the dashboard in
a real terminal (tmux) with its keys, and bad input in one sentence."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("thermoguard"))
START_TIMEOUT_S = 15
END_TIMEOUT_S = 15


def kill(proc: subprocess.Popen) -> None:
    """Make sure proc is gone (a stopped one too) and reaped."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@contextmanager
def running(args: list[str], **kw) -> Iterator[subprocess.Popen]:
    """A subprocess that is killed when the block ends, however it ends."""
    proc = subprocess.Popen(args, **kw)
    try:
        yield proc
    finally:
        kill(proc)


def interrupt(proc: subprocess.Popen, timeout: float = END_TIMEOUT_S) -> int:
    """Ctrl-C, then its exit code; killed, and the test fails, when it does not end within timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise AssertionError(f"{proc.args[:2]} did not end within {timeout} s of Ctrl-C: killed") from None

# foramen (protective, 45 C) stays at body temperature, then warms past its limit and stays
# there, so the board trips and refuses a reset while the cause is active.
TRIP_SCENARIO = """t_s,tip,foramen
0,37,37
25,37,37
31,60,37
41,80,44
45,85,47
900,85,47
"""


class Board:
    """A virtual board served on a pty by `python -m thermoguard.virtual`."""

    def __init__(self, tmp: Path, scenario: str | None = None, speed: float = 1) -> None:
        args = [sys.executable, "-m", "thermoguard.virtual", "--speed", str(speed)]
        if scenario is not None:
            (tmp / "scenario.csv").write_text(scenario)
            args += ["--scenario", str(tmp / "scenario.csv")]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
            self.port = self.proc.stdout.readline().decode().strip() if ready else ""
        except BaseException:
            self.stop()
            raise
        if not self.port:
            self.stop()
            raise AssertionError(f"the virtual board printed no port: {self.proc.stderr.read().decode()}")

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)  # the stream stops, the port stays open

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            kill(self.proc)
            for stream in (self.proc.stdout, self.proc.stderr):
                stream.close()


@pytest.fixture
def env(tmp_path):
    # The command relay's socket lives in the test's own folder.
    return {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}


@pytest.fixture
def board(tmp_path):
    boards: list[Board] = []

    def start(**kw) -> Board:
        b = Board(tmp_path, **kw)
        boards.append(b)
        return b

    try:
        yield start
    finally:
        for b in boards:
            try:
                b.stop()
            finally:
                kill(b.proc)  # the next one is stopped even when this one's stop failed


class Lines:
    """A subprocess's stdout read on a thread, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, pattern: str, since: int = 0, timeout: float = 20) -> int:
        """The index of the first line from `since` on that matches pattern."""
        end = time.monotonic() + timeout
        while True:
            for k in range(since, len(self.lines)):
                if re.search(pattern, self.lines[k]):
                    return k
            if time.monotonic() > end:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n" + "\n".join(self.lines))
            time.sleep(0.05)


def verify(log: Path) -> None:
    proc = subprocess.run([EXE, "verify", str(log)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("OK"), proc.stdout + proc.stderr


def test_plain_lines_without_a_terminal_a_frozen_stream_and_ctrl_c(board, env, tmp_path):
    b = board()
    log = tmp_path / "m.tglog"
    with running([EXE, "monitor", "--port", b.port, "--log", str(log), "--arrhenius"], env=env,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        out = Lines(proc)
        try:
            out.wait(f"monitoring {re.escape(b.port)} .*board virtual")
            k = out.wait(r"^\s+[\d.]+ s  DISARMED\s+RF off  tip 3[67]\.\d\d C .*foramen 3[67]\.\d\d C .*frames/s")
            out.wait(r"DISARMED", since=k + 1)  # a status line again, a second or so later
            b.freeze()
            k = out.wait(r"^\*\*\* HIGH ALARM: NO DATA for \d+ s: last state DISARMED")
            k = out.wait(r"^NO DATA for \d+ s", since=k + 1)  # the status line says it too, with no reading
            b.thaw()
            out.wait(r"DISARMED\s+RF off  tip", since=k + 1)
        finally:
            code = interrupt(proc)
        stderr = proc.stderr.read()
    assert code == 0, stderr
    out._thread.join(5)
    assert f"log: {log}" in out.lines and any(line.startswith("recorded ") for line in out.lines)
    assert "Traceback" not in stderr
    verify(log)


def test_no_log_records_nothing_and_arrhenius_parameters_imply_omega(board, env, tmp_path):
    b = board()
    with running([EXE, "monitor", "--port", b.port, "--no-log", "--arrhenius-a", "7.39e39",
                  "--arrhenius-ea", "2.577e5"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True) as proc:
        out = Lines(proc)
        try:
            out.wait(r"log none")
            out.wait(r"DISARMED .*tip 3[67]\.\d\d C .*Omega \d")  # Omega: computed here, from the readings
        finally:
            code = interrupt(proc)
        stderr = proc.stderr.read()
    assert code == 0, stderr
    out._thread.join(5)
    assert "log: none (--no-log)" in out.lines
    assert list(tmp_path.rglob("*.tglog")) == []


def test_a_process_that_does_not_end_is_killed_and_fails_the_test():
    """What the tests above rely on: a monitor that ignores Ctrl-C is killed, never left behind."""
    deaf = [sys.executable, "-c", "import signal, sys, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(120)"]
    with running(deaf, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "ready\n"
        with pytest.raises(AssertionError, match="did not end within 0.5 s of Ctrl-C: killed"):
            interrupt(proc, timeout=0.5)
        assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
    with pytest.raises(RuntimeError), running(deaf, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "ready\n"
        raise RuntimeError("a test failing half-way")
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()


def test_closing_the_terminal_kills_what_ran_in_it(tmp_path):
    t = Tmux(tmp_path, f"{sys.executable} -c 'import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                       "print(\"up\", flush=True); time.sleep(120)'", dict(os.environ))
    try:
        t.wait(r"(?m)^up$")
        group = t.pane_pid
    finally:
        t.close()
    end = time.monotonic() + 10  # SIGKILL is delivered at once; the reaping (by init) may lag
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < end, "what ran in the terminal outlived it"
        time.sleep(0.05)


def test_bad_input_is_one_sentence(board, env, tmp_path):
    def monitor(*args):
        return subprocess.run([EXE, "monitor", *args], capture_output=True, text=True, timeout=30, env=env)

    missing = monitor("--port", str(tmp_path / "no-such-port"), "--no-log")
    taken = tmp_path / "taken.tglog"
    taken.write_text("mine")
    exists = monitor("--port", str(tmp_path / "no-such-port"), "--log", str(taken))
    both = monitor("--port", "x", "--log", str(tmp_path / "a.tglog"), "--no-log")
    master, slave = pty.openpty()  # a port where nothing answers
    try:
        silent = monitor("--port", os.ttyname(slave), "--no-log")
    finally:
        os.close(master)
        os.close(slave)
    for proc, words in ((missing, "no-such-port"), (exists, "--force"), (both, "--no-log"),
                        (silent, "answers as no thermoguard board")):
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert taken.read_text() == "mine"
    assert not list(Path.cwd().glob("out/monitor-*.tglog.part"))


class Tmux:
    """A private tmux server (its own socket) with one detached session of a fixed size."""

    def __init__(self, tmp: Path, command: str, env: dict, width: int = 120, height: int = 42) -> None:
        self.tmux = shutil.which("tmux")
        if self.tmux is None:
            pytest.fail("tmux is not installed: `make test` installs it (Debian's tmux package); "
                        "the dashboard is tested in a real terminal")
        self.socket = str(tmp / "tmux.sock")
        self.env = env
        self.pane_pid: int | None = None
        try:
            self.run("new-session", "-d", "-s", "tg", "-x", str(width), "-y", str(height), command)
            self.pane_pid = int(self.run("list-panes", "-t", "tg", "-F", "#{pane_pid}").split()[0])
        except BaseException:
            self.close()
            raise

    def run(self, *args: str) -> str:
        proc = subprocess.run([self.tmux, "-S", self.socket, *args], capture_output=True, text=True, timeout=10,
                              env=self.env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tg")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "tg", *(["-l"] if literal else []), *keys)

    def wait(self, *patterns: str, timeout: float = 20) -> str:
        """The screen once every pattern is on it."""
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if all(re.search(p, text) for p in patterns):
                return text
            if time.monotonic() > end:
                raise AssertionError(f"the screen never showed {patterns} within {timeout} s:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        """End the server and kill what ran in its pane (the pane is a process group of its
        own: the shell, the program under test and what it started), so nothing is left behind."""
        try:
            subprocess.run([self.tmux, "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
        finally:
            if self.pane_pid is not None:
                try:
                    os.killpg(self.pane_pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass  # already gone


def test_the_dashboard_in_a_terminal_arm_trip_reset_refused_frozen_quit(board, env, tmp_path):
    b = board(scenario=TRIP_SCENARIO, speed=3)
    log = tmp_path / "dash.tglog"
    command = (f"{EXE} monitor --port {b.port} --log {log} --arrhenius 2>{tmp_path / 'err.txt'}; "
               f"echo EXIT=$?; sleep 60")
    t = Tmux(tmp_path, command, {**env, "TERM": "xterm-256color"})
    try:
        screen = t.wait(r"DISARMED", r"foramen\s+protective\s+\d\d\.\d\d", r"a arm")
        assert "ARMED " not in screen.replace("DISARMED", "")
        t.keys("a")
        t.wait(r"Arm the board\?.*y = arm")
        t.keys("y")
        screen = t.wait(r"ARMED\s+RF permitted", r"answer to ARM: OK")
        assert "TRIPPED" not in screen
        screen = t.wait(r"TRIPPED\s+RF off - first cause foramen:high at \d+\.\d s device time", timeout=25)
        assert re.search(r"HIGH\s+TRIPPED: foramen:high", screen) and "TRIP high" in screen
        assert re.search(r"\d+\.\d s\s+TRIP foramen:high", screen)  # in the events
        t.keys("r")
        t.wait(r"Reset: reason")
        t.keys("probe moved", literal=True)
        t.wait(r"Reset: reason .*: probe moved_")
        t.keys("Enter")
        t.wait(r"answer to RESET: refused: still active: foramen:high")
        t.wait(r"TRIPPED")  # still
        b.freeze()
        # Both in one capture: a capture can fall between the lines of one redraw.
        screen = t.wait(r"NO DATA\s+NO DATA for \d+ s: last state TRIPPED", r"foramen\s+protective\s+—")
        row = next(line for line in screen.splitlines() if line.lstrip().startswith("foramen "))
        assert "—" in row and not re.search(r"4\d\.\d\d", row)  # blanked, not the last reading
        # The board does not answer: ARM waits for its answer, and DISARM is sent all the same.
        t.keys("a")
        t.wait(r"Arm the board\?")
        t.keys("y", "d")
        # Both outcomes are shown, whichever came last.
        screen = t.wait(r"no\s+answer\s+to\s+ARM\s+in\s+time", r"no\s+answer\s+to\s+DISARM\s+in\s+time",
                        r"did\s+not\s+answer\s+DISARM\s+within")
        assert "still waiting" not in screen
        b.thaw()
        t.wait(r"TRIPPED\s+RF off")
        t.keys("q")
        t.wait(r"EXIT=0", r"log: " + re.escape(str(log)))
    finally:
        t.close()
    assert "Traceback" not in (tmp_path / "err.txt").read_text()
    verify(log)
