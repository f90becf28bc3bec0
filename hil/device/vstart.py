"""The virtual board's power-on, inside the MicroPython Unix port: the one virtual board,
served as a serial port by hil/bridge.py (`thermoguard virtual`) or run through a session
over pipes by thermoguard.vboard.ScenarioBoard (`thermoguard sim`, `demo`).

    micropython -X heapsize=4M -i vstart.py          (settings in TG_VB_* variables)

It makes the process look like a board: the board folder becomes `/` (os.VfsPosix), the
emulated machine and time modules in its /lib shadow the built-in ones, chip models hang
on the configured chip selects and follow the scenario (or the closed-loop plant) by
virtual time, and then boot.py and main.py run as a board runs them. When main.py ends or
is interrupted, `-i` gives the REPL. In the session mode boot.py runs, then the firmware's
monitor cycles until the scenario's end (stdin and stdout are the serial port, no REPL).
The settings:

    TG_VB_DIR       the board folder (mounted at /)
    TG_VB_CTL       file descriptor of the pipe to the bridge (-1: none)
    TG_VB_CMD       file descriptor of the pipe from the bridge (-1: none); when it
                    closes, the bridge has died and the process ends
    TG_VB_MODE      "friendly" (run boot.py then main.py), "raw" (boot.py only, as after
                    a soft reset in the raw REPL) or "session" (boot.py, then the monitor
                    until the scenario's end; a reset ends the session)
    TG_VB_CAUSE     what machine.reset_cause() reports (machine.PWRON_RESET ...)
    TG_VB_CLOCK_US  the device clock at start (it keeps counting across a soft reset)
    TG_VB_WORLD_US  scenario time when the device clock reads 0
    TG_VB_SPEED     real-time multiple, 0 for as fast as the firmware runs
    TG_VB_SCENARIO  scenario CSV, or a closed-loop plant (.json) ("": every channel at body
                    temperature)

Messages to the bridge, one line each on the pipe: `READY` (set up: input may flow),
`RESET <HARD|WDT|SOFT> <clock_us> <world_us>` (the board resets: the bridge ends this
process and starts the next), `CLOCK <clock_us> <world_us>` (at exit, for a soft reset),
`A <id> ...` (the answer to a request).

Requests from the bridge (the control channel, docs/virtual-board.md), `Q <id> <verb> ...`
one a line, served by a thread the firmware cannot see, even while it hangs:
`SET <channel> <celsius|-> <fault|->` (an override of the scenario, applied by the clock's
hook at the next advance; answered with the clock when asked), `CLEAR <channel|*>`,
`PINS` (every pin's level), `CLOCK` (device and scenario time, reset cause), `HANG` (the
firmware's next SPI transfer never returns). The overrides in force when a run starts
are in the pipe before it starts, and are applied before boot.py.

The same thread moves the clock while code runs without sleeping (a hang): after
RUN_GRACE_MS of the main thread's CPU time without a sleep, each further millisecond of
it is `speed` device milliseconds (RUN_MAX_SPEED at max), and the watchdog is checked.
"""

import _thread
import os
import select
import sys

PACE_SLACK_US = 250000  # further behind real time than this: stop catching up, start again
HOST_WAIT_MS = 200  # session mode: longest real wait for a late heartbeat in one cycle
TICK_MS = 20  # the control thread's period (real time)
RUN_GRACE_MS = 50  # CPU time without a sleep that is still one cycle's work (no device time)
RUN_MAX_SPEED = 100  # at max, device time per CPU time of code that runs without sleeping


def _env(name, default=""):
    value = os.getenv(name)
    return default if value is None else value


def _open_fd(name, mode):
    fd = int(_env(name, "-1"))
    return open("/dev/fd/%d" % fd, mode) if fd >= 0 else None


