"""One SPI bus shared by chips that want different SPI modes.

A transaction is chip select low, the transfers, chip select high. The bus re-initialises
the SPI only when a transaction needs another (baudrate, polarity, phase) than the last
one, so chips of one mode on a bus cost no re-initialisation. Exceptions from the SPI
reach the caller (a driver turns them into F_ABSENT); chip select is released anyway.

Methods keep to a few locals (a transaction's parts wait in attributes): MicroPython puts
a frame of more than 11 words (locals, stack, and about 7 for a try) on the heap, and a
read must not allocate.
"""


class Bus:
    def __init__(self, spi):
        self.spi = spi
        self._mode = None  # (baudrate, polarity, phase) last given to spi.init; None: unknown
        self.inits = 0  # re-initialisations so far, for tests and diagnostics
        self._cs = None  # the transaction under way: chip select, bytes out, buffer in
        self._out = None
        self._in = None

    def read(self, cs, mode, cmd, buf):
        """One transaction: write cmd (bytes, or None for none), then read into buf."""
        if mode != self._mode:
            self._switch(mode)
        self._cs = cs
        self._out = cmd
        self._in = buf
        self._transact()

    def write(self, cs, mode, buf):
        """One transaction writing buf."""
        if mode != self._mode:
            self._switch(mode)
        self._cs = cs
        self._out = buf
        self._in = None
        self._transact()

    def _switch(self, mode):
        self._mode = None  # unknown until init returns
        self.spi.init(baudrate=mode[0], polarity=mode[1], phase=mode[2])
        self._mode = mode
        self.inits += 1

    def _transact(self):
        cs = self._cs
        cs.value(0)  # type: ignore[union-attr]
        try:
            self._transfer()
        finally:
            cs.value(1)  # type: ignore[union-attr]

    def _transfer(self):
        if self._out is not None:
            self.spi.write(self._out)
        if self._in is not None:
            self.spi.readinto(self._in, 0)
