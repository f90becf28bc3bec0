"""The monitor: wires the board, the drivers, the checks, the guard and the link into
the fixed-rate safety cycle.

One cycle, in this order:
  1. wait for the deadline (sampler)
  2. compare the interlock readback with what the last cycle commanded
  3. read every chip, check every channel (channels.Channels)
  4. trip or hold the interlock (guard.Guard); a trip opens it here, first
  5. take the host's commands (bounded, non-blocking)
  6. send telemetry (non-blocking; dropped and counted when the host does not read)
  7. persist a new trip and send events (only when something happened)
  8. feed the watchdog, only if the cycle completed without an exception
Steps 1 to 6 allocate nothing in steady state (tests/firmware/test_allocation.py).
"""

import sys
from array import array

import micropython

from tgfw import VERSION, codes, config, persist
from tgfw.channels import Channels, elapsed_ms
from tgfw.chips import MAX6675, MAX31855, MAX31856
from tgfw.codes import ARMED, FL_CONFIG_VALID, FL_HAS_READBACK, FL_HOST_OK, FL_INTERLOCK_ON, FL_READBACK_HIGH
from tgfw.guard import Guard, restore_dose
from tgfw.link import (
    CMD_BAD,
    CMD_LINE,
    CMD_NONE,
    EV_ARM,
    EV_BOOT,
    EV_CONFIG,
    EV_DISARM,
    EV_REFUSED,
    EV_RESET,
    EV_TRIP,
    CommandReader,
    Sender,
    Telemetry,
    encode_event,
    encode_reply,
    next_seq,
)
from tgfw.sampler import Sampler
from tgfw.settings import Settings

REPLY_CHUNK = 180  # characters of configuration per GET reply frame


def make_driver(bus, board, ch):
    """The driver of a channel's chip, on its chip select (modules load only when used)."""
    taken = getattr(board, "RESERVED", {}).get(ch["cs"])
    if taken:  # a chip select on the interlock pin would select that chip whenever RF is off
        raise ValueError("%s.cs: pin %d is the board's %s" % (ch["name"], ch["cs"], taken))
    chip = ch["chip"]
    if chip not in (MAX31855, MAX31856, MAX6675):
        raise ValueError("unknown chip " + chip)
    module = __import__("tgfw.drivers." + chip, None, None, ["Driver"])
    return module.Driver(bus, board.cs(ch["cs"]), ch["tc_type"], ch.get("averaging", 1), ch.get("filter_hz", 60))


