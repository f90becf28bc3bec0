"""The configuration definition gives the same answers on CPython (host) and on
MicroPython (board): the same normalised form, the same hash, the same errors."""

import copy
import json

import pytest
from tgfw import config

CASES = {
    "example": {},
    "odd floats": {"channels[1].high_c": 44.79, "channels[0].high_c": 0.1 + 90.2, "host_timeout_s": 2.5},
    "negative": {"channels[0].low_c": 0.0, "channels[1].low_c": 5.125},
    "unknown key": {"channels[0].colour": "red"},
    "too hot": {"channels[1].high_c": 51},
    "bad type": {"sample_hz": 10.5},
    "too fast": {"sample_hz": 12},
    "duplicate cs": {"channels[1].cs": 17},
    "bool": {"stale_ms": True},
}


def apply(doc, changes):
    doc = copy.deepcopy(doc)
    for path, value in changes.items():
        target = doc
        parts = path.replace("]", "").replace("[", ".").split(".")
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        target[parts[-1]] = value
    return doc


def host_answer(doc):
    try:
        cfg = config.validate(doc)
    except config.ConfigError as e:
        return {"errors": [list(p) for p in e.problems]}
    return {"canonical": config.canonical(cfg), "hash": config.config_hash(cfg)}


@pytest.mark.req("SR-CFG-03")
def test_host_and_board_agree(example_config, micropython):
    docs = {name: apply(example_config, changes) for name, changes in CASES.items()}
    code = (
        "import json\nfrom tgfw import config\n"
        f"docs = json.loads({json.dumps(json.dumps(docs))})\n"
        "out = {}\n"
        "for name in docs:\n"
        "    try:\n"
        "        cfg = config.validate(docs[name])\n"
        "        out[name] = {'canonical': config.canonical(cfg), 'hash': config.config_hash(cfg)}\n"
        "    except config.ConfigError as e:\n"
        "        out[name] = {'errors': [list(p) for p in e.problems]}\n"
        "print(json.dumps(out))\n"
    )
    board = json.loads(micropython(code))
    for name, doc in docs.items():
        assert board[name] == host_answer(doc), name
    assert "errors" not in board["odd floats"]
    assert "errors" in board["too hot"]


@pytest.mark.req("SR-CFG-01")
def test_bad_configuration_names_the_key(example_config):
    doc = apply(example_config, {"channels[1].high_c": "hot"})
    with pytest.raises(config.ConfigError) as e:
        config.validate(doc)
    assert str(e.value) == 'channels[1].high_c: must be a number, not "hot"'


@pytest.mark.req("SR-CFG-01")
def test_load_reports_bad_json(tmp_path):
    p = tmp_path / "c.json"
    p.write_text("{not json")
    with pytest.raises(config.ConfigError) as e:
        config.load(str(p))
    assert "is not valid JSON" in str(e.value)
