"""The virtual board as a serial port (`thermoguard virtual`): the real firmware on the
MicroPython Unix port, reached only through its port, by pyserial and by mpremote."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from tgfw import codes
from thermoguard import frames, protocol
from thermoguard.transport import PortError, open_serial

ROOT = Path(__file__).resolve().parents[2]
BODY_C = 37.0
READBACK_PIN = 14  # boards/virtual.py

# foramen (protective, high 45 C, rate 2 C/s) rises past its limits between 2 and 3 s of
# device time, then is back to body temperature from 4 s on.
TRIP_SCENARIO = ("# foramen crosses its limits, then cools", "t_s,foramen", "0,37.0", "2,37.0", "3,50.0", "4,37.0")


def healthy(t: protocol.Telemetry) -> bool:
    return t.config_valid and all(c.temp_c is not None and abs(c.temp_c - BODY_C) < 0.5 for c in t.channels)


def fit(t: protocol.Telemetry) -> bool:
    """Every channel reads, without a fault (on any board, at any temperature)."""
    return t.config_valid and all(c.temp_c is not None and not c.fault for c in t.channels)


def arm(board) -> protocol.Telemetry:
    board.telemetry(lambda t: t.state_name == "DISARMED" and fit(t), what="healthy DISARMED telemetry")
    since = board.mark()
    board.command("ARM")
    assert board.reply("ARM", since=since).ok
    return board.telemetry(lambda t: t.state_name == "ARMED" and t.interlock_on, since=since, what="ARMED")


def interrupt_to_repl(board) -> None:
    since = board.mark()
    board.send(b"\r\x03")
    board.wait_bytes(b"KeyboardInterrupt", since=since)
    board.wait_bytes(b">>> ", since=since)


@pytest.mark.req("SR-HIL-03")
def test_port_path_first_and_telemetry_of_the_real_firmware(virtual_board):
    board = virtual_board()
    assert board.port.startswith("/dev/pts/")
    boot = board.event("BOOT")
    assert "board=virtual" in boot.text and boot.state_name == "DISARMED"
    t = board.telemetry(healthy, what="telemetry at body temperature")
    assert t.state_name == "DISARMED"
    assert not t.interlock_on and t.has_readback and not t.readback_high
    assert [c.fault_word for c in t.channels] == ["", ""]


@pytest.mark.req("SR-HIL-03")
@pytest.mark.parametrize("args, words", [
    (["--scenario", "no-such.csv"], "scenario no-such.csv does not exist"),
    (["--config", "no-such.json"], "configuration no-such.json"),
    (["--speed", "0"], "speed must be above 0"),
])
def test_bad_arguments_are_one_sentence_and_no_port(args, words, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "thermoguard.virtual", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=30)
    assert proc.returncode == 2
    assert proc.stdout == ""  # no port line: nothing to open
    assert words in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.req("SR-HIL-03")
def test_board_never_waits_for_a_client_that_does_not_read(virtual_board):
    board = virtual_board(speed=4)
    before = board.telemetry()
    board.close_port()
    time.sleep(1.5)  # nobody reads: output is dropped, as a UART drops it
    board.open()
    after = board.telemetry(lambda t: t.t_dev_s > before.t_dev_s + 3)
    assert after.seq > before.seq
    assert after.dropped == 0  # the board's own writes never found the port full
    assert after.overruns == 0 and after.max_late_us == 0


@pytest.mark.req("SR-HIL-04")
def test_arm_over_the_port_closes_the_interlock(board):
    since = board.mark()
    t = arm(board)
    assert t.readback_high  # the virtual relay follows the interlock
    board.event("ARM", since=since)


@pytest.mark.req("SR-HIL-05")
def test_scenario_drives_the_chips_by_device_time_and_trips(virtual_board, scenario_file):
    board = virtual_board(scenario=scenario_file(*TRIP_SCENARIO), speed=4)
    arm(board)
    trip = board.event("TRIP", timeout=15)
    assert trip.text.startswith("foramen:")
    assert 2.0 < trip.t_dev_s < 3.2  # the scenario's t_s is the board's device time
    t = board.telemetry(lambda t: t.t_dev_s > 4.5, timeout=15)
    assert t.state_name == "TRIPPED" and not t.interlock_on and not t.readback_high
    assert t.first_cause_text(["tip", "foramen"]).startswith("foramen:")
    assert healthy(t)  # back to body temperature, and the trip holds


@pytest.mark.req("SR-HIL-06")
def test_mpremote_exec_fs_run_and_mount(virtual_board, tmp_path):
    flash = tmp_path / "flash"
    board = virtual_board(board_dir=flash)
    board.telemetry()  # the firmware runs: mpremote has to interrupt it first
    assert board.mpremote("exec", "print(6*7)").stdout.strip() == "42"

    local = tmp_path / "notes.txt"
    local.write_bytes(bytes(range(256)) * 5)  # more than one 256-byte write chunk, every byte value
    board.mpremote("fs", "cp", str(local), ":notes.txt")
    assert (flash / "notes.txt").read_bytes() == local.read_bytes()  # the board folder is its flash
    listing = board.mpremote("fs", "ls").stdout
    for name in ("notes.txt", "boot.py", "main.py", "board.py", "config.json", "tgfw/", "lib/"):
        assert name in listing

    script = tmp_path / "hello.py"
    script.write_text("import machine, os\nprint('cause', machine.reset_cause(), 'cwd', os.getcwd())\n")
    out = board.mpremote("run", str(script)).stdout
    assert out.strip() == "cause 5 cwd /"  # mpremote soft-resets first; the board's root is /

    # mount: the board imports from a folder of the host, through the same serial port.
    host = tmp_path / "host"
    host.mkdir()
    (host / "hostmod.py").write_text("ANSWER = 6 * 7\n")
    out = board.mpremote("mount", str(host), "exec",
                         "import os, hostmod; print(os.getcwd(), os.listdir('.'), hostmod.ANSWER)").stdout
    assert out.strip().splitlines()[-1] == "/remote ['hostmod.py'] 42"
    assert not (flash / "hostmod.py").exists()  # read from the host, not copied to the board


@pytest.mark.req("SR-HIL-07")
def test_ctrl_c_stops_the_firmware_into_the_repl_with_the_interlock_open(board):
    arm(board)
    interrupt_to_repl(board)
    # The board's own pins, as the board file names them (any board).
    pins = "machine.Pin(board.INTERLOCK).value(), machine.Pin(board.READBACK).value()"
    out = board.mpremote("resume", "exec", f"import board, machine; print({pins})")
    assert out.stdout.split() == ["0", "0"]
    if board.control is not None:
        assert board.control.interlock() == 0 and board.control.pin(READBACK_PIN) == 0
    # Raw-paste execution: there Ctrl-C is only a byte to the port; it still interrupts.
    proc = board.mpremote("resume", "exec", "--no-follow", "while True: pass")
    assert proc.returncode == 0
    assert board.mpremote("resume", "exec", "print('back')").stdout.strip() == "back"


@pytest.mark.req("SR-HIL-08")
def test_soft_reset_restarts_the_firmware_and_the_trip_survives(virtual_board, scenario_file):
    board = virtual_board(scenario=scenario_file(*TRIP_SCENARIO), speed=4)
    arm(board)
    board.event("TRIP", timeout=15)
    before = board.telemetry(lambda t: t.t_dev_s > 4.2, timeout=15)  # the scenario is back to 37 C
    interrupt_to_repl(board)
    since = board.mark()
    board.send(b"\x04")  # Ctrl-D at the friendly REPL: soft reset, boot.py and main.py again
    board.wait_bytes(b"MPY: soft reboot\r\n", since=since)
    boot = board.event("BOOT", since=since)
    assert boot.state_name == "TRIPPED" and "state=TRIPPED" in boot.text
    t = board.telemetry(since=since)
    assert t.state_name == "TRIPPED" and not t.interlock_on
    assert t.first_cause_text(["tip", "foramen"]).startswith("foramen:")
    assert t.t_dev_s > before.t_dev_s  # the device clock keeps counting across a soft reset
    assert healthy(t)

    # mpremote's soft reset (in the raw REPL) keeps the board's files.
    board.mpremote("soft-reset")
    out = board.mpremote("exec", "import os, machine; print('trip.json' in os.listdir(), machine.reset_cause())")
    assert out.stdout.split() == ["True", "5"]


@pytest.mark.req("SR-HIL-09")
def test_hard_reset_and_watchdog_restart_the_board_with_their_cause(virtual_board):
    board = virtual_board(speed=4)
    before = board.telemetry(lambda t: t.t_dev_s > 4.0, timeout=20)
    board.mpremote("reset")
    # machine.reset(): the firmware starts again on its own, its device clock from zero. (Its
    # BOOT event can come before the port is open again, and opening drops what waits.)
    t = board.telemetry(lambda t: t.t_dev_s < before.t_dev_s, since=board.open().mark(), timeout=20)
    assert t.state_name == "DISARMED"
    assert board.mpremote("resume", "exec", "import machine; print(machine.reset_cause())").stdout.strip() == "2"

    # A watchdog left unfed in virtual time resets the board; the firmware comes back tripped.
    since = board.mark()
    board.send(b"import machine, time; w = machine.WDT(timeout=300); time.sleep_ms(1000)\r")
    boot = board.event("BOOT", since=since)
    assert boot.state_name == "TRIPPED"
    t = board.telemetry(since=since)
    assert t.first_cause_text() == "watchdog" and not t.interlock_on
    assert board.mpremote("resume", "exec", "import machine; print(machine.reset_cause())").stdout.strip() == "3"


@pytest.mark.req("SR-HIL-10")
@pytest.mark.parametrize("speed, low, paced", [(5, 2.0, True), ("max", 50.0, False)])
def test_speed_is_a_multiple_of_real_time(virtual_board, speed, low, paced):
    board = virtual_board(speed=speed)
    board.telemetry()
    t0 = time.monotonic()
    first = board.telemetry(since=board.flush())  # made after t0: nothing older is read
    time.sleep(1.5)
    last = board.telemetry(since=board.flush())  # made before now
    elapsed = time.monotonic() - t0
    advanced = last.t_dev_s - first.t_dev_s
    assert advanced / elapsed >= low
    if paced:
        # Never ahead of speed x real time. A board held back (a busy machine) may
        # catch up by at most the pacer's slack (vstart.PACE_SLACK_US, 0.25 s), and the
        # first frame may be up to one sample period (0.1 s) old.
        assert advanced <= speed * (elapsed + 0.25) + 0.1, (advanced, elapsed)
    assert board.mpremote("exec", "print(6*7)").stdout.strip() == "42"  # Ctrl-C stops a board at any speed


@pytest.mark.req("SR-HIL-11")
def test_socket_port_serves_the_same_board(virtual_board):
    board = virtual_board(socket=True)
    assert board.port.startswith("socket://127.0.0.1:")
    t = board.telemetry(healthy)
    assert t.state_name == "DISARMED"
    assert board.mpremote("exec", "print(6*7)").stdout.strip() == "42"


@pytest.mark.req("SR-HIL-08")
def test_board_folder_is_flash_a_trip_survives_a_power_cycle(virtual_board, scenario_file, tmp_path):
    flash = tmp_path / "flash"
    board = virtual_board(scenario=scenario_file(*TRIP_SCENARIO), speed=4, board_dir=flash)
    arm(board)
    board.event("TRIP", timeout=15)
    board.stop()  # power off
    assert (flash / "trip.json").exists()
    board = virtual_board(board_dir=flash, speed=4)  # power on, the same flash
    boot = board.event("BOOT")
    assert boot.state_name == "TRIPPED"
    cause = board.mpremote("resume", "exec", "import machine; print(machine.reset_cause())").stdout.strip()
    assert cause == "1"  # machine.PWRON_RESET


@pytest.mark.req("SR-HIL-19", "SR-HIL-05")
def test_a_session_log_is_a_scenario_and_the_board_trips_at_the_same_cycle(virtual_board, scenario_file, tmp_path):
    log = tmp_path / "session.tglog"
    exe = str(Path(sys.executable).with_name("thermoguard"))
    proc = subprocess.run([exe, "sim", str(scenario_file(*TRIP_SCENARIO)), "--out", str(log), "--speed", "max"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fr = frames.load_telemetry(log)
    original = fr.telemetry(int(np.flatnonzero(fr.state == codes.TRIPPED)[0]))
    board = virtual_board(scenario=log, speed=4)  # thermoguard virtual --scenario session.tglog
    arm(board)
    t = board.telemetry(lambda t: t.state == codes.TRIPPED, timeout=15, what="TRIPPED telemetry")
    assert (t.t_s, t.t_us) == (original.t_s, original.t_us)  # the same cycle of device time
    assert t.first_cause_text(fr.names) == original.first_cause_text(fr.names)
    assert t.first_cause_text(fr.names).startswith("foramen:")


# The board's processes and its ptys (docs/virtual-board.md, Processes and ports).


def children(pid: int) -> list[int]:
    """The processes whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            out.append(int(name))
    return out


