"""A closed-loop thermal plant for the virtual board: RF heats only while the interlock
permits it, and tissue relaxes towards body temperature when it does not.

Each channel's tissue is first order: with RF on it approaches `rf_c` with time constant
`heat_tau_s`; with RF off it approaches `body_c` with `cool_tau_s`. So a trip (interlock
open) visibly stops the heating and the protective channel cools.

A plant file is JSON:
  {"body_c": 37.0, "duration_s": 400,
   "channels": {"tip": {"rf_c": 95.0, "heat_tau_s": 40, "cool_tau_s": 30}, ...}}
Runs on MicroPython (inside the virtual board) and CPython.
"""

import json
import math


class PlantError(ValueError):
    pass


class Plant:
    def __init__(self, doc):
        if type(doc) is not dict or type(doc.get("channels")) is not dict or not doc["channels"]:
            raise PlantError("a plant needs a channels object naming at least one channel")
        self.body_c = float(doc.get("body_c", 37.0))
        self.end_s = float(doc.get("duration_s", 300.0))
        self.params = {}
        self.temps = {}
        for name, p in doc["channels"].items():
            try:
                rf_c = float(p["rf_c"])
                heat = float(p.get("heat_tau_s", 60.0))
                cool = float(p.get("cool_tau_s", 60.0))
            except (KeyError, TypeError, ValueError):
                raise PlantError("channel %s needs a number rf_c (and optional heat_tau_s, cool_tau_s)" % name)
            if heat <= 0 or cool <= 0:
                raise PlantError("channel %s: time constants must be above 0" % name)
            self.params[name] = (rf_c, heat, cool)
            self.temps[name] = float(p.get("start_c", self.body_c))
        self.names = list(self.params)

    def step(self, dt_s, rf_on):
        """Advance dt_s seconds with RF on or off (exact for first-order relaxation)."""
        for name, (rf_c, heat, cool) in self.params.items():
            target, tau = (rf_c, heat) if rf_on else (self.body_c, cool)
            t = self.temps[name]
            self.temps[name] = target + (t - target) * math.exp(-dt_s / tau)

    def at(self, name, t_s=None):  # the Follower's interface: (celsius, no fault)
        return self.temps[name], None


def parse(text):
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise PlantError("not valid JSON (%s)" % e)
    return Plant(doc)


def load(path):
    with open(path) as f:
        return parse(f.read())
