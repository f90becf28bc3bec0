"""Fixed-rate cycle timing: deadlines without drift, lateness and overruns measured,
and the device clock (seconds and microseconds since power-on, which never wrap).

Deadlines advance by exactly one period from the previous deadline, not from when the
cycle ran, so the rate does not drift. A cycle that starts a whole period or more late
is an overrun: the missed deadlines are skipped, keeping the phase of the grid.
"""

from time import sleep_us, ticks_add, ticks_diff, ticks_us

import micropython

MS_MASK = 0x3FFFFFFF


class Sampler:
    def __init__(self, period_us):
        self.period = period_us
        now = ticks_us()
        self.deadline = now
        self.last = now
        self.max_late_us = 0
        self.overruns = 0
        # Overrun load: +2 for each overrun, -1 for each cycle on time. It grows while at
        # least one cycle in three overruns, so a sustained overload trips even when
        # overruns alternate with cycles on time (a cycle 1.5 periods long does that).
        self.load = 0
        # Device clock: ticks since power-on at start, then accumulated cycle by cycle.
        self.t_s = now // 1000000
        self.t_us = now - self.t_s * 1000000
        self.ms = (now // 1000) & MS_MASK  # millisecond clock modulo 2**30
        self._ms_rem = self.t_us % 1000

    @micropython.native
    def wait(self):
        """Sleep until the next deadline; return microseconds since the previous cycle."""
        self.deadline = ticks_add(self.deadline, self.period)
        ahead = ticks_diff(self.deadline, ticks_us())
        if ahead > 0:
            sleep_us(ahead)
        now = ticks_us()
        late = ticks_diff(now, self.deadline)
        if late > self.max_late_us:
            self.max_late_us = late
        if late >= self.period:
            self.overruns += 1
            if self.load < 1000:
                self.load += 2
            missed = late // self.period
            if missed > 1000:
                missed = 1000
            self.deadline = ticks_add(self.deadline, missed * self.period)
        elif self.load > 0:
            self.load -= 1
        dt = ticks_diff(now, self.last)
        self.last = now
        self._advance(dt)
        return dt

    @micropython.native
    def _advance(self, dt):
        us = self.t_us + dt
        while us >= 1000000:  # at most a few turns: dt is about one period
            us -= 1000000
            self.t_s += 1
        self.t_us = us
        rem = self._ms_rem + dt
        ms = rem // 1000
        self._ms_rem = rem - ms * 1000
        m = self.ms  # m + ms would pass 2**30 at the wrap (every 12.4 days)
        self.ms = m - MS_MASK - 1 + ms if m > MS_MASK - ms else m + ms