class _Board:
    """Everything the hooks need, kept off the REPL's globals."""

    def __init__(self):
        self.ctl = None
        self.cmd = None  # requests from the bridge
        self.cpu = None  # /proc/thread-self/stat of the main thread
        self.world0 = 0
        self.world = None  # a vchips.Follower: scenario and overrides on the chip models
        self.plant = None  # a closed-loop plant.Plant (also the world's source)
        self.plant_us = 0  # when the plant was last stepped
        self.interlock = None  # the board file's interlock pin (RF is on while it is high)
        self.end_s = 0.0  # the scenario's (or plant's) end
        self.pending = []  # overrides from the control thread, for the clock's hook
        self.last_update = -1
        self.speed = 0.0
        self.ref_real = 0
        self.ref_virtual = 0
        self.resetting = False
        self.main_thread = _thread.get_ident()
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
        """The board resets here: nothing after this runs (the bridge ends the process).
        Without a bridge (the session mode) the session ends here instead."""
        self.resetting = True
        if self.ctl is None:
            sys.stderr.write("virtual board: %s reset; a session ends at a reset\n" % kind)
            if _thread.get_ident() != self.main_thread:
                os.system("kill -KILL $PPID")  # the main thread hangs: only the process can end
            sys.exit(3)
        self.send("RESET %s %s" % (kind, self.clocks()))
        while True:
            try:
                self.utime.sleep_ms(1000)
            except KeyboardInterrupt:  # noqa: PERF203 - a reset does not stop for Ctrl-C
                pass

    def at_exit(self):
        if not self.resetting:
            self.send("CLOCK " + self.clocks())

    def watchdog(self):
        time = self.time
        timeout, fed = self.machine.wdt_state()
        if timeout is not None and time.ticks_diff(time.ticks_ms(), fed) > timeout:
            self.reset("WDT")

    def hook(self, now):
        """Runs whenever the virtual clock advances: watchdog, chip models, pacing."""
        if self.resetting:
            return
        self.watchdog()
        world = self.world
        if world is not None:
            pending = self.pending
            while pending:
                self.apply(pending.pop(0))
                self.last_update = -1
            if now != self.last_update:
                self.last_update = now
                if self.plant is not None:  # the tissue heats while the interlock permits RF
                    rf_on = self.machine.pin_level(self.interlock) == 1
                    self.plant.step((now - self.plant_us) / 1000000, rf_on)
                    self.plant_us = now
                world.follow((self.world0 + now) / 1000000)
        if self.speed:
            self.pace(now)

    def apply(self, words):
        """A request of the control channel (SET / CLEAR / READBACK words), on the models
        and pins."""
        if words[0] == "READBACK":  # the relay contact stuck (0 open, 1 welded) or sound again (-)
            import board as board_file

            machine = self.machine
            if words[1] == "-":
                machine.wire(board_file.INTERLOCK, board_file.READBACK)
            elif words[1] in ("0", "1"):  # the bridge checks; this runs in the firmware's clock hook
                machine.unwire(board_file.INTERLOCK)
                machine.set_input(board_file.READBACK, int(words[1]))
        elif words[0] == "SET":
            celsius = None if words[2] == "-" else float(words[2])
            self.world.override(words[1], celsius, None if words[3] == "-" else words[3])
        else:
            self.world.clear(None if words[1] == "*" else words[1])

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

    # The control thread

    def request(self, line):
        """One request line from the bridge: `Q <id> <verb> ...`."""
        words = line.split()
        if len(words) < 3 or words[0] != "Q":
            return
        rid, verb, args = words[1], words[2], words[3:]
        if verb in ("SET", "CLEAR", "READBACK"):
            self.pending.append([verb] + args)
            self.send("A %s %d" % (rid, self.time.now_us()))
        elif verb == "PINS":
            levels = self.machine._levels
            try:
                pins = ["%d=%d" % (k, levels[k]) for k in list(levels)]
            except (KeyError, RuntimeError):  # a pin set up just now: ask again
                pins = []
            self.send("A %s %s" % (rid, " ".join(pins)))
        elif verb == "CLOCK":
            self.send("A %s %s %d" % (rid, self.clocks(), self.machine.reset_cause()))
        elif verb == "HANG":
            self.machine.hang()
            self.send("A %s %d" % (rid, self.time.now_us()))

    def read_requests(self, poller, timeout_ms):
        for _ in poller.poll(timeout_ms):
            line = self.cmd.readline()
            if not line:  # the bridge has gone: the board has lost its power
                poller.unregister(self.cmd)
                self.cmd = None
                self.power_lost()
                return
            self.request(line.decode())

    def power_lost(self):
        """The bridge holds the command pipe open as long as it serves this board, so its
        end means the bridge died (a board is never left running without it: nothing would
        read its port, and it would hold its folder). The process ends here, from any
        thread, even while the main thread hangs."""
        self.resetting = True
        os.system("kill -KILL $PPID")  # the shell's parent: this process

    def cpu_ms(self):
        """CPU time of the main thread so far (ms), or real time where /proc is missing."""
        if self.cpu is None:
            return self.utime.ticks_ms()
        self.cpu.seek(0)
        stat = self.cpu.read()
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) * 10  # utime + stime, in 10 ms ticks

    def run(self):
        """The control thread: requests from the bridge, and the clock of a hang."""
        time, utime = self.time, self.utime
        poller = select.poll()
        if self.cmd is not None:
            poller.register(self.cmd, select.POLLIN)
        factor = self.speed or RUN_MAX_SPEED
        last_slept, last_cpu, streak = time.slept_us(), self.cpu_ms(), 0
        while True:
            if self.cmd is not None:
                self.read_requests(poller, TICK_MS)
            else:
                utime.sleep_ms(TICK_MS)
            if self.resetting:
                continue
            cpu = self.cpu_ms()
            used = utime.ticks_diff(cpu, last_cpu) if self.cpu is None else cpu - last_cpu
            last_cpu = cpu
            slept = time.slept_us()
            if slept != last_slept:
                last_slept, streak = slept, 0
                continue
            streak += used
            if streak > RUN_GRACE_MS and used > 0:
                time.run_us(int(min(used, streak - RUN_GRACE_MS) * 1000 * factor))
                self.watchdog()


