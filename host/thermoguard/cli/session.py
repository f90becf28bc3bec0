"""What `record` and `monitor` share: open a board and a log whose header says which board
it is, record through a Recorder with Ctrl-C ending it between two whole log writes, close
everything, and say what was recorded. Every failure is one sentence (UserError)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path

from thermoguard import log
from thermoguard.board import Board, NoReply, connect
from thermoguard.cli.common import UserError
from thermoguard.recorder import Stats
from thermoguard.transport import PortError, PortLost


def exists_error(out: Path, option: str = "--out") -> UserError:
    return UserError(f"{out} exists: choose another {option} or add --force to overwrite it")


def header_meta(board: Board, port: str, warn) -> dict:
    """Board, firmware and configuration hash from INFO; the configuration from GET."""
    meta: dict = {"port": port}
    info = board.info
    if info is None:
        warn("the board sent frames but did not answer INFO: board, firmware and configuration are "
             "left empty in the log header")
        return meta
    meta.update(firmware=info.firmware, board=info.board, config_hash=info.config_hash)
    if info.config_hash is None:
        warn(f"the board has no valid configuration ({info.error or 'none'})")
        return meta
    try:
        text, reply = board.get_config()
        why = reply.text
        meta["config"] = json.loads(text) if text is not None else None
    except NoReply as e:
        text, why = None, str(e)
    except ValueError:
        text, why = None, "not JSON"
    if text is None:
        warn(f"the board's configuration could not be read ({why}); the log header has none")
    return meta


class NullWriter:
    """A log that keeps nothing (`monitor --no-log`): what the Recorder writes to."""

    path = None

    def write_bytes(self, data: bytes, t_ns: int | None = None) -> None:
        pass

    def note(self, text: str, t_ns: int | None = None) -> None:
        pass

    def note_gap(self, reason: str, t_ns: int | None = None) -> None:
        pass

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_board(port: str) -> tuple[Board, list[tuple[bytes, int]]]:
    """The board on port, identified by INFO, and the bytes read meanwhile (to be logged first)."""
    early: list[tuple[bytes, int]] = []
    try:
        board = connect(port, require_reply=False, on_bytes=lambda data, t: early.append((data, t)))
    except PortLost as e:
        raise UserError(f"{port} failed while asking INFO: {e}") from None
    except PortError as e:
        raise UserError(str(e)) from None
    return board, early


def open_log(board: Board, port: str, out: Path | None, force: bool, warn, option: str = "--out"):
    """(writer, header): a LogWriter on out whose header describes the board (NullWriter for
    None); closes the board on any failure."""
    try:
        meta = header_meta(board, port, warn)
        if out is None:
            return NullWriter(), meta
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where the folder should be
            raise UserError(f"cannot create {out}: {out.parent} is not a folder") from None
        return log.LogWriter.create(out, meta, force=force), meta
    except FileExistsError:
        board.close()
        raise exists_error(out, option) from None
    except UserError:
        board.close()
        raise
    except OSError as e:
        board.close()
        raise UserError(f"cannot create {out}: {e.strerror or e}") from None
    except PortLost as e:
        board.close()
        raise UserError(f"{port} failed while reading the configuration: {e}") from None
    except PortError as e:
        board.close()
        raise UserError(str(e)) from None
    except BaseException:
        board.close()
        raise


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, hangup: bool = True):
    """The first Ctrl-C (or SIGTERM) only sets stop, so the recording ends between two whole
    log writes; a second one raises KeyboardInterrupt (the user insists). A closed terminal
    (SIGHUP) ends it the same way, unless SIGHUP is ignored (nohup)."""
    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    sigs = [signal.SIGINT, signal.SIGTERM]
    if hangup and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        sigs.append(signal.SIGHUP)
    old = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def close(board: Board, writer) -> None:
    """Close the port and the log; a log that cannot be written to the end is one sentence."""
    board.close()
    try:
        writer.close()
    except OSError as e:
        raise UserError(f"cannot write {writer.path}: {e.strerror or e}") from None


def summary(s: Stats, out: Path | None) -> str:
    m, sec = divmod(s.elapsed, 60)
    lines = [f"recorded {s.frames} frames ({s.telemetry} telemetry, {s.events} events, {s.replies} replies), "
             f"{s.text_lines} text lines, {s.bytes} bytes in {int(m)} min {sec:.1f} s",
             f"frames lost {s.lost}, CRC errors {s.crc_errors}, garbage {s.garbage}, gaps {s.gaps}, "
             f"board restarts {s.restarts}, heartbeats sent {s.heartbeats}",
             f"log: {out}" if out is not None else "log: none (--no-log)"]
    if s.state:
        lines.insert(1, f"last state {s.state}")
    return "\n".join(lines)
