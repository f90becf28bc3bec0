"""Thermal dose from a log (thermoguard.dose): the host's CEM43 agrees with the board's own
fixed-point figure within 0.1 % on a `thermoguard sim` run that holds a protective channel
at 44-46 C; Arrhenius damage on known temperature histories."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from thermoguard import dose, frames, log, protocol

EXE = str(Path(sys.executable).with_name("thermoguard"))
CONFIG = {
    "sample_hz": 10,
    "stale_ms": 300,
    "host_timeout_s": 5,
    "channels": [
        {"name": "tip", "chip": "max31856", "cs": 17, "tc_type": "K", "role": "ablation",
         "high_c": 95.0, "low_c": 15.0, "rate_c_per_s": 10.0},
        {"name": "foramen", "chip": "max31855", "cs": 13, "tc_type": "K", "role": "protective",
         "high_c": 47.0, "low_c": 10.0, "rate_c_per_s": 2.0, "dose_cem43": 120.0},
        {"name": "root", "chip": "max31855", "cs": 20, "tc_type": "K", "role": "protective",
         "high_c": 47.0, "low_c": 10.0, "rate_c_per_s": 2.0, "dose_cem43": 120.0},
    ],
}
# foramen warms to 44 C, then 44 -> 46 C and holds; root is unplugged for a while (no dose
# accrues across its fault) and then warms too; the tip stays at body temperature.
SCENARIO = """t_s,tip,foramen,root
0,37,37,37
4,37,37,37
10,37,44,40
20,37,45,open
25,37,45.5,41
40,37,46,43.5
70,37,46,45
"""


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory):
    d = tmp_path_factory.mktemp("dose")
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "s.csv").write_text(SCENARIO)
    proc = subprocess.run([EXE, "sim", str(d / "s.csv"), "--config", str(d / "config.json"), "--out",
                           str(d / "run.tglog")], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return d / "run.tglog"


@pytest.mark.req("SR-HOST-11")
def test_cem43_from_the_log_agrees_with_the_boards_figure_within_0_1_percent(sim_log):
    fr = frames.load_telemetry(sim_log)
    assert fr.names == ["tip", "foramen", "root"] and len(fr) > 600
    foramen = fr.temp_c[:, 1]
    assert np.nanmax(foramen) >= 45.9 and (foramen >= 44).sum() > 500  # minutes at 44-46 C, as asked
    assert (fr.fault[:, 2] == 1).any()  # root's open thermocouple
    host = dose.cem43(fr)
    board = fr.dose_cem43
    assert board[-1, 1] > 5  # a real dose, far above body temperature's
    assert (np.abs(host[-1] - board[-1]) / board[-1]).max() < 1e-3  # every channel's total, the tip's too
    # Every frame of every channel: within 0.1 % plus the wire's resolution (the telemetry
    # carries the board's dose cut to 2**-26 CEM43, a few percent of one 0.1 s step at 37 C).
    assert np.all(np.abs(host - board) <= 1e-3 * board + 2**-26)
    assert (board > 2**-26 * 1000).sum() > 1000  # most of the session is far above that resolution
    # The same from a start of zero: the board's figure at the log's first frame is 0.
    assert np.array_equal(dose.cem43(fr, baseline="zero"), host)


@pytest.mark.req("SR-HOST-11")
def test_cem43_accrues_only_between_usable_readings_and_restarts_with_the_board(tmp_path):
    path = tmp_path / "d.tglog"
    rows = [(0, 0.0, 45.0, 0), (1, 60.0, 45.0, 0), (2, 120.0, 45.0, 1), (3, 180.0, 45.0, 0),
            (4, 240.0, 43.0, 0), (5, 300.0, 41.0, 0), (0, 1.0, 45.0, 0), (1, 61.0, 45.0, 0)]
    with log.LogWriter.create(path, {}) as w:
        for i, (seq, t, temp, fault) in enumerate(rows):
            w.write_bytes(protocol.encode_telemetry(seq, int(t), 0, 2, 1, 0, 255, 0, 0, 0, 0, 0, [round(temp * 1024)],
                                                    [0], [fault], [0], [0], [0], [7 * 1024], [0]), i)
    fr = frames.load_telemetry(path)
    got = dose.cem43(fr, baseline="zero")[:, 0]
    # 1 min at 45 C = 4; the faulted reading and the one after it add nothing; 43 C = 1/min;
    # 41 C = 0.25 ** 2 = 1/16 per min; then the board restarts and counts from 0 again.
    assert got.tolist() == [0, 4, 4, 4, 5, 5 + 1 / 16, 0, 4]
    assert dose.cem43(fr)[:, 0].tolist() == [7, 11, 11, 11, 12, 12 + 1 / 16, 7, 11]  # from the board's figure
    assert dose.final(dose.cem43(fr))[0] == 11


@pytest.mark.req("SR-HOST-12")
def test_arrhenius_damage_for_liver_and_for_given_tissue_parameters(tmp_path):
    path = tmp_path / "a.tglog"
    with log.LogWriter.create(path, {}) as w:
        for i in range(61):  # 60 s at 55 C, one frame a second
            w.write_bytes(protocol.encode_telemetry(i, i, 0, 2, 1, 0, 255, 0, 0, 0, 0, 0, [55 * 1024, 37 * 1024],
                                                    [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]), i)
    fr = frames.load_telemetry(path)
    omega = dose.arrhenius(fr)
    k55 = 7.39e39 * math.exp(-2.577e5 / (8.314462618 * (55 + 273.15)))
    assert omega[-1, 0] == pytest.approx(60 * k55, rel=1e-12)
    assert 0.5 < omega[-1, 0] < 5  # a minute at 55 C is lethal to liver: the textbook figure
    k37 = 7.39e39 * math.exp(-2.577e5 / (8.314462618 * (37 + 273.15)))
    assert omega[-1, 1] == pytest.approx(60 * k37, rel=1e-12) and omega[-1, 1] < omega[-1, 0] / 100
    custom = dose.arrhenius(fr, a_per_s=3.1e98, ea_j_per_mol=6.28e5)  # another tissue's parameters
    assert custom[-1, 0] == pytest.approx(60 * 3.1e98 * math.exp(-6.28e5 / (8.314462618 * 328.15)), rel=1e-12)
    assert np.all(np.diff(omega[:, 0]) > 0)
    with pytest.raises(ValueError):
        dose.arrhenius(fr, a_per_s=-1)
