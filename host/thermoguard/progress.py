"""Progress bars for long work on a log (verify, export, replay): rich.progress on stderr.

Only when stderr is a terminal and the log is large (MIN_BYTES and up): never in a pipe,
a file or a CI log, so what a command writes anywhere else is the same with or without
a bar. The bar is transient (gone when the work ends) and is updated in coarse steps by
the work itself (bytes of the log read, rows written), so it costs nothing measurable.

    with progress.bar(path, enabled=not args.no_progress) as bar:
        step = bar.task("verifying", total=size)   # a callable: step(done) sets the count
        ...
        step(offset)

A disabled bar gives tasks that do nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager

MIN_BYTES = 4 << 20  # a smaller log is read in well under a second: a bar would only flicker
STEP_BYTES = 1 << 20  # how far the work goes between updates


def _off(done: int) -> None:
    pass


class Bar:
    """Tasks of one progress display; `task` gives the update function of a new one."""

    def __init__(self, progress=None):
        self._progress = progress

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def task(self, description: str, total: int, unit: str = "bytes") -> Callable[[int], None]:
        """A new line of the display; the returned step(done) sets how much of total is done."""
        p = self._progress
        if p is None:
            return _off
        task_id = p.add_task(description, total=max(1, total), unit=unit)

        def step(done: int) -> None:
            p.update(task_id, completed=done)

        return step


def wanted(size: int, enabled: bool = True, stream=None) -> bool:
    """A bar is shown for a log of size bytes: enabled, large enough, stderr a terminal."""
    stream = sys.stderr if stream is None else stream
    if not enabled or size < MIN_BYTES:
        return False
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


@contextmanager
def bar(path, enabled: bool = True):
    """A Bar for work on the log at path (shown or not, see `wanted`)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0  # the command reports the missing file itself
    if not wanted(size, enabled):
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr)
    # Lines printed to stdout go above the bar only when stdout is the same terminal;
    # stdout elsewhere (a pipe, a file) is never touched.
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        _Amount(), TimeRemainingColumn(), console=console, transient=True,
                        redirect_stdout=_isatty(sys.stdout), redirect_stderr=False, refresh_per_second=5)
    with progress:
        yield Bar(progress)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _Amount():
    """How much is done, in the task's unit: MB for bytes, a count for rows."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Amount(ProgressColumn):
        def render(self, task) -> Text:
            unit = task.fields.get("unit", "bytes")
            if unit == "bytes":
                return Text(f"{task.completed / 1e6:,.0f}/{task.total / 1e6:,.0f} MB")
            return Text(f"{int(task.completed):,}/{int(task.total):,} {unit}")

    return Amount()
