"""The `machine` module of the virtual board (MicroPython Unix port).

It shadows the built-in module when hil/device is on sys.path (the built-in stays
reachable as `umachine`). Pins keep their levels in a module-level registry, so tests and
the virtual board read outputs and set inputs from outside (pin_level, set_input). Chip
models hang on chip-select pins (attach_chip): a falling edge selects the model, a rising
edge deselects it, and every SPI byte goes to each selected model. MISO idles high: with
no chip selected a read returns 0xFF; two selected chips driving at once give the AND of
their outputs. A model whose SPI mode or clock is not the bus's answers one bit late, as
a real chip sampled on the wrong edge would. Level changes, routing and transfers do not
allocate, not even a transient frame: the firmware's cycle runs on them in its allocation
tests.
"""

import time

# Reset causes (values of the rp2 and esp32 ports).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_levels = {}  # pin id -> level the pin shows now
_modes = {}  # pin id -> Pin.IN / OUT / OPEN_DRAIN
_pulls = {}  # pin id -> Pin.PULL_UP / PULL_DOWN / None
_outs = {}  # pin id -> value the pin drives as an output (remembered while an input)
_exts = {}  # pin id -> level applied from outside, None while nothing drives it
_chips = {}  # chip-select pin id -> model
_models = []  # attached models, in attach order
_wires = {}  # output pin id -> input pin id that follows it (a relay and its contact)
_reset_cause = PWRON_RESET
_wdt = [None, None]  # [timeout ms, ticks_ms of the last feed] once a WDT is started
_hang = [False]  # hang(): the next SPI byte never completes


def pin_level(pin_id):
    """The level a pin shows now (0 or 1), None if the pin was never set up."""
    return _levels.get(pin_id)


def pin_mode(pin_id):
    return _modes.get(pin_id)


def set_input(pin_id, level):
    """Drive a pin from outside (None: stop driving it); shows unless the pin drives."""
    _ensure(pin_id)
    _exts[pin_id] = level
    _update(pin_id)


def wire(out_id, in_id):
    """Make input in_id follow output out_id, as a relay contact follows its coil."""
    _ensure(out_id)
    _wires[out_id] = in_id
    set_input(in_id, _levels[out_id])


def unwire(out_id):
    """Cut the wire: the input keeps what it has until set_input changes it."""
    _wires.pop(out_id, None)


def attach_chip(cs_pin_id, model):
    """Wire a chip model to a chip-select pin (replacing any model already there)."""
    detach_chip(cs_pin_id)
    _chips[cs_pin_id] = model
    _models.append(model)
    model.selected = False
    if _levels.get(cs_pin_id, 1) == 0:
        model.selected = True
        model.select()


def detach_chip(cs_pin_id):
    model = _chips.pop(cs_pin_id, None)
    if model is not None:
        _models.remove(model)


def clear_registry():
    """Forget every pin, chip and watchdog (a fresh board, for tests)."""
    global _reset_cause
    for d in (_levels, _modes, _pulls, _outs, _exts, _chips, _wires):
        d.clear()
    del _models[:]
    _reset_cause = PWRON_RESET
    _wdt[0] = _wdt[1] = None
    _hang[0] = False


def hang():
    """Test hook: the next SPI transfer spins forever without sleeping, as firmware stuck
    in a loop does (only a watchdog, or Ctrl-C, gets the board out of it)."""
    _hang[0] = True


def set_reset_cause(cause):
    global _reset_cause
    _reset_cause = cause


def reset_cause():
    return _reset_cause


def wdt_state():
    """(timeout ms, ticks_ms of the last feed) of the started watchdog, or (None, None)."""
    return _wdt[0], _wdt[1]


def _ensure(pin_id):
    if pin_id not in _modes:
        _modes[pin_id] = Pin.IN
        _pulls[pin_id] = None
        _outs[pin_id] = 0
        _exts[pin_id] = None
        _levels[pin_id] = 0


