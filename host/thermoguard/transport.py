"""The serial port to a board: anything pyserial's `serial_for_url` opens (`/dev/ttyACM0`,
`/dev/pts/N`, `socket://host:port`, `rfc2217://host:port`).

Reads never block for more than `read_timeout` (so a caller can keep its heartbeat and
its Ctrl-C), a failure of an open port is a `PortLost` with the reason, and `reconnect`
tries to open the same port again with a bounded backoff (a board unplugged and plugged
back, a USB board that reset, a socket that dropped). An open that fails is a
`PortError` with one sentence for the user.
"""

from __future__ import annotations

import errno
import re
import threading
import time

import serial

READ_TIMEOUT_S = 0.05  # longest a read waits: heartbeats and Ctrl-C stay responsive
WRITE_TIMEOUT_S = 1.0  # a board that takes no bytes for this long is not answering anyway
READ_SIZE = 4096
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


class PortError(Exception):
    """A port that cannot be opened or is no thermoguard board: one sentence for the user."""


class PortLost(Exception):
    """An open port failed (unplugged, reset, closed by the other end); str() is the reason."""


def describe_open_error(url: str, e: Exception) -> str:
    """One sentence saying why `url` could not be opened."""
    code = getattr(e, "errno", None)
    text = str(e)
    scheme, _, rest = url.partition("://")
    if scheme in ("socket", "rfc2217") and not re.fullmatch(r"(\[[^\]]+\]|[^/:\[\]]+):\d+(/.*)?([?].*)?", rest):
        return f"{url} is not a network port pyserial can open: write {scheme}://HOST:PORT"
    if code == errno.ENOENT or "No such file" in text:
        return f"{url} does not exist (is the board plugged in? `thermoguard ports` lists the serial ports)"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return f"no permission to open {url} (on Linux, add your user to the dialout group and log in again)"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return f"{url} is busy: another program has it open (a recording, a monitor or a terminal)"
    if "Connection refused" in text:
        return f"nothing accepts connections at {url}"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return f"the host of {url} is not known"
    if "timed out" in text:
        return f"{url} did not accept a connection in time"
    if "Could not configure port" in text or code == errno.ENOTTY:
        return f"{url} is not a serial port"
    if isinstance(e, ValueError) or "invalid URL" in text or "expected a string" in text:
        return f"{url} is not a port pyserial can open ({text.rstrip('.')})"
    return f"cannot open {url}: {text}"


BAUD = 115200


def open_serial(url: str, read_timeout: float = READ_TIMEOUT_S) -> serial.SerialBase:
    """Open url, or raise PortError with one sentence."""
    # pyserial's rfc2217 client refuses a write timeout; its socket's own 5 s timeout bounds a write.
    write_timeout = None if url.startswith("rfc2217://") else WRITE_TIMEOUT_S
    try:
        # exclusive: a second program reading the same port would take half of the bytes.
        # 115200 baud: MicroPython's console on a USB-to-UART bridge (ESP32-DevKitC); USB ports ignore it.
        return serial.serial_for_url(url, baudrate=BAUD, timeout=read_timeout, write_timeout=write_timeout,
                                     exclusive=True)
    except (serial.SerialException, OSError, ValueError, NotImplementedError) as e:
        raise PortError(describe_open_error(url, e)) from None


class Transport:
    """One port, opened by URL; reads and writes bytes, reopens it after a failure."""

    def __init__(self, url: str, read_timeout: float = READ_TIMEOUT_S) -> None:
        self.url = url
        self.read_timeout = read_timeout
        self.last_error = ""  # why the last open or reopen failed
        self._ser: serial.SerialBase | None = None

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def open(self) -> Transport:
        if self._ser is None:
            self._ser = open_serial(self.url, self.read_timeout)
        return self

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass  # the port is already gone: nothing left to release

    def read(self) -> bytes:
        """What arrived within read_timeout (b"" when nothing did); PortLost when the port failed."""
        ser = self._require()
        try:
            return ser.read(READ_SIZE)
        except (serial.SerialException, OSError) as e:
            self.close()
            raise PortLost(_reason(e)) from None

    def write(self, data: bytes) -> bool:
        """Send data; False when the port would not take it within WRITE_TIMEOUT_S."""
        ser = self._require()
        try:
            ser.write(data)
            return True
        except serial.SerialTimeoutException:
            return False
        except (serial.SerialException, OSError) as e:
            self.close()
            raise PortLost(_reason(e)) from None

    def reconnect(self, timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Reopen the port, retrying with backoff for at most timeout_s.

        True once it is open; False when timeout_s passed (last_error says why) or stop was set.
        """
        self.close()
        deadline = time.monotonic() + timeout_s
        delay = BACKOFF_FIRST_S
        while True:
            try:
                self.open()
                return True
            except PortError as e:
                self.last_error = str(e)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = min(delay, left)
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _require(self) -> serial.SerialBase:
        if self._ser is None:
            raise PortLost(f"{self.url} is not open")
        return self._ser

    def __enter__(self) -> Transport:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(e: Exception) -> str:
    return str(e) or type(e).__name__  # pyserial's words: `read failed: [Errno 5] Input/output error`