class Monitor:
    def __init__(self, board, config_path="config.json", trip_path="trip.json", stream_in=None, stream_out=None):
        # The interlock first: low from the first instruction of the monitor on.
        self.guard = Guard(0, board.interlock())
        self.board = board
        self.readback = board.readback()
        self.config_path = config_path
        self.trip_path = trip_path
        self.seq = 0
        self.unsaved_trip = False
        self.events = []  # (event, text) waiting to be sent after the cycle
        self.exception = None
        self.out = stream_out if stream_out is not None else sys.stdout.buffer
        self.sender = Sender(self.out)
        self.reader = CommandReader(stream_in if stream_in is not None else sys.stdin.buffer)
        self.config_error = ""
        cfg = None
        try:
            cfg = config.load(config_path)
        except config.ConfigError as e:
            self.config_error = str(e)
        try:
            self._apply(cfg)
        except Exception as e:  # e.g. a chip select this board has no pin for
            self.config_error = "the board cannot use the configuration: %s" % e
            self._apply(None)
        self.sampler = Sampler(self.settings.period_us if self.settings else 100000)
        self.last_hb = self.sampler.ms
        self._restore_trip(board)
        self.guard.ready()
        self.wdt = board.watchdog(max(2000, 5 * (self.sampler.period // 1000)))
        self._event(EV_BOOT, self.info())

    # Configuration

    def _apply(self, cfg):
        """Build everything that depends on the configuration (None: no valid one)."""
        from tgfw.bus import Bus

        self.cfg = cfg
        if cfg is None:
            self.settings = None
            self.names = []
            self.drivers = []
            self.config_fault = array("i")
            self.channels = None
            n = 0
            chash = 0
        else:
            chash = config.config_hash(cfg)
            self.settings = Settings(cfg, chash)
            self.names = self.settings.names
            bus = Bus(self.board.spi())
            self.drivers = [make_driver(bus, self.board, ch) for ch in cfg["channels"]]
            n = self.settings.n
            # A chip that fails its configuration gives that fault instead of readings
            # until a later attempt (once a second, after the cycle) succeeds.
            self.config_fault = array("i", [d.configure() for d in self.drivers])
        old = self.guard
        self.guard = Guard(n, old.interlock)
        self.guard.state = old.state
        self.telemetry = Telemetry(n, chash)
        self.dose_lo16 = array("i", [0] * n)
        now = self.sampler.ms if hasattr(self, "sampler") else 0
        self.channels = Channels(self.settings, now) if cfg is not None else None

    def _restore_trip(self, board):
        try:
            record = persist.load(self.trip_path)
        except (ValueError, OSError):
            record = {}  # a damaged record still means the board was tripped
        if record is not persist.MISSING:
            self.guard.restore(record if type(record) is dict else {}, self.names)
            if self.channels is not None:
                restore_dose(record, self.names, self.channels.dose)
        if board.reset_cause() == board.WDT_RESET:
            self.guard.fail(codes.G_WATCHDOG)

    # The safety cycle

    def run(self):
        """Cycle until interrupted; the interlock is open whenever this returns or raises."""
        try:
            while True:
                self.cycle()
        finally:
            self.guard.open_interlock()
            if self.unsaved_trip or self.guard.tripped_now:
                self.save_trip()  # an interrupt between the trip and its record

    @micropython.native
    def cycle(self):
        dt = self.sampler.wait()
        healthy = True
        try:
            self.step(self.sampler.ms, dt)
        except Exception as e:  # an exception in the cycle trips; KeyboardInterrupt goes on up
            self._failed(e)
            healthy = False
        try:
            self.after()
        except Exception as e:  # the trip is latched; its record is tried again next cycle
            self._failed(e)
            healthy = False
        if healthy and self.wdt is not None:
            self.wdt.feed()

    def _failed(self, e):
        self.guard.fail(codes.G_EXCEPTION)
        self.exception = e
        sys.print_exception(e)

    @micropython.native
    def step(self, now, dt):
        guard = self.guard
        rb_bad = self.readback is not None and self.readback.value() != guard.commanded
        ch = self.channels
        s = self.settings
        g = 0
        if ch is None or s is None:
            g = codes.G_CONFIG
        else:
            drivers = self.drivers
            bad = self.config_fault
            for i in range(s.n):
                d = drivers[i]
                code = bad[i] or d.read()
                ch.update(i, code, d.tc if code == 0 else None, d.cj, d.repeats, now, dt)
            if self.sampler.load >= 2 * s.max_overruns:
                g |= codes.G_OVERRUN
            if guard.state == ARMED and s.host_timeout_ms and elapsed_ms(now, self.last_hb) > s.host_timeout_ms:
                g |= codes.G_HOST
        if rb_bad:
            g |= codes.G_READBACK
        guard.evaluate(ch if ch is not None else _NO_CHANNELS, g)
        self.commands(now)
        self.send_telemetry(now)

    @micropython.native
    def send_telemetry(self, now):
        ch = self.channels
        guard = self.guard
        if ch is not None:
            lo = ch.dose.lo
            lo16 = self.dose_lo16
            for i in range(ch.n):
                lo16[i] = lo[i] >> 4
        flags = FL_INTERLOCK_ON if guard.commanded else 0
        if self.readback is not None:
            flags |= FL_HAS_READBACK | (FL_READBACK_HIGH if self.readback.value() else 0)
        if self.settings is not None:
            flags |= FL_CONFIG_VALID
            if self.settings.host_timeout_ms == 0 or elapsed_ms(now, self.last_hb) <= self.settings.host_timeout_ms:
                flags |= FL_HOST_OK
        sm = self.sampler
        src = ch if ch is not None else _NO_CHANNELS
        frame = self.telemetry.encode(
            self._next_seq(), sm.t_s, sm.t_us, guard.state, flags, guard.global_trip,
            guard.first_channel, guard.first_cause, guard.first_fault,
            sm.max_late_us, sm.overruns, self.sender.dropped,
            src.temp, src.cj, src.fault, src.warn, guard.trip, src.rate, src.dose.hi, self.dose_lo16,
        )
        self.sender.send(frame)

    @micropython.native
    def _next_seq(self):
        seq = self.seq
        self.seq = next_seq(seq)
        return seq

    @micropython.native
    def after(self):
        """Work done only when something happened: persist a trip, send events."""
        guard = self.guard
        bad = self.config_fault
        for i in range(len(bad)):
            if bad[i] and self.sampler.t_us < self.sampler.period:  # about once a second
                bad[i] = self.drivers[i].configure()
        if guard.tripped_now:
            guard.tripped_now = False
            self.unsaved_trip = True
            self._event(EV_TRIP, ",".join(guard.causes(self.names)))
        if self.unsaved_trip:  # tried every cycle until it is in flash
            self.save_trip()
        while self.events:
            event, text = self.events.pop(0)
            sm = self.sampler
            self.sender.send(encode_event(self._next_seq(), sm.t_s, sm.t_us, event, guard.state, text))

    def save_trip(self):
        """Write the trip record; False (and tried again next cycle) when flash refuses."""
        dose = self.channels.dose if self.channels is not None else None
        try:
            persist.save(self.trip_path, self.guard.record(self.names, dose))
        except OSError as e:
            print("thermoguard: cannot store the trip record:", e)
            return False
        self.unsaved_trip = False
        return True

    def _event(self, event, text):
        self.events.append((event, text))

    def _reply(self, text):
        sm = self.sampler
        self.sender.send(encode_reply(self._next_seq(), sm.t_s, sm.t_us, text))

    # Commands from the host

    @micropython.native
    def commands(self, now):
        reader = self.reader
        while True:
            kind = reader.poll()
            if kind == CMD_NONE:
                return
            if kind == CMD_BAD:  # a garbled line is no proof that the host is there
                self._reply("ERR %s %s" % (reader.verb or "?", reader.error))
                continue
            self.last_hb = now  # a heartbeat or any valid command
            if kind == CMD_LINE:
                self._command(reader.verb, reader.args)

    def _command(self, verb, args):
        guard = self.guard
        names = self.names
        if verb == "INFO":
            self._reply("OK INFO " + self.info())
        elif verb == "ARM":
            why = guard.arm(self.channels, self.cfg is not None, names)
            self._answer(verb, why, EV_ARM, args)  # an optional reason, kept in the event
        elif verb == "DISARM":
            was = guard.state
            why = guard.disarm()
            self._answer(verb, why, EV_DISARM if was == ARMED else None, args)
        elif verb == "RESET":
            why = guard.reset(self.channels, names, args)
            if why is None:
                persist.clear(self.trip_path)
            self._answer(verb, why, EV_RESET, args)
        elif verb == "TRIP":
            guard.fail(codes.G_OPERATOR)
            self._reply("OK TRIP")
        elif verb == "GET":
            self._get(args.strip())
        elif verb == "SET":
            self._set(args.split())
        else:
            self._reply("ERR %s unknown command" % verb)

    def _answer(self, verb, why, event, text):
        if why is None:
            self._reply("OK " + verb)
            if event is not None:
                self._event(event, text)
        else:
            self._reply("ERR %s %s" % (verb, "; ".join(why)))
            self._event(EV_REFUSED, verb + ": " + "; ".join(why))

    def info(self):
        chash = "%08x" % config.config_hash(self.cfg) if self.cfg is not None else "none"
        text = "fw=%s board=%s config=%s state=%s" % (
            VERSION, self.board.NAME, chash, codes.STATE_NAMES[self.guard.state])
        if self.config_error:
            text += " error=" + self.config_error
        return text

    def _get(self, key):
        if self.cfg is None:
            self._reply("ERR GET no valid configuration: " + self.config_error)
            return
        if not key:
            text = config.canonical(self.cfg)
            parts = [text[i:i + REPLY_CHUNK] for i in range(0, len(text), REPLY_CHUNK)]
            for k, part in enumerate(parts):
                self._reply("OK GET %d/%d %s" % (k + 1, len(parts), part))
            return
        name, dot, sub = key.partition(".")
        if not dot:
            value = self.cfg.get(name)
        else:
            value = None
            for ch in self.cfg["channels"]:
                if ch["name"] == name:
                    value = ch.get(sub)
        if value is None:
            self._reply("ERR GET %s: unknown key" % key)
        else:
            self._reply("OK GET %s=%s" % (key, config.canonical(value)))

    def _set(self, assignments):
        if self.cfg is None:
            self._reply("ERR SET no valid configuration to change: " + self.config_error)
            return
        if not assignments:
            self._reply("ERR SET nothing to set: give KEY=VALUE")
            return
        try:
            new = config.apply_set(self.cfg, assignments)
        except config.ConfigError as e:
            self._reply("ERR SET " + str(e))
            return
        # The host can only make things safer (DESIGN.md principle 1): by command a
        # configuration may only tighten, in every state; anything else is flashed.
        loose = config.loosenings(self.cfg, new)
        if loose:
            self._reply("ERR SET only tightening by command (flash a configuration for the rest): %s"
                        % ", ".join(loose))
            return
        try:
            persist.save(self.config_path, new)
        except OSError as e:
            self._reply("ERR SET cannot store the configuration: %s" % e)
            return
        self._tighten(new)
        self._reply("OK SET " + " ".join(assignments))
        self._event(EV_CONFIG, " ".join(assignments))

    def _tighten(self, new):
        """Swap in tighter limits: same channels, same readings, doses and latches."""
        self.cfg = new
        chash = config.config_hash(new)
        self.settings = Settings(new, chash)
        if self.channels is not None:
            self.channels.s = self.settings
        self.telemetry = Telemetry(self.settings.n, chash)


class _NoDose:
    hi = array("i")


class _NoChannels:
    """Stands in for Channels when there is no valid configuration."""

    n = 0
    temp = cj = fault = warn = rate = active = array("i")
    dose = _NoDose()

    def any_active(self):
        return False


_NO_CHANNELS = _NoChannels()


def main():
    """Entry point of main.py on the board: the board file is /board.py."""
    import board

    Monitor(board).run()
