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


EXAMPLE_CONFIG = {
    "sample_hz": 10,
    "stale_ms": 300,
    "host_timeout_s": 5,
    "channels": [
        {"name": "tip", "chip": "max31856", "cs": 17, "tc_type": "K", "role": "ablation",
         "high_c": 95.0, "low_c": 15.0, "rate_c_per_s": 10.0},
        {"name": "foramen", "chip": "max31855", "cs": 13, "tc_type": "K", "role": "protective",
         "high_c": 45.0, "low_c": 10.0, "rate_c_per_s": 2.0, "dose_cem43": 40.0},
    ],
}


@pytest.fixture
def example_config():
    return json.loads(json.dumps(EXAMPLE_CONFIG))
