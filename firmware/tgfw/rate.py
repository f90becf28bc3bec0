"""Rate of rise over a window, robust to sample noise.

The window holds the last N readings of a channel (N even). The rise is the difference
between the averages of its newer and older halves; their centres are N/2 samples apart,
so rate = (sum_new - sum_old) * sample_hz / (N/2)**2. Averaging N/2 readings on each side
keeps a one-LSB flicker of the chip far below any rate limit. Running sums make each
update O(1) and allocation-free.
"""

from array import array

import micropython


class RateWindow:
    def __init__(self, n_channels, window):
        self.n = window
        self.half = window // 2
        self.buf = array("i", [0] * (n_channels * window))
        self.pos = array("i", [0] * n_channels)
        self.count = array("i", [0] * n_channels)
        self.sum_new = array("i", [0] * n_channels)
        self.sum_old = array("i", [0] * n_channels)

    @micropython.native
    def clear(self, i):
        """Forget channel i's history: after a fault the window refills from fresh data."""
        self.count[i] = 0
        self.pos[i] = 0
        self.sum_new[i] = 0
        self.sum_old[i] = 0

    @micropython.native
    def push(self, i, value):
        """Add a reading; return True once the window is full and the rise is known."""
        base = i * self.n
        pos = self.pos[i]
        count = self.count[i]
        buf = self.buf
        if count == self.n:  # the oldest reading leaves the old half
            self.sum_old[i] -= buf[base + pos]
        if count >= self.half:  # the oldest of the new half moves to the old half
            mid = pos + self.half
            if mid >= self.n:
                mid -= self.n
            v = buf[base + mid]
            self.sum_old[i] += v
            self.sum_new[i] -= v
        self.sum_new[i] += value
        buf[base + pos] = value
        pos += 1
        self.pos[i] = 0 if pos == self.n else pos
        if count < self.n:
            count += 1
            self.count[i] = count
        return count == self.n

    @micropython.native
    def rise(self, i):
        """sum_new - sum_old of a full window (compare with Settings.rate_sum)."""
        return self.sum_new[i] - self.sum_old[i]

    @micropython.native
    def rate_q10(self, i, sample_hz):
        """The rise in Q10 C/s, for display; divided in steps to stay in small ints."""
        return (self.rise(i) // self.half) * sample_hz // self.half
