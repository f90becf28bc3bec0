"""Thermal scenarios for the virtual board (DESIGN.md, "Scenario CSV").

A header `t_s,<channel>,...`, one row per time point, `#` starts a comment line. Numbers
are degrees C at the thermocouple, linearly interpolated between a channel's rows; a
word is a fault that holds from its row until the channel's next row. An empty cell is
no point for that channel. An exported CSV is a scenario too: its `t_dev_s` column is
the time and its `<name>_c` columns the values; where `<name>_c` is empty, the row's
`<name>_fault` word is used (`stale` plays back as `absent`).

Runs on MicroPython (inside the virtual board) and on CPython (host checks).
"""

FAULT_WORDS = ("open", "short_gnd", "short_vcc", "zeros", "ones", "stuck", "absent")
# Fault words of exports that are no scenario word: what the board saw is replayed as the
# chip behaviour that gives it.
EXPORT_WORDS = {"stale": "absent"}


class ScenarioError(ValueError):
    pass


class Track:
    """One channel's points: times, and a number or a fault word at each."""

    def __init__(self):
        self.times = []
        self.values = []
        self._k = 0  # cursor: time only moves forward, so lookups are O(1) on average

    def add(self, t, value):
        self.times.append(t)
        self.values.append(value)

    def at(self, t):
        """(celsius, None) or (None, fault word) at time t."""
        times = self.times
        if not times:
            return None, "absent"
        k = self._k
        if k >= len(times) or times[k] > t:
            k = 0
        while k + 1 < len(times) and times[k + 1] <= t:
            k += 1
        self._k = k
        v = self.values[k]
        if type(v) is str:
            return None, v
        if t <= times[k] or k + 1 >= len(times):
            return v, None
        nxt = self.values[k + 1]
        if type(nxt) is str:
            return v, None  # hold until the fault's row
        t0, t1 = times[k], times[k + 1]
        return v + (nxt - v) * (t - t0) / (t1 - t0), None


class Scenario:
    def __init__(self, names, tracks):
        self.names = names
        self.tracks = tracks
        self.end_s = max([tr.times[-1] for tr in tracks.values() if tr.times] or [0.0])

    def at(self, name, t):
        return self.tracks[name].at(t)


def _number(text):
    try:
        return float(text)
    except ValueError:
        return None


def parse(text):
    """A Scenario from CSV text; ScenarioError names the line and the problem."""
    header = None
    rows = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if header is None:
            header = cells
            continue
        rows.append((lineno, cells))
    if header is None:
        raise ScenarioError("no header: a scenario starts with t_s,<channel>,...")
    if header[0] == "t_s":
        time_col = 0
        cols = [(name, i, None) for i, name in enumerate(header) if i > 0]
    elif "t_dev_s" in header:  # an exported CSV
        time_col = header.index("t_dev_s")
        cols = []
        for i, name in enumerate(header):
            if name.endswith("_c") and not name.endswith("_cem43"):
                base = name[:-2]
                fault = base + "_fault"
                cols.append((base, i, header.index(fault) if fault in header else None))
    else:
        raise ScenarioError("line 1: the first column must be t_s (or an export's t_dev_s)")
    names = [c[0] for c in cols]
    if not names:
        raise ScenarioError("line 1: no channel columns")
    seen = []
    for name in names:
        if name in seen:
            raise ScenarioError("line 1: channel %s appears twice" % name)
        seen.append(name)
    tracks = {name: Track() for name in names}
    last_t = None
    for lineno, cells in rows:
        if len(cells) > len(header):
            raise ScenarioError("line %d: %d cells, the header has %d" % (lineno, len(cells), len(header)))
        t = _number(cells[time_col]) if time_col < len(cells) else None
        if t is None:
            raise ScenarioError("line %d: time %r is not a number" % (lineno, cells[time_col] if cells else ""))
        if last_t is not None and t < last_t:
            raise ScenarioError("line %d: time %s goes backwards" % (lineno, cells[time_col]))
        last_t = t
        for name, i, fault_col in cols:
            cell = cells[i] if i < len(cells) else ""
            if cell == "" and fault_col is not None and fault_col < len(cells):
                word = cells[fault_col]
                cell = EXPORT_WORDS.get(word, word)
                if cell not in FAULT_WORDS:
                    continue  # implausible, range: nothing to replay but the gap
            if cell == "":
                continue
            value = _number(cell)
            if value is None:
                if cell not in FAULT_WORDS:
                    words = ", ".join(FAULT_WORDS)
                    what = "line %d: %s is %r: neither a number nor one of %s"
                    raise ScenarioError(what % (lineno, name, cell, words))
                value = cell
            tracks[name].add(t, value)
    return Scenario(names, tracks)


def load(path):
    with open(path) as f:
        return parse(f.read())
