"""The shared configuration definition, on MicroPython (the same checks run on CPython in
tests/host/test_config_host.py)."""

from fixtures import example
from fwtest import raises, req
from tgfw import config


def problems_of(doc):
    e = raises(config.ConfigError, config.validate, doc)
    return dict(e.problems)


@req("SR-CFG-01")
def test_design_example_is_valid_and_gets_defaults():
    cfg = config.validate(example())
    assert cfg["rate_window_s"] == 2.0
    assert cfg["channels"][1]["warn_margin_c"] == 2.0
    assert cfg["channels"][0]["averaging"] == 1


@req("SR-CFG-01")
def test_unknown_keys_are_named():
    doc = example()
    doc["colour"] = "red"
    doc["channels"][1]["hihg_c"] = 40
    p = problems_of(doc)
    assert p["colour"] == "unknown key"
    assert p["channels[1].hihg_c"] == "unknown key"


@req("SR-CFG-01")
def test_wrong_types_are_named():
    doc = example()
    doc["sample_hz"] = "10"
    doc["channels"][0]["high_c"] = True
    p = problems_of(doc)
    assert "whole number" in p["sample_hz"]
    assert "number" in p["channels[0].high_c"]


@req("SR-CFG-02")
def test_ceilings_per_role_refuse_a_looser_limit():
    doc = example()
    doc["channels"][1]["high_c"] = 50.5
    doc["channels"][1]["low_c"] = 4.0
    doc["channels"][0]["high_c"] = 110.0
    doc["channels"][1]["dose_cem43"] = 121
    p = problems_of(doc)
    assert "protective ceiling of 50.0" in p["channels[1] (foramen).high_c"]
    assert "floor" in p["channels[1] (foramen).low_c"]
    assert "ablation ceiling" in p["channels[0] (tip).high_c"]
    assert "ceiling" in p["channels[1] (foramen).dose_cem43"]


@req("SR-CFG-02")
def test_limit_equal_to_a_ceiling_is_allowed():
    doc = example()
    doc["channels"][1]["high_c"] = 50.0
    config.validate(doc)


@req("SR-CFG-01")
def test_duplicate_names_and_chip_selects():
    doc = example()
    doc["channels"][1]["name"] = "tip"
    doc["channels"][1]["cs"] = 17
    p = problems_of(doc)
    assert "also the name" in p["channels[1].name"]
    assert "also the chip select" in p["channels[1].cs"]


@req("SR-CFG-01")
def test_role_without_required_limits():
    doc = example()
    del doc["channels"][1]["low_c"]
    del doc["channels"][0]["high_c"]
    p = problems_of(doc)
    assert "required for a protective" in p["channels[1] (foramen).low_c"]
    assert "required for a ablation" in p["channels[0] (tip).high_c"]


@req("SR-CFG-04")
def test_rate_beyond_a_chip_is_an_error():
    doc = example()
    doc["sample_hz"] = 11
    assert "faster than" in problems_of(doc)["sample_hz"]
    doc = example()
    doc["channels"][0]["averaging"] = 4
    assert "at most 5 Hz" in problems_of(doc)["sample_hz"]
    doc = example()
    doc["sample_hz"] = 5
    doc["stale_ms"] = 500
    doc["channels"][1]["chip"] = "max6675"
    assert "at most 4 Hz" in problems_of(doc)["sample_hz"]


@req("SR-CFG-01")
def test_chip_options_belong_to_their_chip():
    doc = example()
    doc["channels"][1]["averaging"] = 2
    doc["channels"][0]["tc_type"] = "X"
    p = problems_of(doc)
    assert "max31856 only" in p["channels[1] (foramen).averaging"]
    assert "not a type" in p["channels[0] (tip).tc_type"]


@req("SR-CFG-01")
def test_stale_limit_must_cover_two_periods():
    doc = example()
    doc["stale_ms"] = 150
    assert "two sample periods" in problems_of(doc)["stale_ms"]


@req("SR-CFG-03")
def test_hash_is_stable_and_changes_with_content():
    a = config.config_hash(config.validate(example()))
    b = config.config_hash(config.validate(example()))
    doc = example()
    doc["channels"][1]["high_c"] = 44.5
    c = config.config_hash(config.validate(doc))
    assert a == b
    assert a != c
    assert 0 <= a < 2**32


@req("SR-CFG-05")
def test_set_names_the_key_and_refuses_bad_values():
    cfg = config.validate(example())
    new = config.apply_set(cfg, ["foramen.high_c=44", "stale_ms=250"])
    assert new["channels"][1]["high_c"] == 44
    assert new["stale_ms"] == 250
    e = raises(config.ConfigError, config.apply_set, cfg, ["foramen.high_c=60"])
    assert "ceiling" in str(e)
    e = raises(config.ConfigError, config.apply_set, cfg, ["nerve.high_c=40"])
    assert "nerve.high_c" in str(e)
    e = raises(config.ConfigError, config.apply_set, cfg, ["high_c"])
    assert "KEY=VALUE" in str(e)
    assert cfg["channels"][1]["high_c"] == 45.0  # the original is untouched


@req("SR-CFG-05")
def test_loosenings_found():
    cfg = config.validate(example())
    tighter = config.apply_set(cfg, ["foramen.high_c=44", "foramen.low_c=12", "foramen.dose_cem43=30"])
    assert config.loosenings(cfg, tighter) == []
    looser = config.apply_set(cfg, ["foramen.high_c=46"])
    assert config.loosenings(cfg, looser) == ["foramen.high_c"]
    looser = config.apply_set(cfg, ["host_timeout_s=0"])
    assert config.loosenings(cfg, looser) == ["host_timeout_s"]