def board_process(bridge_pid: int, timeout: float = 10) -> int:
    """The MicroPython process a bridge runs."""
    end = time.monotonic() + timeout
    while True:
        for pid in children(bridge_pid):
            try:
                if "micropython" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    return pid
            except OSError:
                continue
        assert time.monotonic() < end, f"no micropython process under {bridge_pid} within {timeout} s"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def wait_gone(pid: int, timeout: float = 5) -> bool:
    end = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def internal_pty(board) -> str:
    """The path of the pty between the bridge and the running MicroPython process."""
    path = os.readlink(f"/proc/{board_process(board.proc.pid)}/fd/0")
    assert path.startswith("/dev/pts/") and path != board.port
    return path


def test_the_board_side_pty_cannot_be_opened_as_a_board(virtual_board):
    """A client reconnecting to an old board's /dev/pts/N, which the system has since given
    to another board's internals, is refused there (as busy) and takes none of its bytes."""
    board = virtual_board(speed=4)
    ctl = board.control
    board.telemetry(healthy)
    for _ in range(2):  # each run of the board has a pty of its own: the first, then one after a power cycle
        inner = internal_pty(board)
        with pytest.raises(serial.SerialException, match="lock"):
            serial.Serial(inner, exclusive=True)  # as thermoguard record and monitor open a port
        with pytest.raises(PortError, match="busy"):
            open_serial(inner)
        # The board runs on, every frame to its client.
        since = board.flush()
        first = board.telemetry(since=since)
        board.telemetry(lambda t, n=first.seq + 5: t.seq >= n, since=since)
        seqs = [t.seq for t in board.items[since[1]:] if isinstance(t, protocol.Telemetry)]
        assert seqs == list(range(seqs[0], seqs[-1] + 1)) and len(seqs) >= 6
        ctl.power(False)
        ctl.power(True)
        board.event("BOOT", since=board.mark())


