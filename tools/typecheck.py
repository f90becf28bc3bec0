"""Type-check the firmware and board files against the MicroPython stubs (rp2 port stubs
and MicroPython's own stdlib stubs), not CPython's typeshed."""

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    site = sysconfig.get_paths()["purelib"]
    # Only the MicroPython stubs go on the search path, from a folder of their own.
    with tempfile.TemporaryDirectory() as stubs:
        for name in ("machine.pyi", "micropython.pyi", "umachine.pyi"):
            os.symlink(Path(site) / name, Path(stubs) / name)
        env = dict(os.environ, MYPYPATH=f"{stubs}{os.pathsep}{ROOT / 'firmware'}")
        ini = Path(stubs) / "mypy.ini"
        # The stubs themselves have a few inconsistencies that are not ours to fix.
        ini.write_text("[mypy]\n[mypy-machine,umachine,micropython]\nignore_errors = True\n")
        cmd = [
            sys.executable, "-m", "mypy",
            "--config-file", str(ini),
            "--custom-typeshed-dir", site,
            "--no-site-packages",
            "--ignore-missing-imports",
            "--check-untyped-defs",
            "--explicit-package-bases",
            "--no-error-summary",
            "--python-version", "3.11",
            *[str(p) for p in sorted((ROOT / "firmware").rglob("*.py"))],
            *[str(p) for p in sorted((ROOT / "boards").glob("*.py"))],
        ]
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
    if proc.returncode == 0:
        print("mypy: firmware and boards type-check against the MicroPython stubs")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
