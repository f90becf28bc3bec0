"""The virtual board's chips: a model on each configured chip select, and the temperatures
and faults of a scenario or plant applied to them. Shared by the pty board (vstart.py)
and the scenario runner (vboard.py)."""

import json

import machine
from chipmodels.max6675 import MAX6675
from chipmodels.max31855 import MAX31855
from chipmodels.max31856 import MAX31856

MODELS = {"max31855": MAX31855, "max31856": MAX31856, "max6675": MAX6675}
BODY_C = 37.0  # a channel the scenario does not name stays at body temperature
ROOM_C = 25.0  # the chips' own (cold-junction) temperature


def attach(config_path):
    """A model on each configured chip select, at body temperature; {name: model}."""
    try:
        with open(config_path) as f:
            channels = json.load(f).get("channels", [])
    except (OSError, ValueError, AttributeError):
        return {}  # the firmware reports the missing or bad configuration itself
    models = {}
    for ch in channels:
        try:
            model = MODELS[ch["chip"]](ch.get("tc_type", "K"))
            cs, name = ch["cs"], ch["name"]
        except (KeyError, ValueError, TypeError):
            continue
        model.dither = True  # real chips flicker by an LSB; the frozen check relies on it
        model.set_temperature(BODY_C, ROOM_C)
        machine.attach_chip(cs, model)
        models[name] = model
    return models


class Follower:
    """Applies a source (scenario.Scenario or plant.Plant: `.at(name, t)` gives
    (celsius or None, fault word or None)) to the models, changing faults only on change."""

    def __init__(self, models, source):
        self.models = models
        self.source = source
        self.names = source.names
        self.faults = {}

    def follow(self, t):
        for name, model in self.models.items():
            if name not in self.names:
                continue
            celsius, word = self.source.at(name, t)
            if word != self.faults.get(name):
                model.set_fault(word)
                self.faults[name] = word
            if celsius is not None:
                model.set_temperature(celsius)