def test_the_client_pty_takes_one_exclusive_client_at_a_time(virtual_board):
    board = virtual_board(speed=4)
    board.close_port()
    first = open_serial(board.port)  # the bridge's own handle on it holds no lock
    try:
        with pytest.raises(PortError, match="busy"):
            open_serial(board.port)
        got, end = b"", time.monotonic() + 10
        while not got and time.monotonic() < end:  # a busy machine can hold the board back a while
            got = first.read(4096)
        assert got  # the first client reads the board
    finally:
        first.close()
    open_serial(board.port).close()  # free again once the first client has closed it
    assert board.mpremote("exec", "print(6*7)").stdout.strip() == "42"


# The bridge in a process of its own, started as `python -m thermoguard.virtual` does,
# without the kernel's parent-death signal: the board must still end, by its command pipe.
WITHOUT_PDEATHSIG = """
import sys
import thermoguard.virtual as virtual
load = virtual.load_bridge
def load_without_pdeathsig():
    module = load()
    module._die_with_parent = lambda: None
    return module
virtual.load_bridge = load_without_pdeathsig
sys.exit(virtual.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["-m", "-c"], ids=["as-run", "command-pipe-only"])
def test_the_board_process_ends_when_its_bridge_is_killed(tmp_path, how):
    """kill -9 of `thermoguard virtual` leaves no MicroPython process running on its own."""
    start = ["-m", "thermoguard.virtual"] if how == "-m" else ["-c", WITHOUT_PDEATHSIG]
    # Its board folder and control socket in tmp_path: killed, it cannot remove them itself.
    args = [sys.executable, *start, "--speed", "4", "--control", str(tmp_path / "c.sock"),
            "--board-dir", str(tmp_path / "board")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(ROOT))
    micropython = None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        port = proc.stdout.readline().decode().strip() if ready else ""
        assert port.startswith("/dev/pts/")
        micropython = board_process(proc.pid)
        with serial.Serial(port, timeout=0.05) as ser:  # the firmware runs: its telemetry comes
            decoder, end = protocol.Decoder(), time.monotonic() + 10
            while not any(isinstance(i, protocol.Telemetry) for i in decoder.feed(ser.read(4096))):
                assert time.monotonic() < end, "no telemetry within 10 s"
        assert alive(micropython)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_gone(micropython, 5), f"micropython {micropython} still runs after its bridge was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if micropython is not None and alive(micropython):
            os.kill(micropython, signal.SIGKILL)
