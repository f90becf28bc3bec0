"""Shared test fixtures for the firmware tests (MicroPython)."""
import json

from tgfw import config
from tgfw.channels import Channels
from tgfw.settings import Settings

# The configuration of DESIGN.md, kept once in the package's data.
with open("host/thermoguard/data/demo_config.json") as _f:
    EXAMPLE = json.load(_f)
TIP = 0
FORAMEN = 1
PERIOD_US = 100000


def example(**top):
    doc = json.loads(json.dumps(EXAMPLE))
    doc.update(top)
    return doc


def settings(doc=None):
    cfg = config.validate(doc or example())
    return Settings(cfg, config.config_hash(cfg))


def q(c):
    return int(c * 1024 + (0.5 if c >= 0 else -0.5))


class Pin:
    """An output pin that remembers every level it was driven to."""

    def __init__(self, level=1):
        self.level = level
        self.history = []

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.history.append(v)


class Feed:
    """Drives Channels cycle by cycle with given readings: (fault code, celsius)."""

    def __init__(self, s=None):
        self.s = s or settings()
        self.now = 1000
        self.ch = Channels(self.s, self.now)

    def cycle(self, *readings, repeats=0):
        self.now += PERIOD_US // 1000
        for i, (code, c) in enumerate(readings):
            tc = q(c) if c is not None else None
            self.ch.update(i, code, tc, q(25.0), repeats, self.now, PERIOD_US)
        return self.ch


# A monitor on the virtual board, for end-to-end firmware tests.

import os  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402

import utime  # noqa: E402 - the real clock: names unique across test runs

_pairs = [0]
_RUN = "%x" % (utime.ticks_us() & 0xFFFFFFF)
_TMP = os.getenv("TG_TEST_TMP") or "/tmp"  # conftest.py gives each run a folder it removes afterwards


def socket_pair():
    """Two connected AF_UNIX stream sockets (the Unix port has no socketpair())."""
    _pairs[0] += 1
    path = "/tmp/tg-test-%s-%d" % (_RUN, _pairs[0])
    addr = struct.pack("<H", socket.AF_UNIX) + path.encode() + b"\0"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(addr)
        srv.listen(1)
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.connect(addr)
        b, _ = srv.accept()
    finally:
        srv.close()
        os.remove(path)
    return a, b


def cobs_decode(data):
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data) + 0:
            return None
        out += data[i + 1:i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return out


def decode_frames(raw):
    """(kind, payload) of every valid frame in raw device output."""
    import binascii

    found = []
    for chunk in bytes(raw).split(b"\0"):
        if not chunk:
            continue
        p = cobs_decode(chunk)
        if p is None or len(p) < 18:
            continue
        body, crc = p[:-4], p[-4:]
        if binascii.crc32(body) != struct.unpack("<I", crc)[0]:
            continue
        found.append((body[1], body))
    return found


def texts(raw, kind):
    """Texts of the replies (kind 3) or events (kind 2) in raw device output."""
    out = []
    for k, body in decode_frames(raw):
        if k == kind:
            out.append(bytes(body[14 + (2 if kind == 2 else 0):]).decode())
    return out


class Rig:
    """The virtual board with a monitor: chip models on the emulated bus, the host's end
    of the serial link as a socket, files in a temporary folder."""

    def __init__(self, doc=None, folder=None, models=None):
        import json

        import machine
        import virtual as board
        from tgfw.app import Monitor

        self.machine = machine
        if models is None:
            machine.clear_registry()
        self.folder = folder or "%s/tg-rig-%s-%d" % (_TMP, _RUN, _pairs[0])
        _pairs[0] += 1
        try:
            os.mkdir(self.folder)
        except OSError:
            pass
        self.config_path = self.folder + "/config.json"
        self.trip_path = self.folder + "/trip.json"
        if doc is not None:
            with open(self.config_path, "w") as f:
                f.write(json.dumps(doc))
        self.models = models if models is not None else self._models(doc or {})
        self.host, self.device = socket_pair()
        self.host.setblocking(False)
        self.out = bytearray()
        self.monitor = Monitor(board, self.config_path, self.trip_path, self.device, self.device)

    def _models(self, doc):
        from chipmodels.max6675 import MAX6675
        from chipmodels.max31855 import MAX31855
        from chipmodels.max31856 import MAX31856

        kinds = {"max31855": MAX31855, "max31856": MAX31856, "max6675": MAX6675}
        models = {}
        for ch in doc.get("channels", []):
            m = kinds[ch["chip"]](ch.get("tc_type", "K"))
            if hasattr(m, "dither"):
                m.dither = True  # a real chip's last bit flickers; the frozen check relies on it
            m.set_temperature(37.0, 25.0)
            self.machine.attach_chip(ch["cs"], m)
            models[ch["name"]] = m
        return models

    def set(self, name, celsius):
        self.models[name].set_temperature(celsius)

    def cycles(self, n=1):
        for _ in range(n):
            self.monitor.cycle()
        self.drain()

    def drain(self):
        while True:
            try:
                data = self.host.read(4096)
            except OSError:
                return
            if not data:
                return
            self.out += data

    def command(self, verb, args=""):
        from tgfw.link import encode_command

        self.host.write(encode_command(verb, args))
        self.cycles(1)
        replies = texts(self.out, 3)
        return replies[-1] if replies else None

    def interlock(self):
        return self.machine.pin_level(15)

    def state(self):
        return self.monitor.guard.state

    def close(self):
        self.host.close()
        self.device.close()
