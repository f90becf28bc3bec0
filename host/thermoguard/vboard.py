"""Start the virtual board in scenario mode as a child process (hil/device/vboard.py):
the real firmware on the MicroPython Unix port, chips following a scenario, its serial
port being the child's stdin and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from thermoguard import paths


class ScenarioBoard:
    """A running virtual board; `read(timeout)` gives its output, `write` sends commands."""

    def __init__(self, config: dict, scenario: Path, speed: float | None, board_dir: Path | None = None):
        self._tmp = None
        if board_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="thermoguard-board-")
            board_dir = Path(self._tmp.name)
        self.board_dir = board_dir
        (board_dir / "config.json").write_text(json.dumps(config))
        factor = 0 if speed is None else max(1, round(speed))
        self.proc = subprocess.Popen(
            [paths.micropython(), "-X", "heapsize=4M", str(paths.HIL_DEVICE / "vboard.py"),
             str(paths.ROOT), str(board_dir), str(Path(scenario).resolve()), str(factor)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
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
