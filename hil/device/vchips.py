"""The virtual board's chips: a model on each configured chip select, and the temperatures
and faults of a scenario or plant, and of the control channel's overrides, applied to
them, by the virtual board (vstart.py) in every mode."""

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
    (celsius or None, fault word or None); None: no source) and the control channel's
    overrides to the models, changing faults only on change. A channel neither the source
    nor an override names stays at body temperature."""

    def __init__(self, models, source=None):
        self.models = models
        self.source = source
        self.names = source.names if source is not None else ()
        self.faults = {}
        self.overrides = {}  # name -> (celsius or None, fault word or None)
        self.touched = set()  # channels overridden at some time: back to body temperature after

    def override(self, name, celsius, word):
        """Until cleared, name reads celsius (None: the source's temperature) with fault word
        (None: healthy), whatever the source says."""
        self.overrides[name] = (celsius, word)
        self.touched.add(name)

    def clear(self, name=None):
        if name is None:
            self.overrides.clear()
        else:
            self.overrides.pop(name, None)

    def follow(self, t):
        overrides = self.overrides
        for name, model in self.models.items():
            forced = overrides.get(name)
            if name in self.names:
                celsius, word = self.source.at(name, t)
            elif forced is None and name not in self.touched:
                continue
            else:
                celsius, word = BODY_C, None
            if forced is not None:
                if forced[0] is not None:
                    celsius = forced[0]
                word = forced[1]
            if word != self.faults.get(name):
                model.set_fault(word)
                self.faults[name] = word
            if celsius is not None:
                model.set_temperature(celsius)
