"""Start the virtual board through a session as a child process: the one virtual board
(hil/device/vstart.py, the same as `thermoguard virtual` serves) in its session mode, the
real firmware on the MicroPython Unix port, chips following a scenario or a closed-loop
plant, its serial port being the child's stdin and stdout. Also: a session log as a
scenario (log_scenario)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from thermoguard import paths


class ScenarioBoard:
    """A running virtual board; `read(timeout)` gives its output, `write` sends commands.

    The run ends after the scenario's last row (a plant's duration) and one more cycle;
    speed is a real-time multiple, None for as fast as the firmware runs."""

    def __init__(self, config: dict, scenario: Path, speed: float | None, board_dir: Path | None = None):
        from thermoguard.virtual import load_bridge

        self._tmp = None
        if board_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="thermoguard-board-")
            board_dir = Path(self._tmp.name)
        self.board_dir = board_dir
        bridge = load_bridge()
        bridge.prepare_board_dir(board_dir, json.dumps(config))  # the firmware in its flash, as deployed
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env.update(
            TG_VB_DIR=str(Path(board_dir).resolve()), TG_VB_MODE="session", TG_VB_CAUSE=str(bridge.PWRON_RESET),
            TG_VB_CLOCK_US="0", TG_VB_WORLD_US="0", TG_VB_SPEED=repr(0.0 if speed is None else float(speed)),
            TG_VB_SCENARIO=str(Path(scenario).resolve()), TG_VB_CTL="-1", TG_VB_CMD="-1",
        )
        self.proc = subprocess.Popen(
            [paths.micropython(), "-X", "heapsize=4M", str(bridge.VSTART)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=str(board_dir),
            env=env,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def read(self) -> bytes | None:
        """What the board sent since the last read; b"" if nothing; None once it has ended."""
        try:
            data = self.proc.stdout.read(65536)
        except BlockingIOError:
            return b""
        if data is None:
            return b""
        if data == b"" and self.proc.poll() is not None:
            return None
        return data

    def write(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the board has ended; its output says how

    def errors(self) -> str:
        return self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        if self._tmp is not None:
            self._tmp.cleanup()


# A session log as a scenario.

SCENARIO_WORDS = ("open", "short_gnd", "short_vcc", "zeros", "ones", "stuck", "absent")
# Fault words of a log that are no scenario word: what the board saw is replayed as the chip
# behaviour that gives it (hil/device/scenario.py does the same for exported CSVs).
REPLAYED_AS = {"stale": "absent"}
_converted: list[tempfile.TemporaryDirectory] = []  # kept until exit: a board reads it at every start


def log_scenario_text(path) -> str:
    """The scenario CSV of a session log (.tglog): `t_s` is the frames' device time and each
    channel's cell its temperature, or its fault word where the board saw a fault (`stale`
    as `absent`; `implausible` and `range` leave the cell empty: nothing to replay but the
    gap). Where device time goes back (the board reset during the session), the times
    after it are moved on to continue from there. Raises log.LogError for a file that is
    not a log, ValueError for a log without telemetry."""
    from thermoguard import frames

    fr = frames.load_telemetry(path)
    if not len(fr):
        raise ValueError("the log holds no telemetry: nothing to replay")
    words = frames.fault_words()
    layout = frames.channel_layout(fr)  # a channel keeps its column when the channel set changes
    lines = [f"# scenario from the session log {Path(path).name}: {len(fr)} telemetry frames",
             "t_s," + ",".join(layout.names)]
    offset = 0
    last = None
    t_s, t_us, n_ch = fr.t_s.tolist(), fr.t_us.tolist(), fr.n_channels.tolist()
    temps, faults, columns = fr.temp_c.tolist(), fr.fault.tolist(), layout.column.tolist()
    for i in range(len(fr)):
        us = t_s[i] * 1000000 + t_us[i] + offset
        if last is not None and us < last:
            offset += last - us
            us = last
        last = us
        cells = [""] * len(layout.names)
        for c in range(n_ch[i]):
            col = columns[i][c]
            if col < 0:
                continue
            word = words[faults[i][c]]
            if word:
                word = REPLAYED_AS.get(word, word)
                cells[col] = word if word in SCENARIO_WORDS else ""
            elif temps[i][c] == temps[i][c]:  # not NaN
                cells[col] = repr(float(temps[i][c]))
        lines.append(",".join([f"{us // 1000000}.{us % 1000000:06d}", *cells]))
    return "\n".join(lines) + "\n"


def log_scenario(path) -> Path:
    """log_scenario_text written to a CSV of the log's name in a temporary folder that
    lasts until the process exits; its path."""
    tmp = tempfile.TemporaryDirectory(prefix="thermoguard-scenario-")
    _converted.append(tmp)
    out = Path(tmp.name) / (Path(path).stem + ".csv")
    out.write_text(log_scenario_text(path))
    return out
