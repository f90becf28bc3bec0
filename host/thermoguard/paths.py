"""Where the parts of a thermoguard checkout are: the firmware, the board files and the
virtual board's MicroPython side (the package is installed in editable mode from it)."""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"
HIL_DEVICE = ROOT / "hil" / "device"
DATA = Path(__file__).resolve().parent / "data"


def micropython() -> str:
    """The MicroPython Unix port of this environment."""
    beside = Path(sys.executable).with_name("micropython")
    found = str(beside) if beside.exists() else shutil.which("micropython")
    if not found:
        raise FileNotFoundError("the MicroPython Unix port (micropython) is not installed: run `make setup`")
    return found
