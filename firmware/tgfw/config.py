"""The configuration: one definition, validated identically on the board and the host.

A configuration is the JSON document of DESIGN.md. `validate` returns it normalised
(defaults filled in, numbers rounded to 0.001) or raises ConfigError naming every bad key
and why. Hard ceilings per role are part of this definition: no configuration, file or
command can go beyond them. Pure Python for MicroPython and CPython; it runs at boot and
on commands, never in the safety cycle.
"""

try:
    from binascii import crc32
except ImportError:  # CPython
    from zlib import crc32

from tgfw import chips

ROLES = ("ablation", "protective", "reference")

# Hard limits built into the firmware, per role. A high limit may not exceed
# HIGH_MAX, a low limit may not go below LOW_MIN, rate and dose limits may not exceed
# theirs. Protective: about 45 C injures nerves (Dupuy 2000), 50-65 CEM43 gives
# reversible loss of nerve function, about 120 CEM43 significant injury.
CEILINGS = {
    "ablation": {"high_c": 105.0, "low_c": 0.0, "rate_c_per_s": 20.0, "dose_cem43": 100000.0},
    "protective": {"high_c": 50.0, "low_c": 5.0, "rate_c_per_s": 5.0, "dose_cem43": 120.0},
    "reference": {"high_c": 60.0, "low_c": -20.0, "rate_c_per_s": 20.0, "dose_cem43": 100000.0},
}
# Limits every channel of a role must have.
REQUIRED = {
    "ablation": ("high_c",),
    "protective": ("high_c", "low_c"),
    "reference": ("high_c",),
}

MAX_CHANNELS = 8
NAME_MAX = 16
STALE_MS_MAX = 2000
HOST_TIMEOUT_MAX_S = 60

# Top-level keys: (kind, required, default, low, high).
TOP = {
    "sample_hz": ("int", True, None, 1, 20),
    "stale_ms": ("int", True, None, 1, STALE_MS_MAX),
    "host_timeout_s": ("num", True, None, 0, HOST_TIMEOUT_MAX_S),
    "rate_window_s": ("num", False, 2.0, 0.2, 6.4),
    "frozen_ms": ("int", False, 5000, 500, 60000),
    "max_overruns": ("int", False, 3, 1, 100),
    "warn_ratio": ("num", False, 0.8, 0.5, 1.0),
    "channels": ("list", True, None, 1, MAX_CHANNELS),
}
# Channel keys. Limits are checked against the role's ceilings separately.
CHANNEL = {
    "name": ("str", True, None, 1, NAME_MAX),
    "chip": ("str", True, None, None, None),
    "cs": ("int", True, None, 0, 63),
    "tc_type": ("str", False, "K", None, None),
    "role": ("str", True, None, None, None),
    "high_c": ("num", False, None, -200, 1800),
    "low_c": ("num", False, None, -200, 1800),
    "rate_c_per_s": ("num", False, None, 0.1, 1000),
    "dose_cem43": ("num", False, None, 0.001, 1000000),
    "warn_margin_c": ("num", False, 2.0, 0, 20),
    "jump_c": ("num", False, 10.0, 1, 50),
    "averaging": ("int", False, 1, 1, 16),
    "filter_hz": ("int", False, 60, 50, 60),
}
LIMIT_KEYS = ("high_c", "low_c", "rate_c_per_s", "dose_cem43")
MAX31856_ONLY = ("averaging", "filter_hz")


