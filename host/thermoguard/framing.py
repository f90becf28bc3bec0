"""Split the board's byte stream into per-frame chunks, keeping every byte.

The log stores what the port delivered, bit for bit, but one record per frame makes a log
easy to scan (docs/log-format.md). `Splitter.feed` cuts at the 0x00 delimiters of the
link protocol (docs/protocol.md): a chunk is either one frame with both its zeros
(`00 body 00`), a lone zero, or a run of other bytes (text, garbage, a frame whose
opening zero was lost). Concatenating the chunks, in order, always gives back exactly the
bytes fed, however the stream was cut into reads; the split only decides where records
begin and end, never what they hold.
"""

from __future__ import annotations

from .protocol import MAX_WIRE_CHUNK

MAX_RUN = 4096  # bytes of text or garbage per chunk: records stay small and bounded


class Splitter:
    """Feed it bytes as they arrive; it returns the chunks that are complete.

    Bytes of a frame still waiting for its closing zero are held (`pending`); bytes
    outside a frame are returned at the end of each `feed`, so text is never held back.
    """

    def __init__(self) -> None:
        self._chunk = bytearray()  # an open frame: starts with its opening zero
        self._in_frame = False

    @property
    def pending(self) -> bytes:
        return bytes(self._chunk)

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        chunk = self._chunk
        i, n = 0, len(data)
        while i < n:
            j = data.find(0, i)
            end = n if j < 0 else j
            if self._in_frame:
                if j == i and len(chunk) == 1:
                    # `00 00`: a zero closing a frame we never saw, then this one opening
                    # the next; keep the two apart so the next frame is one chunk.
                    out.append(b"\x00")
                    i = j + 1
                    continue
                chunk += data[i:end]
                if len(chunk) > MAX_WIRE_CHUNK + 1:
                    # Too long for a frame (as the decoder reads it): the zero did not
                    # open one. Hand the bytes on as a run; a zero at `end` opens again.
                    self._in_frame = False
                    out.extend(_runs(bytes(chunk)))
                    chunk.clear()
                    i = end
                    continue
                if j >= 0:
                    chunk.append(0)
                    out.append(bytes(chunk))
                    chunk.clear()
                    self._in_frame = False
                i = end + 1 if j >= 0 else n
            else:
                if end > i:
                    out.extend(_runs(data[i:end]))
                if j >= 0:
                    chunk.append(0)
                    self._in_frame = True
                i = end + 1 if j >= 0 else n
        return out

    def take_partial(self) -> bytes:
        """The held bytes of an open frame, handed over now; the frame stays open."""
        data = bytes(self._chunk)
        self._chunk.clear()
        return data

    def flush(self) -> bytes:
        """The held bytes, and back to the start state (end of stream, port lost)."""
        data = self.take_partial()
        self._in_frame = False
        return data


def _runs(data: bytes) -> list[bytes]:
    return [data[k : k + MAX_RUN] for k in range(0, len(data), MAX_RUN)]