def _power_on(board):
    board_dir = _env("TG_VB_DIR")
    board.ctl = _open_fd("TG_VB_CTL", "wb")  # before the mount hides /dev
    board.cmd = _open_fd("TG_VB_CMD", "rb")
    try:
        board.cpu = open("/proc/thread-self/stat")  # opened by the main thread: its own times
    except OSError:
        board.cpu = None
    scenario_text = None
    path = _env("TG_VB_SCENARIO")
    if path:
        with open(path) as f:  # before the mount: the file is the host's
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
    source = None
    if scenario_text is not None and path.endswith(".json"):
        import board as board_file
        import plant

        source = board.plant = plant.parse(scenario_text)
        board.interlock = board_file.INTERLOCK
        board.plant_us = time.now_us()
    elif scenario_text is not None:
        import scenario

        source = scenario.parse(scenario_text)
    board.end_s = source.end_s if source is not None else 0.0
    board.world = vchips.Follower(models, source)
    if board.cmd is not None:  # the overrides in force: on the chips before boot.py
        poller = select.poll()
        poller.register(board.cmd, select.POLLIN)
        while board.cmd is not None and poller.poll(0):
            board.read_requests(poller, 0)
        while board.pending:
            board.apply(board.pending.pop(0))
    board.world.follow(board.world0 / 1000000 + time.now_us() / 1000000)
    time.add_hook(board.hook)
    sys.atexit(board.at_exit)
    _thread.start_new_thread(board.run, ())


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


def _session(board):
    """The session mode: the firmware's monitor cycles until the scenario's end, with
    stdin and stdout as its serial port; then the interlock opens and the process ends."""
    import time

    import board as board_file
    from tgfw.app import Monitor
    from tgfw.channels import elapsed_ms

    monitor = Monitor(board_file, "config.json", "trip.json")
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    end_us = int(board.end_s * 1000000) + monitor.sampler.period
    speed = board.speed
    while time.now_us() < end_us:
        s = monitor.settings
        if speed != 1 and s is not None:
            # Faster than real time the host falls behind the board's clock through no
            # fault of its own: its ARM would come late, its heartbeats would time out. So
            # once the host's last line is a device second old (or half the host timeout,
            # if shorter), wait for its next one, in real time with the virtual clock
            # stopped. A host silent for longer than the wait still times out.
            limit = 1000 if not s.host_timeout_ms else min(1000, s.host_timeout_ms // 2)
            if elapsed_ms(monitor.sampler.ms, monitor.last_hb) >= limit:
                poller.poll(HOST_WAIT_MS)
        monitor.cycle()
    monitor.guard.open_interlock()


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
    _mode = _env("TG_VB_MODE", "friendly")
    if _ok and _run("boot.py", globals()):
        if _mode == "friendly":
            _run("main.py", globals())
        elif _mode == "session":
            _session(_BOARD)
except KeyboardInterrupt:
    pass
