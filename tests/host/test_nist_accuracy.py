"""The firmware's fixed-point NIST ITS-90 correction against an independent reference.

The reference is the thermocouple-its90 package (NIST reference functions, inverted by
Newton iteration to well inside the tables' 1 uV rounding). The firmware module runs here
on CPython: it is integer arithmetic, so it computes exactly what MicroPython computes.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import thermocouple_its90 as its90
from tgfw.drivers import max31855, nist

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "hil" / "device"))  # the chip models; last, so nothing is shadowed

from chipmodels import ManualClock, nist_emf_mv  # noqa: E402
from chipmodels.max31855 import MAX31855, SENSITIVITY_UV  # noqa: E402

TYPES = ("K", "J", "T")
S_MV = {"K": 0.041276, "J": 0.057953, "T": 0.05218}  # MAX31855 datasheet table 1, mV/C


def reference_correction(tc_type, tc_code, cj_code):
    """What a perfect MAX31855 correction gives for a frame (None outside the range)."""
    measured = S_MV[tc_type] * (tc_code / 4 - cj_code / 16)
    try:
        return its90.get(tc_type).temperature(measured, reference=cj_code / 16)
    except its90.RangeError:
        return None


def frange(lo, hi, step):
    n = int((hi - lo) / step + 1e-9)
    return [lo + i * step for i in range(n + 1)]


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_inverse_within_0_01_c_over_0_to_150_c(tc_type):
    ref = its90.get(tc_type)
    lin = nist.get(tc_type)
    worst = 0.0
    for t in frange(0.0, 150.0, 0.0073):
        e_nv = round(ref.emf(t) * 1e6)
        worst = max(worst, abs(lin.temperature(e_nv) / 1024 - ref.temperature(e_nv / 1e6)))
    assert worst <= 0.01, worst


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_inverse_within_0_1_c_over_the_type_range(tc_type):
    ref = its90.get(tc_type)
    lin = nist.get(tc_type)
    lo, hi = ref.range
    worst = 0.0
    for t in frange(lo + 0.001, hi - 0.001, 0.0371):
        e_nv = round(ref.emf(t) * 1e6)
        worst = max(worst, abs(lin.temperature(e_nv) / 1024 - ref.temperature(e_nv / 1e6)))
    assert worst <= 0.1, worst
    # Just outside the range there is no temperature.
    assert lin.temperature(round(ref.emf(lo) * 1e6) - 1) is None
    assert lin.temperature(round(ref.emf(hi) * 1e6) + 1) is None
    assert abs(lin.temperature(round(ref.emf(lo) * 1e6)) / 1024 - lo) < 0.1
    assert abs(lin.temperature(round(ref.emf(hi) * 1e6)) / 1024 - hi) < 0.1


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_forward_emf_of_the_cold_junction(tc_type):
    ref = its90.get(tc_type)
    lin = nist.get(tc_type)
    for code in range(-20 * 16, 85 * 16 + 1):  # every cold-junction code the driver accepts
        t = code / 16
        err_nv = lin.emf_nv(code << 6) - ref.emf(t) * 1e6
        assert abs(err_nv) <= 0.002 * ref.seebeck(t) * 1e6, (t, err_nv)  # 0.002 C worth


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_correction_of_frames_within_0_01_c_over_0_to_150_c(tc_type):
    lin = nist.get(tc_type)
    worst = 0.0
    for cj_c in (-20.0, -5.0, 0.0, 22.5, 25.0, 37.0, 50.0, 70.0):
        cj = int(cj_c * 16)
        # Every chip code whose true temperature lies in 0..150 C at this cold junction.
        e_cj = nist_emf_mv(tc_type, cj_c)
        lo = int((nist_emf_mv(tc_type, 0.0) - e_cj) / S_MV[tc_type] * 4 + cj_c * 4) - 2
        hi = int((nist_emf_mv(tc_type, 150.0) - e_cj) / S_MV[tc_type] * 4 + cj_c * 4) + 2
        for tc in range(lo, hi + 1):
            want = reference_correction(tc_type, tc, cj)
            got = lin.correct(tc, cj)
            worst = max(worst, abs(got / 1024 - want))
    assert worst <= 0.01, worst


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_correction_of_every_frame_within_0_1_c(tc_type):
    lin = nist.get(tc_type)
    for cj_c in (-20.0, 25.0, 85.0):
        cj = int(cj_c * 16)
        for tc in range(-8192, 8192):
            want = reference_correction(tc_type, tc, cj)
            got = lin.correct(tc, cj)
            if want is None:
                # Outside the range: no temperature (allow the last code at the edge).
                edge = reference_correction(tc_type, tc - 1, cj) or reference_correction(tc_type, tc + 1, cj)
                assert got is None or edge is not None, (tc, cj, got)
            else:
                assert got is not None and abs(got / 1024 - want) <= 0.1, (tc, cj, got, want)


class FrameBus:
    """Carries one transaction to a chip model, as the emulated SPI would."""

    def __init__(self, chip):
        self.chip = chip

    def read(self, cs, mode, cmd, buf):
        self.chip.select()
        for i in range(len(buf)):
            buf[i] = self.chip.exchange(0)
        self.chip.deselect()


class NoPin:
    def value(self, v=None):
        return 1


def chain(tc_type, cj_c):
    clock = ManualClock(0)
    chip = MAX31855(tc_type, clock=clock, cj_c=cj_c)
    drv = max31855.Driver(FrameBus(chip), NoPin(), tc_type)

    def measure(t):
        chip.set_temperature(t, cj_c)
        clock.advance(100)
        assert drv.read() == 0, (tc_type, t, cj_c, drv.fault)
        return drv.tc / 1024

    return measure


def quantization_bound(tc_type, t):
    """Half the chip's 0.25 C step of its straight line, seen through the NIST slope."""
    seebeck_uv = its90.get(tc_type).seebeck(t) * 1000
    return 0.125 * SENSITIVITY_UV[tc_type] / seebeck_uv


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_full_chain_chip_model_to_driver(tc_type):
    ref = its90.get(tc_type)
    lo, hi = ref.range
    # (0 C at a 0 C cold junction is the all-zeros frame, a fault: see the driver tests.)
    for cj_c in (-20.0, 0.5, 25.0, 37.3, 70.0, 85.0):
        measure = chain(tc_type, cj_c)
        # The cold junction is read in 1/16 C steps; its emf error adds a little.
        for t in frange(0.0, 150.0, 0.1):
            assert abs(measure(t) - t) <= quantization_bound(tc_type, t) + 0.01, (t, cj_c)
        for t in frange(lo + 30, hi - 1, 7.3):
            assert abs(measure(t) - t) <= quantization_bound(tc_type, t) + 0.02, (t, cj_c)


@pytest.mark.req("SR-DRV-06")
def test_the_uncorrected_chip_is_off_by_what_the_domain_notes_say():
    # A true 45 C with the chip at 25 C: the chip's line reads about 44.79 C; corrected 45.
    chip = MAX31855("K", clock=ManualClock(0), tc_c=45.0, cj_c=25.0)
    linear = ((chip.frame() >> 18) & 0x3FFF) / 4
    assert linear == 44.75  # 44.79 in 0.25 C steps
    assert abs(chain("K", 25.0)(45.0) - 45.0) <= 0.13


@pytest.mark.req("SR-DRV-06")
@pytest.mark.parametrize("tc_type", TYPES)
def test_chip_model_reference_function_is_nist(tc_type):
    ref = its90.get(tc_type)
    lo, hi = ref.range
    for t in frange(lo, hi, 0.77):
        assert abs(nist_emf_mv(tc_type, t) - ref.emf(t)) < 1e-9


@pytest.mark.req("SR-DRV-06")
def test_firmware_tables_are_the_generator_output():
    tool = ROOT / "tools" / "gen_nist_tables.py"
    proc = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
