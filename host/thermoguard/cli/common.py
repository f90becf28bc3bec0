"""What every command shares: the one-sentence user error, argument types, configuration,
scenario and log helpers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from tgfw import VERSION as FIRMWARE_VERSION
from tgfw import config

from thermoguard import paths


class UserError(Exception):
    """A problem with what the user asked for: one sentence, non-zero exit, no traceback."""


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed must be a number or max, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be above 0")
    return value


def positive_number(text: str, what: str = "a number") -> float:
    """An argparse type: a number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be {what} above 0")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a number of seconds above 0 (not nan, not inf)."""
    return positive_number(text, "a number of seconds")


def load_config(path: str | None) -> dict:
    if path is None:
        return json.loads((paths.DATA / "demo_config.json").read_text())
    try:
        return config.load(path)
    except config.ConfigError as e:
        raise UserError(f"configuration {path}: {e}") from None


def check_scenario(path: str) -> Path:
    """A scenario CSV, a closed-loop plant (.json) or a session log (.tglog), checked before
    a board starts. A log is converted to a scenario CSV (thermoguard.vboard.log_scenario):
    the path returned is then that CSV's."""
    sys.path.insert(0, str(paths.HIL_DEVICE))
    try:
        import plant
        import scenario
    finally:
        sys.path.pop(0)
    p = Path(path)
    if not p.is_file():
        raise UserError(f"scenario {path} " + ("is a folder, not a file" if p.is_dir() else "does not exist"))
    if p.suffix == ".tglog":
        from thermoguard import log
        from thermoguard.vboard import log_scenario

        try:
            p = log_scenario(p)
        except (log.LogError, ValueError) as e:
            raise UserError(f"scenario {path}: {e}") from None
        except OSError as e:
            raise UserError(f"scenario {path} cannot be read: {e.strerror or e}") from None
    try:
        (plant if p.suffix == ".json" else scenario).load(str(p))
    except (scenario.ScenarioError, plant.PlantError) as e:
        raise UserError(f"scenario {path}: {e}") from None
    except UnicodeDecodeError:
        raise UserError(f"scenario {path} is not text: a scenario is a CSV file (or a .json plant)") from None
    except OSError as e:
        raise UserError(f"scenario {path} cannot be read: {e.strerror or e}") from None
    return p


def check_names(scenario_path: Path, cfg: dict) -> None:
    """A scenario column that names no configured channel is a typo or the wrong file:
    refuse it rather than answer a what-if with every channel at body temperature."""
    sys.path.insert(0, str(paths.HIL_DEVICE))
    try:
        import plant
        import scenario
    finally:
        sys.path.pop(0)
    source = (plant if scenario_path.suffix == ".json" else scenario).load(str(scenario_path))
    names = [ch["name"] for ch in cfg.get("channels", [])]
    unknown = [n for n in source.names if n not in names]
    if unknown:
        raise UserError(f"scenario {scenario_path} names {', '.join(unknown)}, which the configuration does not "
                        f"have (its channels: {', '.join(names)})")


def open_log(path: Path, cfg: dict, force: bool, board: str):
    from thermoguard import log

    meta = {  # the writer adds thermoguard's version, the host and the start time
        "firmware": FIRMWARE_VERSION,
        "board": board,
        "config": cfg,
        "config_hash": f"{config.config_hash(config.validate(cfg)):08x}",
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return log.LogWriter.create(path, meta, force=force)
    except log.LogExists:
        raise UserError(f"{path} exists: choose another --out or add --force to overwrite it") from None
    except OSError as e:
        raise UserError(f"cannot write the log {path}: {e.strerror or e}") from None


def default_log(prefix: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("out") / f"{prefix}-{stamp}.tglog"




def check_outputs(source: Path, outs: list[Path], force: bool) -> None:
    """Nothing the user recorded is ever lost: an output is never the log it is made from,
    never another output, never a folder, never an existing file without --force."""
    seen: list[Path] = []
    for out in outs:
        real = out.resolve()
        if source.exists() and real == source.resolve():
            raise UserError(f"{out} is the log itself: choose another name")
        if real in seen:
            raise UserError(f"{out} is given for two outputs: choose one name for each")
        seen.append(real)
        if out.is_dir():
            raise UserError(f"{out} is a folder: give a file name")
        if out.exists() and not force:
            raise UserError(f"{out} exists: choose another name or add --force to overwrite it")


def write_through(out: Path, produce) -> object:
    """Call produce(tmp_path) to write a temporary file, then rename it into place, so a
    failed write leaves no half file; returns what produce returned."""
    tmp = out.with_name(out.name + ".part")
    try:
        result = produce(tmp)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return result
