"""`thermoguard export LOG --mcap OUT`: one JSON topic per channel plus state and events, with
JSON schemas, read back with the mcap package's own reader."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap import reader as mcap_reader  # noqa: E402
from test_cli_sim import CONFIG, SCENARIO
from thermoguard import frames, log, protocol

EXE = str(Path(sys.executable).with_name("thermoguard"))
# foramen opens (unplugged) from 2 s to 3 s: null temperatures, then it warms and trips.
SCENARIO_OPEN = SCENARIO.replace("0,37,37\n", "0,37,37\n2,37,open\n3,37,37\n")


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("mcap")
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "s.csv").write_text(SCENARIO_OPEN)
    proc = run("sim", str(d / "s.csv"), "--config", str(d / "config.json"), "--out", str(d / "run.tglog"),
               "--no-arm")
    assert proc.returncode == 0, proc.stderr
    proc = run("export", str(d / "run.tglog"), "--mcap", str(d / "run.mcap"), "--csv", str(d / "run.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "messages on 4 topics" in proc.stdout
    return d


def read(path):
    with open(path, "rb") as f:
        reader = mcap_reader.make_reader(f)
        summary = reader.get_summary()
        messages = [(ch.topic, sch, msg) for sch, ch, msg in reader.iter_messages(log_time_order=False)]
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
    return summary, messages, metadata


@pytest.mark.req("SR-HOST-14", "SR-LNK-04")
def test_mcap_has_a_topic_per_channel_state_and_events_matching_the_log(exported):
    fr = frames.load_telemetry(exported / "run.tglog")
    summary, messages, metadata = read(exported / "run.mcap")
    topics = {c.topic for c in summary.channels.values()}
    assert topics == {"/thermoguard/channel/tip", "/thermoguard/channel/foramen", "/thermoguard/state",
                      "/thermoguard/events"}
    for c in summary.channels.values():
        assert c.message_encoding == "json"
        schema = summary.schemas[c.schema_id]
        assert schema.encoding == "jsonschema" and json.loads(schema.data)["type"] == "object"
    by_topic = {}
    for topic, _, msg in messages:
        by_topic.setdefault(topic, []).append((msg.log_time, json.loads(msg.data)))
    state = by_topic["/thermoguard/state"]
    foramen = by_topic["/thermoguard/channel/foramen"]
    assert len(state) == len(foramen) == len(fr) > 50
    assert [t for t, _ in state] == fr.t_host_ns.tolist()
    assert [m["seq"] for _, m in state] == fr.seq.tolist()
    assert [m["t_dev_s"] for _, m in foramen] == fr.t_dev_s.tolist()
    temps = [m["temp_c"] for _, m in foramen]
    want = [None if np.isnan(v) else v for v in fr.temp_c[:, 1].tolist()]
    assert temps == want and None in temps  # the open thermocouple: null, never 0
    assert all(m["fault_word"] == "open" for _, m in foramen if m["temp_c"] is None)
    assert [m["dose_cem43"] for _, m in foramen] == fr.dose_cem43[:, 1].tolist()
    assert {m["state"] for _, m in state} >= {"DISARMED"}
    events = [m for _, m in by_topic["/thermoguard/events"]]
    assert events[0]["kind"] == "event" and events[0]["name"] == "BOOT"
    assert len(events) == len(fr.items)
    assert json.loads(metadata["thermoguard"]["board"]) == "virtual"
    assert summary.statistics.message_count == len(messages) == 3 * len(fr) + len(fr.items)


@pytest.mark.req("SR-HOST-14")
def test_mcap_trip_event_and_cause_as_the_csv_has_them(tmp_path):
    path = tmp_path / "t.tglog"
    with log.LogWriter.create(path, {"config": {"channels": [{"name": "nerve"}]}}) as w:
        for i in range(3):
            state, cause = (3, 1) if i == 2 else (2, 0)
            w.write_bytes(protocol.encode_telemetry(i, 1, i * 100_000, state, int(state == 2), 0, 0, cause, 0, 0, 0,
                                                    0, [46 * 1024], [0], [0], [0], [cause], [0], [0], [0]), 10 + i)
        w.write_bytes(protocol.encode_event(3, 1, 250_000, protocol.EV_TRIP, 3, "nerve:high"), 20)
        w.note("probe checked", 30)
    fr = frames.load_telemetry(path)
    from thermoguard import mcap_export

    counts = mcap_export.write_mcap(fr, fr.names, tmp_path / "t.mcap")
    assert counts == {"messages": 8, "topics": 3}
    _, messages, _ = read(tmp_path / "t.mcap")
    data = [(topic, json.loads(msg.data)) for topic, _, msg in messages]
    states = [m for t, m in data if t == "/thermoguard/state"]
    assert [(m["state"], m["interlock"], m["cause"]) for m in states] == [
        ("ARMED", 1, ""), ("ARMED", 1, ""), ("TRIPPED", 0, "nerve:high")]
    events = [m for t, m in data if t == "/thermoguard/events"]
    assert events[0] == {"kind": "event", "name": "TRIP", "state": "TRIPPED", "text": "nerve:high", "seq": 3,
                         "t_dev_s": 1.25}
    assert events[1]["kind"] == "note" and events[1]["text"] == "probe checked" and events[1]["t_dev_s"] is None


@pytest.mark.req("SR-HOST-14", "SR-LOG-04")
def test_mcap_export_refuses_to_overwrite(exported):
    (exported / "taken.mcap").write_text("keep")
    proc = run("export", str(exported / "run.tglog"), "--mcap", str(exported / "taken.mcap"))
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (exported / "taken.mcap").read_text() == "keep"
