"""Thermal dose from a log, per channel, with numpy: CEM43 and Arrhenius damage.

    fr = frames.load_telemetry(path)
    cem = cem43(fr)                     # (frames, channels): cumulative CEM43 at each frame
    omega = arrhenius(fr, TISSUES["liver"])   # (frames, channels): cumulative damage integral

The accrual rule is the board's (firmware/tgfw/channels.py `update`, tgfw/dose.py): a
reading adds the dose of the interval since the previous cycle, at the new reading's
temperature, when the channel was usable in both cycles. On the host the interval is the
device time between consecutive frames (t_dev_s), and "usable" is a frame whose channel
has a temperature (fault 0, not NaN). A board restart (device time or sequence going
back, the Decoder's rule) starts a new session: the board's dose starts again from 0.

CEM43 (Sapareto and Dewey 1984): sum of dt_minutes * R ** (43 - T), R = 0.5 at or above
43 C and 0.25 below. The board computes it in integer fixed point; this module in double
precision, and the two agree within 0.1 % (tests/host/test_dose_host.py).

Arrhenius damage: Omega = sum of dt_seconds * A * exp(-Ea / (R_GAS * T_kelvin)), with the
tissue's frequency factor A (1/s) and activation energy Ea (J/mol); Omega = 1 is the usual
threshold of irreversible damage (63 % of cells). Liver by default
(A = 7.39e39 1/s, Ea = 2.577e5 J/mol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from thermoguard import protocol

R_GAS = 8.314462618  # J/(mol K)
KELVIN = 273.15


@dataclass(frozen=True)
class Tissue:
    name: str
    a_per_s: float  # frequency factor A, 1/s
    ea_j_per_mol: float  # activation energy Ea, J/mol


LIVER = Tissue("liver", 7.39e39, 2.577e5)
TISSUES = {LIVER.name: LIVER}


def usable(fr) -> np.ndarray:
    """(frames, channels) bool: the channel carries a temperature in that frame."""
    return ~np.isnan(fr.temp_c) & (fr.fault == 0)


def restarts(fr) -> np.ndarray:
    """(frames,) bool: the board started again at this frame (device time or sequence went back)."""
    out = np.zeros(len(fr), bool)
    if len(fr) > 1:
        back = fr.t_dev_s[1:] < fr.t_dev_s[:-1]
        missing = (fr.seq[1:] - fr.seq[:-1] - 1) % protocol.SEQ_MOD
        out[1:] = back | (missing >= protocol.SEQ_MOD // 2)
    return out


def intervals(fr) -> tuple[np.ndarray, np.ndarray]:
    """(dt_s, accrues): dt_s[k] is the device time from frame k-1 to k (0 for k = 0);
    accrues[k, c] when channel c was usable in frames k-1 and k of one board session."""
    n = len(fr)
    dt = np.zeros(n)
    ok = usable(fr)
    acc = np.zeros(ok.shape, bool)
    if n > 1:
        dt[1:] = np.diff(fr.t_dev_s)
        acc[1:] = ok[1:] & ok[:-1] & ~restarts(fr)[1:, None]
    return dt, acc


def _cumulative(fr, increments: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """Sum increments per board session; each session starts from `start` at its first frame."""
    total = np.cumsum(increments, axis=0)
    if not len(fr):
        return total
    first = np.flatnonzero(restarts(fr) | (np.arange(len(fr)) == 0))
    session = np.cumsum(np.isin(np.arange(len(fr)), first)) - 1
    before = total[first] - increments[first]  # sum up to the session's first frame
    total -= before[session]
    if start is not None:
        total += np.nan_to_num(start[first])[session]
    return total


def cem43(fr, baseline: str = "board") -> np.ndarray:
    """Cumulative CEM43 per frame and channel, shape (frames, channels).

    baseline "board": each board session starts from the board's own figure at its first
    frame in the log (0 when the log starts at power-on), so the curve overlays the
    telemetry dose field; "zero": the dose accrued within the log only.
    """
    dt, acc = intervals(fr)
    t = fr.temp_c
    with np.errstate(invalid="ignore"):
        e = np.where(t >= 43.0, t - 43.0, 2.0 * (t - 43.0))  # R ** (43 - T) = 2 ** e
        inc = np.where(acc, dt[:, None] / 60.0 * np.exp2(np.where(acc, e, 0.0)), 0.0)
    return _cumulative(fr, inc, _baseline(fr, baseline))


def arrhenius(fr, tissue: Tissue = LIVER, a_per_s: float | None = None, ea_j_per_mol: float | None = None,
              baseline: str = "zero") -> np.ndarray:
    """Cumulative Arrhenius damage Omega per frame and channel, shape (frames, channels).

    The tissue's parameters unless a_per_s / ea_j_per_mol are given. The board does not
    compute Omega, so the default baseline is the log's start ("zero").
    """
    a = tissue.a_per_s if a_per_s is None else a_per_s
    ea = tissue.ea_j_per_mol if ea_j_per_mol is None else ea_j_per_mol
    if not (a > 0 and ea > 0):
        raise ValueError("Arrhenius parameters must be positive (A in 1/s, Ea in J/mol)")
    dt, acc = intervals(fr)
    with np.errstate(invalid="ignore", over="ignore"):
        rate = a * np.exp(-ea / (R_GAS * (np.where(acc, fr.temp_c, 0.0) + KELVIN)))
        inc = np.where(acc, dt[:, None] * rate, 0.0)
    if baseline != "zero":
        raise ValueError('the board does not compute Omega: baseline must be "zero"')
    return _cumulative(fr, inc, None)


def _baseline(fr, baseline: str):
    if baseline == "board":
        return fr.dose_cem43
    if baseline == "zero":
        return None
    raise ValueError(f'baseline must be "board" or "zero", not {baseline!r}')


def final(values: np.ndarray) -> np.ndarray:
    """The last value of each channel (0 for an empty log)."""
    return values[-1] if len(values) else np.zeros(values.shape[1:])


class ArrheniusAccumulator:
    """Omega per channel, frame by frame as telemetry arrives: the rule of `arrhenius`
    (same intervals, same restarts, baseline zero), so a live figure equals the log's.

        acc = ArrheniusAccumulator(LIVER)
        acc.add(t.seq, t.t_dev_s, [ch.temp_c for ch in t.channels])   # None: no reading
        acc.omega                                                      # list, per channel
    """

    def __init__(self, tissue: Tissue = LIVER, a_per_s: float | None = None,
                 ea_j_per_mol: float | None = None) -> None:
        self.a = tissue.a_per_s if a_per_s is None else a_per_s
        self.ea = tissue.ea_j_per_mol if ea_j_per_mol is None else ea_j_per_mol
        if not (self.a > 0 and self.ea > 0):
            raise ValueError("Arrhenius parameters must be positive (A in 1/s, Ea in J/mol)")
        self.omega: list[float] = []
        self._prev: tuple[int, float, list[float | None]] | None = None

    def rate(self, temp_c: float) -> float:
        """Damage per second at temp_c (inf beyond the float range, as numpy gives)."""
        try:
            return self.a * math.exp(-self.ea / (R_GAS * (temp_c + KELVIN)))
        except OverflowError:
            return math.inf

    def add(self, seq: int, t_dev_s: float, temps) -> None:
        temps = [None if t is None or math.isnan(t) else float(t) for t in temps]
        prev = self._prev
        self._prev = (seq, t_dev_s, temps)
        if prev is None or _restarted(prev[0], prev[1], seq, t_dev_s):
            self.omega = [0.0] * len(temps)  # a new board session starts from zero
            return
        if len(self.omega) < len(temps):
            self.omega += [0.0] * (len(temps) - len(self.omega))
        dt = t_dev_s - prev[1]
        for i, t in enumerate(temps):
            before = prev[2][i] if i < len(prev[2]) else None
            if t is not None and before is not None:
                self.omega[i] += dt * self.rate(t)


def _restarted(seq0: int, t0: float, seq: int, t: float) -> bool:
    """The Decoder's rule (and `restarts`): device time or sequence went back."""
    return t < t0 or (seq - seq0 - 1) % protocol.SEQ_MOD >= protocol.SEQ_MOD // 2
