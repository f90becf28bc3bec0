"""`thermoguard replay`: a log played back through the same consumers as a live port, paced
by the recorded host times divided by speed, showing the trips `thermoguard sim` showed."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_sim import CONFIG, SCENARIO
from thermoguard import log, protocol, replay

EXE = str(Path(sys.executable).with_name("thermoguard"))


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


class Recording:
    """A consumer that keeps what it was given."""

    def __init__(self):
        self.meta, self.items, self.ended = None, [], 0

    def start(self, meta):
        self.meta = meta

    def item(self, t_ns, item):
        self.items.append((t_ns, item))

    def end(self):
        self.ended += 1


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "s.csv").write_text(SCENARIO)
    proc = run("sim", str(d / "s.csv"), "--config", str(d / "config.json"), "--out", str(d / "run.tglog"))
    assert proc.returncode == 0, proc.stderr
    return d / "run.tglog", proc.stdout


@pytest.mark.req("SR-HOST-13")
def test_replay_shows_the_trips_the_live_run_showed(sim_log):
    path, live = sim_log
    proc = run("replay", str(path), "--speed", "max", "--every", "1")
    assert proc.returncode == 0, proc.stderr
    live_trips = re.findall(r"trip at [0-9.]+ s: \S+", live)
    assert live_trips and re.findall(r"trip at [0-9.]+ s: \S+", proc.stdout) == live_trips
    assert "foramen:high" in live_trips[0]
    lines = proc.stdout.splitlines()
    assert any("ARMED" in x and "RF permitted" in x and "foramen" in x for x in lines)
    assert any("TRIPPED" in x and "RF off" in x for x in lines)
    assert "replayed" in lines[-1] and "last state TRIPPED" in lines[-1]


@pytest.mark.req("SR-HOST-13")
def test_consumers_get_the_metadata_then_every_item_in_log_order(sim_log):
    path, _ = sim_log
    rec = Recording()
    summary = replay.play(path, [rec], speed=None)
    assert [c["name"] for c in rec.meta["config"]["channels"]] == ["tip", "foramen"] and rec.ended == 1
    assert rec.items == list(log.decoded_items(path))
    assert summary.telemetry == sum(isinstance(x, protocol.Telemetry) for _, x in rec.items) > 100
    assert [t for t, _ in summary.trips] == [x.t_dev_s for _, x in rec.items
                                             if isinstance(x, protocol.Event) and x.event == protocol.EV_TRIP]


@pytest.mark.req("SR-HOST-13")
def test_pacing_follows_recorded_host_time_divided_by_speed(tmp_path):
    path = tmp_path / "p.tglog"
    with log.LogWriter.create(path, {}) as w:
        for i in range(5):  # one frame every 0.5 s of host time, a note in between
            w.write_bytes(protocol.encode_telemetry(i, i, 0, 1, 0, 0, 255, 0, 0, 0, 0, 0, [0], [0], [0], [0], [0],
                                                    [0], [0], [0]), 10**9 + i * 500_000_000)
        w.note("done", 10**9 + 2_500_000_000)
    now = [0.0]
    waits = []
    delivered = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    class Clock(Recording):
        def item(self, t_ns, item):
            delivered.append(round(now[0], 9))

    replay.play(path, [Clock()], speed=4.0, sleep=sleep, clock=lambda: now[0])
    assert delivered == [0.0, 0.125, 0.25, 0.375, 0.5, 0.625]  # 2.5 s of recording at 4x
    waits.clear()
    replay.play(path, [Clock()], speed=None, sleep=sleep, clock=lambda: now[0])
    assert waits == []  # max: no waiting at all
    with pytest.raises(ValueError):
        replay.play(path, [], speed=0)


@pytest.mark.req("SR-HOST-13")
def test_a_live_loop_feeds_the_same_consumers(sim_log):
    path, _ = sim_log
    rec = Recording()
    take = replay.on_item([rec], clock_ns=lambda: 42)
    for _, item in log.decoded_items(path):
        take(item)
    assert [t for t, _ in rec.items] == [42] * len(rec.items) and len(rec.items) > 100


@pytest.mark.req("SR-HOST-13")
def test_replay_refuses_what_is_not_a_log(tmp_path):
    (tmp_path / "x.csv").write_text("seq\n")
    proc = run("replay", str(tmp_path / "x.csv"))
    assert proc.returncode == 2 and "not a thermoguard log" in proc.stderr and "Traceback" not in proc.stderr