class ConfigError(ValueError):
    """Raised with every problem found; `problems` is a list of (key, reason)."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("; ".join(k + ": " + r for k, r in problems))


def _is_num(v):
    t = type(v)
    return t is int or t is float


def _milli(v):
    """Round to 0.001 so that both interpreters agree on the canonical form."""
    return round(v * 1000) / 1000 if type(v) is float else v


def _check_value(key, spec, v, problems):
    kind, _, _, low, high = spec
    if kind == "int":
        if type(v) is not int:
            problems.append((key, "must be a whole number, not %s" % _show(v)))
            return None
    elif kind == "num":
        if not _is_num(v):
            problems.append((key, "must be a number, not %s" % _show(v)))
            return None
        if v != v or v in (float("inf"), float("-inf")):
            problems.append((key, "must be a finite number"))
            return None
        v = _milli(v)
    elif kind == "str":
        if type(v) is not str:
            problems.append((key, "must be a string, not %s" % _show(v)))
            return None
        if low is not None and not (low <= len(v) <= high):
            problems.append((key, "must be %d to %d characters long" % (low, high)))
            return None
        return v
    elif kind == "list":
        if type(v) is not list:
            problems.append((key, "must be a list, not %s" % _show(v)))
            return None
        if not (low <= len(v) <= high):
            problems.append((key, "must list %d to %d channels, not %d" % (low, high, len(v))))
            return None
        return v
    if low is not None and not (low <= v <= high):
        problems.append((key, "%s is outside %s..%s" % (_show(v), _show(low), _show(high))))
        return None
    return v


def _show(v):
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if type(v) is str:
        return '"%s"' % v
    if type(v) in (int, float):
        return repr(v)
    return type(v).__name__


def _fill(doc, schema, prefix, problems):
    """Check keys of one object against a schema; returns the normalised copy."""
    out = {}
    if type(doc) is not dict:
        problems.append((prefix or "configuration", "must be a JSON object"))
        return None
    for key in doc:
        if key not in schema:
            problems.append((prefix + key, "unknown key"))
    for key in schema:
        spec = schema[key]
        if key in doc:
            v = _check_value(prefix + key, spec, doc[key], problems)
            if v is not None:
                out[key] = v
        elif spec[1]:
            problems.append((prefix + key, "is required"))
        elif spec[2] is not None:
            out[key] = spec[2]
    return out


def _is_name(s):
    if not ("a" <= s[0].lower() <= "z"):
        return False
    for c in s:
        if not (c == "_" or "0" <= c <= "9" or "a" <= c.lower() <= "z"):
            return False
    return True


def _check_channel(i, ch, raw, top, problems):
    where = "channels[%d]" % i
    if "name" in ch:
        if not _is_name(ch["name"]):
            problems.append((where + ".name", "must start with a letter and hold only letters, digits and _"))
        where = "channels[%d] (%s)" % (i, ch["name"])
    chip = ch.get("chip")
    if chip is not None and chip not in chips.CHIPS:
        problems.append((where + ".chip", '"%s" is not one of %s' % (chip, ", ".join(chips.CHIPS))))
        chip = None
    if chip is not None:
        if ch.get("tc_type") not in chips.TC_TYPES[chip]:
            problems.append(
                (where + ".tc_type", '"%s" is not a type the %s handles (%s)'
                 % (ch.get("tc_type"), chip, ", ".join(chips.TC_TYPES[chip])))
            )
        if chip != chips.MAX31856:
            for key in MAX31856_ONLY:
                if key in raw:
                    problems.append((where + "." + key, "applies to the max31856 only"))
        else:
            if ch.get("averaging") not in chips.MAX31856_AVERAGING:
                problems.append((where + ".averaging", "must be one of 1, 2, 4, 8, 16"))
            if ch.get("filter_hz") not in chips.MAX31856_FILTERS:
                problems.append((where + ".filter_hz", "must be 50 or 60"))
        hz = top.get("sample_hz")
        if hz is not None and "averaging" in ch and "filter_hz" in ch:
            fastest = chips.max_sample_hz(chip, ch["averaging"], ch["filter_hz"])
            if hz > fastest:
                problems.append(
                    ("sample_hz", "%d Hz is faster than %s on %s can convert (at most %d Hz)"
                     % (hz, where, chip, fastest))
                )
    role = ch.get("role")
    if role is not None and role not in ROLES:
        problems.append((where + ".role", '"%s" is not one of %s' % (role, ", ".join(ROLES))))
        role = None
    if role is None:
        return
    for key in REQUIRED[role]:
        if key not in raw:
            problems.append((where + "." + key, "is required for a %s channel" % role))
    ceil = CEILINGS[role]
    for key in ("high_c", "rate_c_per_s", "dose_cem43"):
        if key in ch and ch[key] > ceil[key]:
            problems.append(
                (where + "." + key, "%s is above the %s ceiling of %s" % (_show(ch[key]), role, _show(ceil[key])))
            )
    if "low_c" in ch and ch["low_c"] < ceil["low_c"]:
        problems.append(
            (where + ".low_c", "%s is below the %s floor of %s" % (_show(ch["low_c"]), role, _show(ceil["low_c"])))
        )
    if "low_c" in ch and "high_c" in ch and ch["low_c"] >= ch["high_c"]:
        problems.append((where + ".low_c", "must be below high_c"))


def validate(doc):
    """Return the normalised configuration, or raise ConfigError listing every problem."""
    problems = []  # type: list
    top = _fill(doc, TOP, "", problems)
    if top is None:
        raise ConfigError(problems)
    hz = top.get("sample_hz")
    if hz is not None and "stale_ms" in top:
        floor = 2 * ((1000 + hz - 1) // hz)
        if top["stale_ms"] < floor:
            problems.append(("stale_ms", "must be at least two sample periods (%d ms at %d Hz)" % (floor, hz)))
    host = top.get("host_timeout_s")
    if host is not None and 0 < host < 1:
        problems.append(("host_timeout_s", "must be 0 (off) or at least 1 s"))
    if hz is not None and "rate_window_s" in top:
        n = rate_window_samples(hz, top["rate_window_s"])
        if not (2 <= n <= 64):
            problems.append(("rate_window_s", "gives %d samples at %d Hz; it must give 2 to 64" % (n, hz)))
    channels = []
    names = {}  # type: dict
    pins = {}  # type: dict
    for i, raw in enumerate(top.get("channels") or ()):
        ch = _fill(raw, CHANNEL, "channels[%d]." % i, problems)
        if ch is None:
            continue
        _check_channel(i, ch, raw, top, problems)
        if ch.get("chip") != chips.MAX31856:
            for key in MAX31856_ONLY:
                ch.pop(key, None)  # defaults that only mean something on a max31856
        name, cs = ch.get("name"), ch.get("cs")
        if name is not None:
            if name in names:
                why = '"%s" is also the name of channels[%d]' % (name, names[name])
                problems.append(("channels[%d].name" % i, why))
            names[name] = i
        if cs is not None:
            if cs in pins:
                why = "pin %d is also the chip select of channels[%d]" % (cs, pins[cs])
                problems.append(("channels[%d].cs" % i, why))
            pins[cs] = i
        channels.append(ch)
    if problems:
        raise ConfigError(problems)
    top["channels"] = channels
    return top


def rate_window_samples(sample_hz, rate_window_s):
    """Samples in the rate-of-rise window, rounded to an even number (two halves)."""
    n = int(rate_window_s * sample_hz + 0.5)
    return n + (n & 1)


def _num_text(v):
    """Numbers in the canonical form: whole numbers plain, others with 3 decimals."""
    if type(v) is int:
        return str(v)
    m = int(round(v * 1000))
    sign = "-" if m < 0 else ""
    m = abs(m)
    return "%s%d.%03d" % (sign, m // 1000, m % 1000)


def canonical(cfg):
    """A byte-exact text of a normalised configuration: sorted keys, no spaces."""
    if type(cfg) is dict:
        return "{" + ",".join('"%s":%s' % (k, canonical(cfg[k])) for k in sorted(cfg)) + "}"
    if type(cfg) is list:
        return "[" + ",".join(canonical(v) for v in cfg) + "]"
    if type(cfg) is str:
        return '"%s"' % cfg
    return _num_text(cfg)


def config_hash(cfg):
    """CRC-32 of the canonical form: the identity of a configuration in telemetry."""
    return crc32(canonical(cfg).encode()) & 0xFFFFFFFF


def parse_value(text):
    """A command's VALUE: a number when it reads as one, else the text itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def apply_set(cfg, assignments):
    """Return a copy of cfg with `KEY=VALUE` assignments applied and validated.

    KEY is a top-level key (`stale_ms`) or `<channel name>.<key>` (`foramen.high_c`).
    Raises ConfigError naming the key on a malformed assignment or an invalid result.
    """
    new = _copy(cfg)
    for item in assignments:
        key, eq, text = item.partition("=")
        if not eq or not key or not text:
            raise ConfigError([(item or "(empty)", "must be KEY=VALUE")])
        value = parse_value(text)
        name, dot, sub = key.partition(".")
        if not dot:
            if key not in TOP or key == "channels":
                raise ConfigError([(key, "unknown key")])
            new[key] = value
            continue
        for ch in new["channels"]:
            if ch["name"] == name:
                if sub not in CHANNEL:
                    raise ConfigError([(key, "unknown key")])
                ch[sub] = value
                break
        else:
            raise ConfigError([(key, 'no channel is named "%s"' % name)])
    return validate(new)


