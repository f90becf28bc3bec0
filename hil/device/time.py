"""The virtual board's clock: replaces the `time` module on the MicroPython Unix port.

Ticks count from the virtual power-on. Sleeping advances the virtual clock by exactly
the time asked; at `speed` 0 ("max") that takes no real time, otherwise the real sleep
is the virtual one divided by speed. The built-in module is `utime`.

Code that runs without sleeping takes no device time, except what the virtual board's
run-time thread adds with run_us() while code runs for long without sleeping (a hang), so
that a watchdog still fires. Those microseconds are kept apart (`_ran`, written only by
that thread) so the two writers never race on one variable.

Hooks (add_hook) are called with now_us() each time the clock advances: the virtual board
drives its chip models, its watchdog and its pacing against real time from them. With no
hook the clock allocates nothing.
"""

import utime

_us = 0  # virtual microseconds slept (and advanced) since power-on
_ran = 0  # virtual microseconds of code that ran without sleeping (run_us)
_speed = 0  # 0: as fast as the firmware runs; otherwise real-time multiple
_TICKS_MASK = 0x3FFFFFFF  # a 32-bit port's tick period (2**30), so wraps are exercised
_hooks = []  # called with now_us() after every advance of the clock


def add_hook(fn):
    """Call fn(now_us) whenever the clock advances (after it has moved)."""
    if fn not in _hooks:
        _hooks.append(fn)


def remove_hook(fn):
    if fn in _hooks:
        _hooks.remove(fn)


def set_speed(speed):
    global _speed
    _speed = speed


def advance_us(us):
    """Advance the virtual clock (used by the virtual board and tests)."""
    global _us
    _us += us
    if _hooks:
        for fn in _hooks:
            fn(_us + _ran)


def run_us(us):
    """Add device time taken by code running without sleeping (no hooks run here: the
    caller is another thread, and the chip models belong to the one running)."""
    global _ran
    _ran += us


def slept_us():
    """The part of the clock moved by sleeps and advance_us: unchanged while code runs."""
    return _us


def now_us():
    """Virtual microseconds since power-on, never wrapped."""
    return _us + _ran


def ticks_us():
    return (_us + _ran) & _TICKS_MASK


def ticks_ms():
    return ((_us + _ran) // 1000) & _TICKS_MASK


def ticks_cpu():
    return ticks_us()


def ticks_add(t, delta):
    return (t + delta) & _TICKS_MASK


def ticks_diff(a, b):
    d = (a - b) & _TICKS_MASK
    return d - (_TICKS_MASK + 1) if d > (_TICKS_MASK >> 1) else d


def sleep_us(us):
    global _us
    if us <= 0:
        return
    _us += us
    if _hooks:
        for fn in _hooks:
            fn(_us + _ran)
    if _speed:
        utime.sleep_us(us // _speed)


def sleep_ms(ms):
    sleep_us(ms * 1000)


def sleep(s):
    sleep_us(int(s * 1000000))


def time():
    return (_us + _ran) // 1000000


def time_ns():
    return (_us + _ran) * 1000


def gmtime(secs=None):
    return utime.gmtime(time() if secs is None else secs)


localtime = gmtime
