"""Scenario CSV (DESIGN.md): interpolation, fault words, comments, exported CSVs, errors.
The parser runs inside the virtual board (MicroPython) and is checked here on CPython
and on MicroPython."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hil" / "device"))
import scenario  # noqa: E402

sys.path.pop(0)

TEXT = """# a comment
t_s,tip,foramen
0,37,37
10,47,open
# faults hold until the channel's next row
20,57,
30,,39
"""


@pytest.mark.req("SR-HIL-01")
def test_linear_interpolation_and_fault_words():
    sc = scenario.parse(TEXT)
    assert sc.names == ["tip", "foramen"]
    assert sc.at("tip", 5.0) == (42.0, None)
    assert sc.at("tip", 25.0) == (57.0, None)  # after its last row: held
    assert sc.at("foramen", 9.99)[0] == pytest.approx(37.0)  # holds until the fault's row
    assert sc.at("foramen", 10.0) == (None, "open")
    assert sc.at("foramen", 29.9) == (None, "open")
    assert sc.at("foramen", 30.0) == (39.0, None)
    assert sc.end_s == 30.0


@pytest.mark.req("SR-HIL-01")
def test_every_fault_word_is_accepted():
    rows = "\n".join(f"{i},{w}" for i, w in enumerate(scenario.FAULT_WORDS, 1))
    sc = scenario.parse("t_s,a\n0,37\n" + rows + "\n")
    for i, word in enumerate(scenario.FAULT_WORDS, 1):
        assert sc.at("a", float(i)) == (None, word)


@pytest.mark.req("SR-HIL-01")
def test_an_exported_csv_is_a_scenario():
    text = (
        "seq,t_dev_s,t_host_s,state,interlock,cause,tip_c,tip_fault,tip_cem43\n"
        "0,0.1,100.0,DISARMED,0,,37.5,,0.0\n"
        "1,0.2,100.1,DISARMED,0,,,open,0.0\n"
        "2,0.3,100.2,TRIPPED,0,tip:stale,,stale,0.0\n"
        "3,0.4,100.3,TRIPPED,0,tip:stale,38.0,,0.0\n"
    )
    sc = scenario.parse(text)
    assert sc.names == ["tip"]
    assert sc.at("tip", 0.1) == (37.5, None)
    assert sc.at("tip", 0.2) == (None, "open")
    assert sc.at("tip", 0.3) == (None, "absent")
    assert sc.at("tip", 0.4) == (38.0, None)


@pytest.mark.req("SR-HIL-01")
@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no header"),
        ("time,a\n0,1\n", "first column must be t_s"),
        ("t_s,a\n0,hot\n", "line 2: a is 'hot'"),
        ("t_s,a\n5,1\n4,2\n", "line 3: time 4 goes backwards"),
        ("t_s,a,a\n0,1,2\n", "appears twice"),
        ("t_s,a\nx,1\n", "line 2: time 'x' is not a number"),
        ("t_s,a\n0,1,2\n", "line 2: 3 cells"),
    ],
)
def test_bad_scenarios_name_the_line(text, message):
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.parse(text)
    assert message in str(e.value)


@pytest.mark.req("SR-HIL-01")
def test_micropython_reads_it_the_same(micropython):
    code = (
        f"sys.path.insert(0, {str(ROOT / 'hil' / 'device')!r})\n"
        "import scenario, json\n"
        f"sc = scenario.parse({TEXT!r})\n"
        "print(json.dumps([sc.at('tip', t / 2) for t in range(70)] + [sc.at('foramen', t / 2) for t in range(70)]))\n"
    )
    board = json.loads(micropython(code))
    sc = scenario.parse(TEXT)
    host = [list(sc.at("tip", t / 2)) for t in range(70)] + [list(sc.at("foramen", t / 2)) for t in range(70)]
    assert len(board) == len(host)
    for b, h in zip(board, host, strict=True):
        assert b[1] == h[1]
        assert (b[0] is None and h[0] is None) or b[0] == pytest.approx(h[0], abs=1e-4)


@pytest.mark.req("SR-HIL-19", "SR-HIL-01")
def test_a_session_log_with_a_board_reset_is_one_scenario_in_order(tmp_path):
    """Device time restarts at a board reset; the scenario goes on from where it was."""
    import subprocess

    from thermoguard import frames, log
    from thermoguard.vboard import log_scenario_text

    (tmp_path / "s.csv").write_text("t_s,foramen\n0,37\n1,38\n2,open\n3,39\n")
    exe = str(Path(sys.executable).with_name("thermoguard"))
    proc = subprocess.run([exe, "sim", str(tmp_path / "s.csv"), "--out", str(tmp_path / "one.tglog"),
                           "--speed", "max", "--no-arm"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    one = log.read_log(tmp_path / "one.tglog")
    with log.LogWriter.create(tmp_path / "two.tglog", one.meta) as w:  # the session, a reset, the session again
        for k in range(2):
            for rec in one.records:
                if rec.kind == log.Kind.DEVICE:
                    w.write_bytes(bytes(rec.data), rec.t_ns)
            if k == 0:
                w.note_gap("board reset")
    fr = frames.load_telemetry(tmp_path / "one.tglog")
    end = fr.t_dev_s[-1]
    sc = scenario.parse(log_scenario_text(tmp_path / "two.tglog"))  # raises if time went back
    assert sc.names == ["tip", "foramen"]
    assert sc.end_s == pytest.approx(end + end - fr.t_dev_s[0], abs=1e-6)
    for t in (0.5, 1.5, 2.5, 2.9):  # the second session replays the first, moved on
        first, second = sc.at("foramen", t), sc.at("foramen", t + end - fr.t_dev_s[0])
        assert first[1] == second[1]
        assert (first[0] is None and second[0] is None) or first[0] == pytest.approx(second[0], abs=0.3)
    assert sc.at("foramen", 2.5) == (None, "open")
