"""The dashboard as plain lines, for a stdout that is not a terminal (a pipe, a file, CI).

A status line about once a second (`status_text`); events and trips (`items`) and the
NO DATA alarm (`tick`) the moment they come. The same Model as the live view, and the same
dose formatting (model.dose_text).
"""

from __future__ import annotations

from thermoguard import protocol
from thermoguard.dashboard.model import HIGH, Model, dose_text

STATUS_EVERY_S = 1.0


def status_text(model: Model, now: float) -> str:
    """One line: device time, state, interlock, every channel, link rate (or NO DATA)."""
    b = model.banner(now)
    t = model.last
    if b.state in ("NO DATA", "WAITING"):
        return b.detail
    parts = [f"{t.t_dev_s:7.1f} s", f"{b.state:<8}", "RF permitted" if t.interlock_on else "RF off"]
    for r in model.rows(now):
        value = f"{r.temp_c:.2f} C" if r.temp_c is not None else (r.fault or "no reading")
        extra = ""
        if r.rate_c_per_s is not None:
            extra += f" {r.rate_c_per_s:+.2f} C/s"
        if r.dose_cem43 is not None and r.dose_cem43 >= 0.005:
            extra += f" CEM43 {dose_text(r.dose_cem43)}"
        if r.omega:
            extra += f" Omega {r.omega:.3g}"
        if r.trips:
            extra += " TRIP " + ",".join(r.trips)
        elif r.warnings:
            extra += " warn " + ",".join(r.warnings)
        parts.append(f"{r.name} {value}{extra}")
    fps = model.fps(now)
    parts.append(f"{fps:.1f} frames/s" if fps is not None else "-- frames/s")
    return "  ".join(parts)


class Plain:
    def __init__(self, model: Model) -> None:
        self.model = model
        self._next_status: float | None = None
        self._stale_said = False

    def items(self, items: list) -> list[str]:
        """Lines for what just arrived (after it was fed to the model)."""
        out = []
        for item in items:
            if isinstance(item, protocol.Event):
                if item.event == protocol.EV_TRIP:
                    out.append(f"{item.t_dev_s:7.1f} s  *** TRIPPED: {item.text}: RF off ***")
                else:
                    detail = f": {item.text}" if item.text else ""
                    out.append(f"{item.t_dev_s:7.1f} s  {item.event_name} ({item.state_name}){detail}")
            elif isinstance(item, protocol.Text):
                out.append(f"  board: {item.text}")
        return out

    def tick(self, now: float) -> list[str]:
        """The status line when it is due, and the NO DATA alarm the moment it starts."""
        out = []
        stale = self.model.stale_s(now)
        if stale is not None and not self._stale_said and self.model.last is not None:
            out.append(f"*** {HIGH.upper()} ALARM: {self.model.banner(now).detail} ***")
            self._next_status = now + STATUS_EVERY_S
        self._stale_said = stale is not None
        if self._next_status is None or now >= self._next_status:
            out.append(status_text(self.model, now))
            self._next_status = now + STATUS_EVERY_S
        return out