def _update(pin_id):
    """Recompute a pin's level from its mode, drive, pull and what drives it from outside."""
    mode = _modes[pin_id]
    if mode == Pin.OUT:
        level = _outs[pin_id]
    elif mode == Pin.OPEN_DRAIN and _outs[pin_id] == 0:
        level = 0
    else:
        level = _exts[pin_id]
        if level is None:
            pull = _pulls[pin_id]
            # A released open-drain line has its pull-up; a floating input reads 0.
            level = 1 if pull == Pin.PULL_UP or (mode == Pin.OPEN_DRAIN and pull != Pin.PULL_DOWN) else 0
    old = _levels[pin_id]
    if old == level:
        return
    _levels[pin_id] = level
    follower = _wires.get(pin_id)
    if follower is not None:
        _exts[follower] = level
        _update(follower)
    model = _chips.get(pin_id)
    if model is not None:
        if level == 0:
            if not model.selected:
                model.selected = True
                model.select()
        elif model.selected:
            model.selected = False
            model.deselect()


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        _ensure(id)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        pid = self.id
        if mode != -1:
            _modes[pid] = mode
        if pull != -1:
            _pulls[pid] = pull
        if value is not None:
            _outs[pid] = 1 if value else 0
        _update(pid)

    def value(self, v=None):
        pid = self.id
        if v is None:
            return _levels[pid]
        _outs[pid] = 1 if v else 0
        _update(pid)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(0 if _outs[self.id] else 1)

    def __repr__(self):
        return f"Pin({self.id}, mode={_modes.get(self.id)}, level={_levels.get(self.id)})"


class SPI:
    MSB = 0
    LSB = 1

    def __init__(
        self, id, baudrate=1000000, polarity=0, phase=0, bits=8, firstbit=0, sck=None, mosi=None, miso=None
    ):
        self.id = id
        self.baudrate = baudrate
        self.polarity = polarity
        self.phase = phase
        self.bits = bits
        self.firstbit = firstbit
        self.inits = 0  # init() calls, for tests
        self._mode = 0
        self._late = 0  # carry of the one-bit-late answer of a mismatched chip
        self._on = False
        self.init(baudrate, polarity=polarity, phase=phase, bits=bits, firstbit=firstbit)
        self.inits = 0

    def init(self, baudrate=None, polarity=None, phase=None, bits=None, firstbit=None,
             sck=None, mosi=None, miso=None):
        # Nine parameters already fill most of a frame: the body stays this simple so the
        # frame fits on the C stack (a bus switching modes calls init on every read).
        if baudrate is not None:
            self.baudrate = baudrate
        if polarity is not None:
            self.polarity = polarity
        if phase is not None:
            self.phase = phase
        if bits is not None:
            self.bits = bits
        if firstbit is not None:
            self.firstbit = firstbit
        self._started()

    def _started(self):
        self._mode = (self.polarity << 1) | self.phase
        self._on = True
        self.inits += 1

    def deinit(self):
        self._on = False

    # _byte and _answer keep to a few locals so that their frames stay off the heap
    # (MicroPython puts a frame of more than 11 words there).

    def _byte(self, out):
        if not self._on:
            raise OSError(5)  # EIO: the bus is off
        while _hang[0]:
            pass
        v = 0xFF
        for i in range(len(_models)):
            if _models[i].selected:
                v &= self._answer(_models[i], out)
        return v

    def _answer(self, m, out):
        out = m.exchange(out)
        if (m.mode_mask >> self._mode) & 1 and self.baudrate <= m.max_hz:
            return out
        m = self._late  # wrong mode or too fast: the answer arrives one bit late
        self._late = out & 1
        return ((m << 7) | (out >> 1)) & 0xFF

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self.readinto(buf, write)
        return bytes(buf)

    def readinto(self, buf, write=0):
        self._late = 1
        for i in range(len(buf)):
            buf[i] = self._byte(write)

    def write(self, buf):
        self._late = 1
        for i in range(len(buf)):
            self._byte(buf[i])

    def write_readinto(self, write_buf, read_buf):
        self._late = 1
        for i in range(len(read_buf)):
            read_buf[i] = self._byte(write_buf[i])


class WDT:
    """Started watchdog: feed() records when. The reset it causes comes with the board."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        _wdt[0] = timeout
        _wdt[1] = time.ticks_ms()

    def feed(self):
        _wdt[1] = time.ticks_ms()
