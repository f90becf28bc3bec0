"""`make bench`: speed and allocation figures, printed and written to
build/bench.json. docs/performance.md records them with this command."""

import json
import subprocess
import sys
from pathlib import Path

import adafruit_max31855

ROOT = Path(__file__).resolve().parents[1]


def firmware_figures() -> dict:
    exe = Path(sys.executable).with_name("micropython")
    adafruit_dir = str(Path(adafruit_max31855.__file__).parent)
    proc = subprocess.run(
        [str(exe), "-X", "heapsize=8M", str(ROOT / "bench" / "fw_cycle.py"), str(ROOT), adafruit_dir],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode:
        raise SystemExit(f"firmware benchmark failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sim_figures() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    import sim_bench

    return sim_bench.main()


def main() -> None:
    fw = firmware_figures()
    print("Safety cycle on the MicroPython Unix port (chips answering preallocated frames):")
    print(f"{'channels':>9} {'us/cycle':>9} {'bytes allocated/cycle':>22} {'heap_lock':>10}")
    for row in fw["cycle"]:
        print(f"{row['channels']:>9} {row['us_per_cycle']:>9.1f} {row['bytes_per_cycle']:>22.1f} "
              f"{'ok' if row['heap_locked_ok'] else 'FAILED':>10}")
    ours = fw["max31855_read"]["us_per_read"]
    theirs = fw["adafruit_max31855_nist"]["us_per_read"]
    c1, c8 = fw["cycle"][0]["us_per_cycle"], fw["cycle"][2]["us_per_cycle"]
    per_channel = (c8 - c1) / 7
    print()
    print("MAX31855 NIST-corrected read, same interpreter, same stand-in bus:")
    print(f"  thermoguard driver read:            {ours:8.1f} us")
    print(f"  thermoguard cycle cost per channel: {per_channel:8.1f} us  (8-channel minus 1-channel cycle, / 7)")
    print(f"  Adafruit temperature_NIST:          {theirs:8.1f} us")
    print(f"  ratio (cycle per channel / Adafruit): {per_channel / theirs:.3f}  (target <= 0.2)")
    sim = sim_figures()
    print()
    print("Virtual board: thermoguard sim --speed max, 20-minute 8-channel 10 Hz scenario:")
    print(f"  wall time {sim['wall_s']:.2f} s: {sim['speedup']:.0f} times real time (target >= 200)")
    print(f"  trip latency: {sim['trip_latency_cycles']:.1f} cycles after the step crosses the limit "
          f"(chip conversion included), cause {sim['trip_cause']}")
    fw["sim"] = sim
    out = ROOT / "build" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(fw, indent=2))
    print(f"\nfigures written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
