"""The virtual board's clock: replaces the `time` module on the MicroPython Unix port.

Ticks count from the virtual power-on. Sleeping advances the virtual clock by exactly
the time asked; at `speed` 0 ("max") that takes no real time, otherwise the real sleep
is the virtual one divided by speed. The built-in module is `utime`.

Hooks (add_hook) are called with now_us() each time the clock advances: the virtual board
drives its chip models, its watchdog and its pacing against real time from them. With no
hook the clock allocates nothing.
"""

import utime

_us = 0  # virtual microseconds since power-on
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
            fn(_us)


def now_us():
    """Virtual microseconds since power-on, never wrapped."""
    return _us


def ticks_us():
    return _us & _TICKS_MASK


def ticks_ms():
    return (_us // 1000) & _TICKS_MASK


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
            fn(_us)
    if _speed:
        utime.sleep_us(us // _speed)


def sleep_ms(ms):
    sleep_us(ms * 1000)


def sleep(s):
    sleep_us(int(s * 1000000))


def time():
    return _us // 1000000


def time_ns():
    return _us * 1000


def gmtime(secs=None):
    return utime.gmtime(time() if secs is None else secs)


localtime = gmtime
