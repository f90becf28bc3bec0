"""Deploy the firmware to a board with mpremote, then verify it (`thermoguard flash`).

1. Validate the configuration on the host (nothing is copied when it is invalid).
2. Copy boot.py, main.py, the tgfw package, the board file (as /board.py) and the
   configuration (as /config.json) with `mpremote fs cp` (sources, or .mpy compiled by
   mpy-cross for the board's architecture with --mpy).
3. Verify every file on the board by its SHA-256, computed on the board.
4. Reset the board and check its INFO answer: this firmware version, this board, this
   configuration hash. Any difference fails the command.
mpremote runs as its own CLI under a timeout: on some ports it waits forever for an
answer that does not come.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tgfw import VERSION as FIRMWARE_VERSION
from tgfw import config

from thermoguard import paths

MPREMOTE_TIMEOUT_S = 60
BOOT_TIMEOUT_S = 15


class DeployError(Exception):
    """One sentence saying what failed."""


@dataclass(frozen=True)
class Upload:
    local: Path
    remote: str  # path on the board, without the leading ':'


def boards() -> list[str]:
    return sorted(p.stem for p in paths.BOARDS.glob("*.py"))


def uploads(board: str, config_file: Path, mpy_dir: Path | None = None) -> list[Upload]:
    """What goes where. With mpy_dir, the tgfw package comes compiled from there."""
    files = [Upload(paths.FIRMWARE / "boot.py", "boot.py"), Upload(paths.FIRMWARE / "main.py", "main.py")]
    for src in sorted((paths.FIRMWARE / "tgfw").rglob("*.py")):
        rel = src.relative_to(paths.FIRMWARE).as_posix()
        if mpy_dir is not None and src.name != "__init__.py":
            files.append(Upload(mpy_dir / "firmware" / Path(rel).with_suffix(".mpy"), rel[:-3] + ".mpy"))
        else:
            files.append(Upload(src, rel))
    files.append(Upload(paths.BOARDS / f"{board}.py", "board.py"))
    files.append(Upload(config_file, "config.json"))
    return files


def mpremote(port: str, *args: str, timeout: float = MPREMOTE_TIMEOUT_S) -> str:
    exe = Path(sys.executable).with_name("mpremote")
    cmd = [str(exe) if exe.exists() else "mpremote", "connect", port, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError(f"mpremote got no answer from {port} within {timeout:g} s") from None
    if proc.returncode:
        why = (proc.stderr or proc.stdout).strip().splitlines()
        raise DeployError(f"mpremote failed on {port}: {why[-1] if why else 'exit code ' + str(proc.returncode)}")
    return proc.stdout


def _mkdirs(port: str, files: list[Upload]) -> None:
    folders = sorted({str(Path(f.remote).parent) for f in files} - {"."}, key=len)
    code = f"import os\nfor d in {folders!r}:\n    try:\n        os.mkdir(d)\n    except OSError:\n        pass\n"
    mpremote(port, "exec", code)


def _remove_stale(port: str, files: list[Upload]) -> None:
    """Remove the other form (.py or .mpy) of every module copied: MicroPython imports a
    .py before an .mpy, so a stale one would shadow the new code. Done after the copy, so
    that a reset in between never finds a module missing."""
    stale = []
    for f in files:
        if f.remote.startswith("tgfw/") and f.remote.endswith((".py", ".mpy")):
            stem, ext = f.remote.rsplit(".", 1)
            stale.append(stem + (".mpy" if ext == "py" else ".py"))
    code = f"import os\nfor p in {stale!r}:\n    try:\n        os.remove(p)\n    except OSError:\n        pass\n"
    mpremote(port, "exec", code)


def _hashes_on_board(port: str, files: list[Upload]) -> dict[str, str]:
    code = (
        "import hashlib, binascii\n"
        f"for p in {[f.remote for f in files]!r}:\n"
        "    h = hashlib.sha256()\n"
        "    try:\n"
        "        with open(p, 'rb') as f:\n"
        "            while True:\n"
        "                b = f.read(512)\n"
        "                if not b:\n"
        "                    break\n"
        "                h.update(b)\n"
        "        print(p, binascii.hexlify(h.digest()).decode())\n"
        "    except OSError:\n"
        "        print(p, 'missing')\n"
    )
    out = mpremote(port, "exec", code)
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def flash(port: str, board: str, config_path: str | None, use_mpy: bool = False, log=print) -> dict:
    """Deploy and verify; returns what the board said. DeployError on any failure."""
    if board not in boards():
        raise DeployError(f"no board named {board!r}: choose one of {', '.join(boards())}")
    try:
        cfg = config.load(config_path) if config_path else config.validate(
            json.loads((paths.DATA / "demo_config.json").read_text()))
    except config.ConfigError as e:
        raise DeployError(f"configuration {config_path}: {e}; nothing was copied") from None
    chash = f"{config.config_hash(cfg):08x}"
    with tempfile.TemporaryDirectory() as tmp:
        cfg_file = Path(tmp) / "config.json"
        cfg_file.write_text(config.to_json(cfg))
        mpy_dir = None
        if use_mpy:
            mpy_dir = _compile(board)
        files = uploads(board, cfg_file, mpy_dir)
        log(f"copying {len(files)} files to {port} with mpremote")
        _mkdirs(port, files)
        args: list[str] = []
        for f in files:
            args += ["fs", "cp", str(f.local), ":" + f.remote, "+"]
        mpremote(port, *args[:-1], timeout=MPREMOTE_TIMEOUT_S * 3)
        _remove_stale(port, files)
        log("verifying every file by its SHA-256 on the board")
        on_board = _hashes_on_board(port, files)
        for f in files:
            want = hashlib.sha256(f.local.read_bytes()).hexdigest()
            if on_board.get(f.remote) != want:
                raise DeployError(f"{f.remote} on the board does not match {f.local.name} "
                                  f"(board: {on_board.get(f.remote, 'no answer')})")
    log("resetting the board")
    mpremote(port, "reset")
    info = _info_after_reset(port)
    problems = []
    if info.firmware != FIRMWARE_VERSION:
        problems.append(f"firmware {info.firmware} (expected {FIRMWARE_VERSION})")
    if info.board != board:
        problems.append(f"board {info.board} (expected {board})")
    if info.config_hash != chash:
        problems.append(f"configuration {info.config_hash} (expected {chash}: {info.error or 'another one'})")
    if problems:
        raise DeployError("after the reset the board answers with " + ", ".join(problems))
    return {"firmware": info.firmware, "board": info.board, "config_hash": info.config_hash, "state": info.state}


def _compile(board: str) -> Path:
    proc = subprocess.run([sys.executable, str(paths.ROOT / "tools" / "mpy_compile.py")],
                          capture_output=True, text=True)
    if proc.returncode:
        raise DeployError("mpy-cross could not compile the firmware: " + proc.stdout.strip().splitlines()[-1])
    return paths.ROOT / "build" / "mpy" / board


def _info_after_reset(port: str):
    from thermoguard.board import connect
    from thermoguard.transport import PortError

    deadline = time.monotonic() + BOOT_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with connect(port, timeout=2.0) as b:
                if b.info is not None:
                    return b.info
        except PortError as e:
            last = str(e)
        time.sleep(0.3)
    raise DeployError(f"the board did not answer INFO within {BOOT_TIMEOUT_S} s of its reset: {last}")