def _copy(v):
    if type(v) is dict:
        return {k: _copy(v[k]) for k in v}
    if type(v) is list:
        return [_copy(x) for x in v]
    return v


# Checks a command may only make stricter: (key, True when a smaller value is stricter).
_STRICTER_SMALLER = {
    "stale_ms": True, "frozen_ms": True, "max_overruns": True, "warn_ratio": True,
    "high_c": True, "rate_c_per_s": True, "dose_cem43": True, "jump_c": True,
    "low_c": False, "warn_margin_c": False,
}


def _tighter(key, a, b):
    if key == "host_timeout_s":  # 0 is off: turning it on, or shortening it, is stricter
        return b > 0 and (a == 0 or b < a)
    if key not in _STRICTER_SMALLER:
        return False  # structure (chips, pins, roles, rates, windows) is flashed, not commanded
    if a is None:
        return b is not None  # a limit where there was none
    if b is None:
        return False
    return b < a if _STRICTER_SMALLER[key] else b > a


def loosenings(old, new):
    """What in `new` is not stricter than `old`: every change a command may not make.

    A command may only tighten: lower a high, rate, dose or jump limit, raise a low limit,
    shorten the stale, frozen or host timeouts (or turn the host timeout on), lower the
    overrun tolerance or the warning ratio, widen a warning margin. Everything else (the
    channels, their chips, pins and roles, the rate and its window) changes only by
    flashing a configuration.
    """
    found = []
    for key in TOP:
        if key == "channels":
            continue
        a, b = old.get(key), new.get(key)
        if a != b and not _tighter(key, a, b):
            found.append(key)
    if len(old["channels"]) != len(new["channels"]):
        return found + ["channels"]
    for a, b in zip(old["channels"], new["channels"]):
        for key in CHANNEL:
            va, vb = a.get(key), b.get(key)
            if va != vb and not _tighter(key, va, vb):
                found.append("%s.%s" % (a["name"], key))
    return found


def load(path):
    """Read and validate a configuration file."""
    import json

    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ConfigError([(path, "cannot be read (%s)" % e)])
    except ValueError as e:
        raise ConfigError([(path, "is not valid JSON (%s)" % e)])
    return validate(doc)


def to_json(cfg):
    """The normalised configuration as JSON text for storage on the board."""
    return canonical(cfg)
