"""Export a log as MCAP (https://mcap.dev), for Foxglove and PlotJuggler.

Topics, every message JSON with a JSON Schema (schema encoding "jsonschema", message
encoding "json"), log_time and publish_time the host receive time in nanoseconds:

- `/thermoguard/channel/<name>`, one per channel, one message per telemetry frame:
  seq, t_dev_s, temp_c (null without a valid reading: never 0), fault (code), fault_word,
  warn, trip (C_* bits), rate_c_per_s (null when unknown), dose_cem43, n (channel index).
- `/thermoguard/state`, one message per telemetry frame: seq, t_dev_s, state (word),
  state_code, interlock (1 while RF is permitted), flags, cause (first trip cause, as the
  CSV), global_causes, max_late_us, overruns, dropped.
- `/thermoguard/events`: the board's events, replies and text lines, and the host's gaps
  and notes: kind (event, reply, text, gap, note), name (BOOT, TRIP...), state, text,
  seq and t_dev_s (null for text, gaps and notes).

The log's header metadata is an MCAP metadata record named "thermoguard" (values as JSON).
Needs the `mcap` package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from thermoguard import frames, log, protocol

NUM = {"type": ["number", "null"]}
INT = {"type": "integer"}
STR = {"type": "string"}

CHANNEL_SCHEMA = {
    "title": "thermoguard.Channel",
    "description": "One thermocouple channel in one safety cycle (docs/protocol.md)",
    "type": "object",
    "properties": {"seq": INT, "t_dev_s": {"type": "number"}, "n": INT, "temp_c": NUM, "fault": INT,
                   "fault_word": STR, "warn": INT, "trip": INT, "rate_c_per_s": NUM,
                   "dose_cem43": {"type": "number"}},
}
STATE_SCHEMA = {
    "title": "thermoguard.State",
    "description": "The board's state in one safety cycle (docs/protocol.md)",
    "type": "object",
    "properties": {"seq": INT, "t_dev_s": {"type": "number"}, "state": STR, "state_code": INT, "interlock": INT,
                   "flags": INT, "cause": STR, "global_causes": INT, "max_late_us": INT, "overruns": INT,
                   "dropped": INT},
}
EVENT_SCHEMA = {
    "title": "thermoguard.Event",
    "description": "A board event, reply or text line, or a host gap or note",
    "type": "object",
    "properties": {"kind": {"type": "string", "enum": ["event", "reply", "text", "gap", "note"]}, "name": STR,
                   "state": STR, "text": STR, "seq": {"type": ["integer", "null"]}, "t_dev_s": NUM},
}


def _numbers(values: np.ndarray) -> list[str]:
    out = list(map(repr, values.tolist()))
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = "null"
    return out


def write_mcap(fr: frames.Frames, names, out: Path, step=None) -> dict:
    """Write the frames and items of a loaded log to an MCAP file; returns counts.

    names: a frames.Layout, or the channel names by index. A topic per channel of the
    layout; a frame that does not have a channel sends nothing on its topic. step(frames
    written), when given, is told as the frames go out."""
    from mcap.writer import CompressionType, Writer

    from thermoguard.export import _causes, _layout

    lay = _layout(fr, names)

    n = len(fr)
    counts = {"messages": 0, "topics": 0}
    with open(out, "wb") as f:
        w = Writer(f, compression=CompressionType.ZSTD)
        w.start(profile="", library="thermoguard")
        schema = {k: w.register_schema(name=v["title"], encoding="jsonschema", data=json.dumps(v).encode())
                  for k, v in (("channel", CHANNEL_SCHEMA), ("state", STATE_SCHEMA), ("event", EVENT_SCHEMA))}
        topics = lay.names
        chan_ids = [w.register_channel(topic=f"/thermoguard/channel/{name}", message_encoding="json",
                                       schema_id=schema["channel"]) for name in topics]
        state_id = w.register_channel(topic="/thermoguard/state", message_encoding="json", schema_id=schema["state"])
        event_id = w.register_channel(topic="/thermoguard/events", message_encoding="json", schema_id=schema["event"])
        counts["topics"] = len(chan_ids) + 2
        w.add_metadata("thermoguard", {k: json.dumps(v) for k, v in fr.meta.items()})
        seq = fr.seq.tolist()
        t_dev = list(map(repr, fr.t_dev_s.tolist()))
        t_host = fr.t_host_ns.tolist()
        state_words = frames.state_names()
        state_msgs = [
            f'{{"seq":{s},"t_dev_s":{td},"state":"{state_words[st]}","state_code":{st},"interlock":{il},'
            f'"flags":{fl},"cause":{json.dumps(ca)},"global_causes":{gc},"max_late_us":{ml},"overruns":{ov},'
            f'"dropped":{dr}}}'
            for s, td, st, il, fl, ca, gc, ml, ov, dr in zip(
                seq, t_dev, fr.state.tolist(), fr.interlock.astype(int).tolist(), fr.flags.tolist(),
                _causes(fr, lay), fr.global_causes.tolist(), fr.max_late_us.tolist(), fr.overruns.tolist(),
                fr.dropped.tolist(), strict=True)]
        fault_words = frames.fault_words()
        chan_msgs = []  # per channel index of the frames (not per topic)
        for c in range(fr.channels):
            chan_msgs.append([
                f'{{"seq":{s},"t_dev_s":{td},"n":{c},"temp_c":{tc},"fault":{fa},"fault_word":"{fault_words[fa]}",'
                f'"warn":{wa},"trip":{tr},"rate_c_per_s":{ra},"dose_cem43":{do}}}'
                for s, td, tc, fa, wa, tr, ra, do in zip(
                    seq, t_dev, _numbers(fr.temp_c[:, c]), fr.fault[:, c].tolist(), fr.warn[:, c].tolist(),
                    fr.trip[:, c].tolist(), _numbers(fr.rate_c_per_s[:, c]), _numbers(fr.dose_cem43[:, c]),
                    strict=True)])
        present = fr.n_channels.tolist()
        column = lay.column.tolist()
        items = fr.items
        k = 0
        for i in range(n):
            while k < len(items) and items[k][0] <= i:
                counts["messages"] += _event(w, event_id, items[k][1], items[k][2])
                k += 1
            t = t_host[i]
            w.add_message(state_id, log_time=t, publish_time=t, data=state_msgs[i].encode(), sequence=i)
            where = column[i]
            for c in range(present[i]):
                w.add_message(chan_ids[where[c]], log_time=t, publish_time=t, data=chan_msgs[c][i].encode(),
                              sequence=i)
            counts["messages"] += 1 + present[i]
            if step is not None and i % 65536 == 65535:
                step(i + 1)
        for _, t_ns, item in items[k:]:
            counts["messages"] += _event(w, event_id, t_ns, item)
        w.finish()
    if step is not None:
        step(n)
    return counts


def _event(w, channel_id: int, t_ns: int, item) -> int:
    msg = {"kind": "", "name": "", "state": "", "text": "", "seq": None, "t_dev_s": None}
    if isinstance(item, protocol.Event):
        msg.update(kind="event", name=item.event_name, state=item.state_name, text=item.text, seq=item.seq,
                   t_dev_s=item.t_dev_s)
    elif isinstance(item, protocol.Reply):
        msg.update(kind="reply", name=item.verb, text=item.text, seq=item.seq, t_dev_s=item.t_dev_s)
    elif isinstance(item, protocol.Text):
        msg.update(kind="text", text=item.text)
    elif isinstance(item, log.Gap):
        msg.update(kind="gap", text=item.reason)
    elif isinstance(item, log.Note):
        msg.update(kind="note", text=item.text)
    else:
        return 0
    w.add_message(channel_id, log_time=t_ns, publish_time=t_ns, data=json.dumps(msg).encode())
    return 1
