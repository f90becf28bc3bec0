"""Shared helpers for host tests (CPython)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_micropython(code: str, timeout: float = 60) -> str:
    """Run code on the MicroPython Unix port with the firmware on its path; return stdout."""
    exe = Path(sys.executable).with_name("micropython")
    prelude = f"import sys\nsys.path[:0] = [{str(ROOT / 'firmware')!r}, {str(ROOT / 'hil' / 'device')!r}]\n"
    proc = subprocess.run([str(exe), "-c", prelude + code], capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise AssertionError(f"MicroPython failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture
def micropython():
    return run_micropython


# The configuration of DESIGN.md, kept once in the package's data.
EXAMPLE_CONFIG = json.loads((ROOT / "host" / "thermoguard" / "data" / "demo_config.json").read_text())


@pytest.fixture
def example_config():
    return json.loads(json.dumps(EXAMPLE_CONFIG))
