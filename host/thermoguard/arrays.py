"""Large work and result arrays that the kernel can back with huge pages from the first byte.

numpy asks for transparent huge pages on allocations of 4 MiB and more (madvise), but the
memory it gets starts anywhere: only the 2 MiB-aligned middle can be huge pages, and the
unaligned ends, up to 4 MiB of them, are faulted in 4 KiB at a time (about 500 faults,
a millisecond, per array). The loader allocates some 40 such arrays for a million frames.
"""

from __future__ import annotations

import numpy as np

HUGE_PAGE = 2 << 20
_FROM = 1 << 20  # smaller arrays are allocated as numpy does


def empty(shape, dtype) -> np.ndarray:
    """numpy.empty(shape, dtype), starting on a 2 MiB boundary when it is 1 MiB or more.
    The array is a view of a slightly larger allocation: the extra bytes are never
    touched, so they take address space only."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < _FROM:
        return np.empty(shape, dtype)
    raw = np.empty(nbytes + 2 * HUGE_PAGE, np.uint8)  # at least 4 MiB: numpy advises huge pages
    at = -raw.ctypes.data % HUGE_PAGE
    return raw[at:at + nbytes].view(dtype).reshape(shape)
