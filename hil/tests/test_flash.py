"""`thermoguard flash` against the virtual board: mpremote deploys the firmware, the board
file and the configuration, every file is verified by hash, the board resets and must
answer INFO with this firmware, this board and this configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tgfw import config
from thermoguard import deploy

EXE = str(Path(sys.executable).with_name("thermoguard"))


def flash(*args: str):
    return subprocess.run([EXE, "flash", *args], capture_output=True, text=True, timeout=240)


@pytest.mark.req("SR-HIL-14")
@pytest.mark.parametrize("mpy", [False, True])
def test_flash_deploys_resets_and_verifies(virtual_board, tmp_path, mpy):
    board_dir = tmp_path / "flash"
    board_dir.mkdir()
    b = virtual_board(board_dir=board_dir)
    cfg = json.loads((Path(deploy.paths.DATA) / "demo_config.json").read_text())
    cfg["channels"][1]["high_c"] = 44.0  # a configuration the board did not have
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    extra = ["--mpy"] if mpy else []
    proc = flash("--port", b.port, "--board", "virtual", "--config", str(tmp_path / "c.json"), *extra)
    assert proc.returncode == 0, proc.stderr
    expected = f"{config.config_hash(config.validate(cfg)):08x}"
    assert f"configuration {expected}" in proc.stdout
    stored = json.loads((board_dir / "config.json").read_text())
    assert stored["channels"][1]["high_c"] == 44.0
    assert (board_dir / "board.py").read_text() == (Path(deploy.paths.BOARDS) / "virtual.py").read_text()
    suffix = ".mpy" if mpy else ".py"
    assert (board_dir / "tgfw" / f"guard{suffix}").exists()
    assert not (board_dir / "tgfw" / ("guard.py" if mpy else "guard.mpy")).exists()


@pytest.mark.req("SR-HIL-14", "SR-CFG-01")
def test_an_invalid_configuration_copies_nothing(virtual_board, tmp_path):
    board_dir = tmp_path / "flash"
    board_dir.mkdir()
    b = virtual_board(board_dir=board_dir)
    before = sorted(p.name for p in board_dir.rglob("*"))
    bad = json.loads((Path(deploy.paths.DATA) / "demo_config.json").read_text())
    bad["channels"][1]["high_c"] = 60
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    proc = flash("--port", b.port, "--board", "virtual", "--config", str(tmp_path / "bad.json"))
    assert proc.returncode == 2
    assert "protective ceiling" in proc.stderr and "nothing was copied" in proc.stderr
    assert sorted(p.name for p in board_dir.rglob("*")) == before


@pytest.mark.req("SR-HIL-14")
def test_a_board_answering_another_version_fails(virtual_board, tmp_path, monkeypatch):
    b = virtual_board()
    monkeypatch.setattr(deploy, "FIRMWARE_VERSION", "9.9.9")
    with pytest.raises(deploy.DeployError) as e:
        deploy.flash(b.port, "virtual", None, log=lambda *_: None)
    assert "firmware 0.1.0 (expected 9.9.9)" in str(e.value)


def test_unknown_board_name_is_refused():
    proc = flash("--port", "/dev/null", "--board", "toaster")
    assert proc.returncode == 2 and "no board named 'toaster'" in proc.stderr
