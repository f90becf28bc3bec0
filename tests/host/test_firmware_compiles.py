"""Every firmware and board file compiles with mpy-cross for each board's architecture."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.req("SR-BRD-01")
def test_mpy_cross_compiles_everything_for_every_board():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "mpy_compile.py")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compiles passed" in proc.stdout
