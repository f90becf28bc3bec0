"""The virtual board's power-on, inside the MicroPython Unix port (started by hil/bridge.py).

    micropython -X heapsize=4M -i vstart.py          (settings in TG_VB_* variables)

It makes the process look like a board: the board folder becomes `/` (os.VfsPosix), the
emulated machine and time modules in its /lib shadow the built-in ones, chip models hang
on the configured chip selects and follow the scenario by virtual time, and then boot.py
and main.py run as a board runs them. When main.py ends or is interrupted, `-i` gives the
REPL. The settings, all set by the bridge:

    TG_VB_DIR       the board folder (mounted at /)
    TG_VB_CTL       file descriptor of the pipe to the bridge (-1: none)
    TG_VB_MODE      "friendly" (run boot.py then main.py) or "raw" (boot.py only, as after
                    a soft reset in the raw REPL)
    TG_VB_CAUSE     what machine.reset_cause() reports (machine.PWRON_RESET ...)
    TG_VB_CLOCK_US  the device clock at start (it keeps counting across a soft reset)
    TG_VB_WORLD_US  scenario time when the device clock reads 0
    TG_VB_SPEED     real-time multiple, 0 for as fast as the firmware runs
    TG_VB_SCENARIO  scenario CSV ("" : every channel at body temperature)

Messages to the bridge, one line each on the pipe: `READY` (set up: input may flow),
`RESET <HARD|WDT|SOFT> <clock_us> <world_us>` (the board resets: the bridge ends this
process and starts the next), `CLOCK <clock_us> <world_us>` (at exit, for a soft reset).
"""

import os
import sys

PACE_SLACK_US = 250000  # further behind real time than this: stop catching up, start again


def _env(name, default=""):
    value = os.getenv(name)
    return default if value is None else value


class _Board:
    """Everything the hooks need, kept off the REPL's globals."""

    def __init__(self):
        self.ctl = None
        self.world0 = 0
        self.scenario = None  # a vchips.Follower when the board follows a scenario
        self.last_update = -1
        self.speed = 0.0
        self.ref_real = 0
        self.ref_virtual = 0
        self.resetting = False
        self.machine = self.time = self.utime = None  # the board's modules, once mounted

    def send(self, line):
        if self.ctl is not None:
            try:
                self.ctl.write((line + "\n").encode())
            except OSError:
                pass

    def clocks(self):
        now = self.time.now_us()
        return "%d %d" % (now, self.world0 + now)

    def reset(self, kind):
        """The board resets here: nothing after this runs (the bridge ends the process)."""
        self.resetting = True
        if self.ctl is None:
            raise SystemExit(kind)
        self.send("RESET %s %s" % (kind, self.clocks()))
        while True:
            try:
                self.utime.sleep_ms(1000)
            except KeyboardInterrupt:  # noqa: PERF203 - a reset does not stop for Ctrl-C
                pass

    def at_exit(self):
        if not self.resetting:
            self.send("CLOCK " + self.clocks())

    def hook(self, now):
        """Runs whenever the virtual clock advances: watchdog, chip models, pacing."""
        if self.resetting:
            return
        time = self.time
        timeout, fed = self.machine.wdt_state()
        if timeout is not None and time.ticks_diff(time.ticks_ms(), fed) > timeout:
            self.reset("WDT")
        if self.scenario is not None and now != self.last_update:
            self.last_update = now
            self.scenario.follow((self.world0 + now) / 1000000)
        if self.speed:
            self.pace(now)

    def pace(self, now):
        """Hold the virtual clock to speed x real time (it never runs ahead of it)."""
        utime = self.utime
        real = utime.ticks_us()
        ahead = int((now - self.ref_virtual) / self.speed) - utime.ticks_diff(real, self.ref_real)
        if ahead > 0:
            utime.sleep_us(ahead)
        if ahead < -PACE_SLACK_US or now - self.ref_virtual > 60000000:
            # Idle at the REPL, or a host too slow: do not rush to catch up. Rebasing once a
            # virtual minute also keeps the real ticks far from their wrap.
            self.ref_real = utime.ticks_us()
            self.ref_virtual = now


def _power_on(board):
    board_dir = _env("TG_VB_DIR")
    ctl_fd = int(_env("TG_VB_CTL", "-1"))
    if ctl_fd >= 0:
        board.ctl = open("/dev/fd/%d" % ctl_fd, "wb")  # before the mount hides /dev
    scenario_text = None
    path = _env("TG_VB_SCENARIO")
    if path:
        with open(path) as f:
            scenario_text = f.read()

    if board_dir:
        os.umount("/")
        os.mount(os.VfsPosix(board_dir), "/")
        os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    for name in ("time", "machine"):
        sys.modules.pop(name, None)

    import time

    import machine
    import utime

    board.machine, board.time, board.utime = machine, time, utime
    time.advance_us(int(_env("TG_VB_CLOCK_US", "0")))
    board.world0 = int(_env("TG_VB_WORLD_US", "0"))
    machine.set_reset_cause(int(_env("TG_VB_CAUSE", str(machine.PWRON_RESET))))
    machine.reset = lambda: board.reset("HARD")
    machine.soft_reset = lambda: board.reset("SOFT")
    board.speed = float(_env("TG_VB_SPEED", "1"))
    board.ref_real = utime.ticks_us()
    board.ref_virtual = time.now_us()
    import vchips

    models = vchips.attach("config.json")
    if scenario_text is not None:
        import scenario

        board.scenario = vchips.Follower(models, scenario.parse(scenario_text))
        board.scenario.follow(board.world0 / 1000000 + time.now_us() / 1000000)
    time.add_hook(board.hook)
    sys.atexit(board.at_exit)


def _run(name, scope):
    """Run a file as a board does (pyexec_file): True if it ran to its end."""
    try:
        os.stat(name)
    except OSError:
        return True
    try:
        execfile(name, scope)  # noqa: F821 - MicroPython's built-in
        return True
    except SystemExit:
        _BOARD.reset("SOFT")  # sys.exit() in boot.py or main.py: a soft reset
    except BaseException as e:  # noqa: BLE001 - a board prints it and goes on to the REPL
        sys.print_exception(e)
    return False


_BOARD = _Board()
try:
    _power_on(_BOARD)
    _ok = True
except Exception as e:  # noqa: BLE001 - a broken virtual board still shows why, and its REPL works
    sys.print_exception(e)
    _ok = False
_BOARD.send("READY")
try:
    # As a board does: boot.py always; main.py only in the friendly REPL's mode and only
    # when boot.py completed. Both run in the REPL's globals, so names they leave are seen.
    if _ok and _run("boot.py", globals()) and _env("TG_VB_MODE", "friendly") == "friendly":
        _run("main.py", globals())
except KeyboardInterrupt:
    pass
