"""Typed, strictly loaded experiment config; nothing here trains or prints.

Precedence, lowest first: field defaults < the YAML file < `--set key=value`.
The defaults are the lecture's full run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from actdiag.errors import ActdiagError

DEVICES = ("cpu", "cuda", "auto")
TRUE_WORDS = {"on", "true", "yes", "1"}
FALSE_WORDS = {"off", "false", "no", "0"}


@dataclass(frozen=True)
class Config:
    """One experiment: the model, its initialization, training and what to record."""

    # model
    gain: float = 5 / 3  # multiplies every hidden Linear weight after fan-in scaling
    depth: int = 5  # hidden blocks (Linear, [BatchNorm], [Tanh])
    width: int = 100  # hidden units per block
    embedding: int = 10  # embedding size per character
    context: int = 3  # characters of context
    tanh: bool = True
    batchnorm: bool = False  # when on, Linear layers have no bias
    fan_in_scaling: bool = True  # divide initial weights by sqrt(fan_in)
    last_layer_scale: float = 0.1  # shrinks the output block at init

    # training
    lr: float = 0.1
    decay_after: int | None = 150_000  # steps at `lr` before switching to `decay_lr`
    decay_lr: float = 0.01
    steps: int = 200_000
    batch_size: int = 32
    seed: int = 2147483647  # torch generator: weights, then batches
    split_seed: int = 42  # python `random`: shuffles the words before the split
    device: str = "cpu"  # cpu, cuda or auto
    threads: int = 1  # torch CPU threads; this small model runs fastest on one
    compile: bool = False  # torch.compile the steps between snapshots (long runs)

    # data and recording
    data: str | None = None  # one word per line; None means the shipped names file
    snapshots: tuple[int, ...] = field(default=())  # the last step is always one

    # findings: the thresholds the diagnosis reads the statistics against
    saturation_threshold: float = 5.0  # percent saturated above which a layer warns
    std_ratio_threshold: float = 1.8  # last/first act std beyond this factor either way
    grad_ratio_threshold: float = 4.0  # last/first grad std beyond this factor
    grad_to_data_factor: float = 10.0  # grad:data this many times the weights' median
    ud_low: float = -4.0  # log10 update:data below this learns too slowly
    ud_high: float = -2.0  # log10 update:data above this learns too fast
    ud_tail: float = 0.1  # fraction of the last steps the update:data rule averages
    ud_min_steps: int = 100  # fewer steps than this are too few to judge update:data
    dead_threshold: float = 0.99  # |tanh| above this on every example: a dead unit
    loss_excess: float = 0.5  # first loss this far above -log(1/vocab) is flagged

    def lr_at(self, step: int) -> float:
        """Learning rate used by `step` (1-based)."""
        if self.decay_after is not None and step > self.decay_after:
            return self.decay_lr
        return self.lr

    def snapshot_steps(self) -> list[int]:
        """Sorted, distinct steps at which full statistics are recorded."""
        return sorted(set(self.snapshots) | {self.steps})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping of every field."""
        out = dataclasses.asdict(self)
        out["snapshots"] = list(self.snapshots)
        return out


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


# ---------------------------------------------------------------------------
# value parsing: YAML values and `--set` strings go through the same functions


def parse_number(text: str) -> float:
    """Parse `0.1`, `1e-3` or a fraction like `5/3` into a float."""
    text = text.strip()
    try:
        if "/" in text:
            return float(Fraction(text))
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"{text!r} is not a number (write e.g. 0.5, 1e-3 or 5/3)"
        ) from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"{value!r} is not on/off (write on, off, true, false, yes or no)")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = parse_number(value.replace("_", ""))
        except ValueError:
            pass
        else:
            if number.is_integer():
                return int(number)
    raise ValueError(f"{value!r} is not a whole number")


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_number(value)
    raise ValueError(f"{value!r} is not a number")


def _as_optional_int(value: Any) -> int | None:
    if value is None or (
        isinstance(value, str) and value.strip().lower() in ("", "none", "null")
    ):
        return None
    return _as_int(value)


def _as_optional_str(value: Any) -> str | None:
    if value is None or (
        isinstance(value, str) and value.strip().lower() in ("", "none", "null")
    ):
        return None
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a path")


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"{value!r} is not text")


def _as_steps(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        text = value.strip().strip("[]")
        value = [part for part in text.split(",") if part.strip()]
    if value is None:
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{value!r} is not a list of steps (write e.g. [1, 500])")
    return tuple(_as_int(item) for item in value)


PARSERS = {
    "bool": _as_bool,
    "int": _as_int,
    "float": _as_float,
    "int | None": _as_optional_int,
    "str | None": _as_optional_str,
    "str": _as_str,
    "tuple[int, ...]": _as_steps,
}


def parse_value(key: str, value: Any, source: str) -> Any:
    """Convert `value` for field `key`, raising an error that names key and source."""
    check_key(key, source)
    parser = PARSERS[str(FIELDS[key].type)]
    try:
        return parser(value)
    except ValueError as err:
        raise ActdiagError(f"{source}: key '{key}': {err}") from None


def check_key(key: str, source: str) -> None:
    """Raise when `key` is not a config field, suggesting the closest one."""
    if key in FIELDS:
        return
    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = (
        f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(FIELDS)}"
    )
    raise ActdiagError(f"{source}: unknown key '{key}'; {hint}")


# ---------------------------------------------------------------------------
# range checks, applied once to the fully resolved config


def validate(cfg: Config, origin: dict[str, str] | None = None) -> Config:
    """Raise an ActdiagError for the first out-of-range value; return `cfg` otherwise.

    `origin` maps a key to where its value came from (a file or `--set key`).
    """
    origin = origin or {}

    def fail(key: str, message: str) -> ActdiagError:
        return ActdiagError(f"{origin.get(key, 'config')}: key '{key}' {message}")

    positive = {"gain": cfg.gain, "lr": cfg.lr, "decay_lr": cfg.decay_lr}
    positive["last_layer_scale"] = cfg.last_layer_scale
    for key, value in positive.items():
        if not math.isfinite(value) or value <= 0:
            raise fail(key, f"is {value}; it must be a number > 0")
    at_least_one = (
        "depth",
        "width",
        "embedding",
        "context",
        "steps",
        "batch_size",
        "threads",
    )
    for key in at_least_one:
        if getattr(cfg, key) < 1:
            raise fail(key, f"is {getattr(cfg, key)}; it must be >= 1")
    if cfg.batchnorm and cfg.batch_size < 2:
        raise fail("batch_size", "is 1 with batchnorm on; batchnorm needs >= 2")
    if cfg.decay_after is not None and cfg.decay_after < 1:
        raise fail("decay_after", f"is {cfg.decay_after}; it must be >= 1 or null")
    for key in ("seed", "split_seed"):
        if not 0 <= getattr(cfg, key) < 2**63:
            raise fail(key, f"is {getattr(cfg, key)}; it must be in [0, 2**63)")
    if cfg.device not in DEVICES:
        raise fail("device", f"is '{cfg.device}'; valid: {', '.join(DEVICES)}")
    _validate_thresholds(cfg, fail)
    for step in cfg.snapshots:
        if not 1 <= step <= cfg.steps:
            raise fail(
                "snapshots", f"holds {step}; each must be in 1..{cfg.steps} (steps)"
            )
    return cfg


def _validate_thresholds(cfg: Config, fail) -> None:
    """Range-check the findings thresholds; `fail(key, message)` builds the error."""
    opens = {
        "saturation_threshold": (0.0, 100.0, "a percent in (0, 100)"),
        "dead_threshold": (0.0, 1.0, "in (0, 1)"),
    }
    for key, (low, high, valid) in opens.items():
        value = getattr(cfg, key)
        if not (math.isfinite(value) and low < value < high):
            raise fail(key, f"is {value}; it must be {valid}")
    for key in ("std_ratio_threshold", "grad_ratio_threshold", "grad_to_data_factor"):
        value = getattr(cfg, key)
        if not (math.isfinite(value) and value > 1):
            raise fail(key, f"is {value}; it must be a factor > 1")
    if not (math.isfinite(cfg.loss_excess) and cfg.loss_excess > 0):
        raise fail("loss_excess", f"is {cfg.loss_excess}; it must be a number > 0")
    if not (0 < cfg.ud_tail <= 1):
        raise fail("ud_tail", f"is {cfg.ud_tail}; it must be a fraction in (0, 1]")
    if cfg.ud_min_steps < 1:
        raise fail("ud_min_steps", f"is {cfg.ud_min_steps}; it must be >= 1")
    for key in ("ud_low", "ud_high"):
        if not math.isfinite(getattr(cfg, key)):
            raise fail(key, f"is {getattr(cfg, key)}; it must be a finite log10 ratio")
    if cfg.ud_low >= cfg.ud_high:
        raise fail(
            "ud_low", f"is {cfg.ud_low}; it must be below ud_high ({cfg.ud_high})"
        )


# ---------------------------------------------------------------------------
# loading


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice."""

    def __init__(self, key: str, line: int):
        super().__init__(key)
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKey(str(key), key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a config file into a mapping, with errors that name the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ActdiagError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ActdiagError(f"{path}: is a folder; give a YAML config file") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        raise ActdiagError(f"{path}: cannot read config file ({reason})") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except DuplicateKey as err:
        raise ActdiagError(
            f"{path}: line {err.line}: key '{err.key}' is given twice"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ActdiagError(f"{path}:{where} is not valid YAML") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ActdiagError(f"{path}: a config must be a mapping of key: value lines")
    return raw


def parse_override(text: str) -> tuple[str, str]:
    """Split a `--set key=value` argument."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ActdiagError(f"--set '{text}': write key=value, e.g. --set lr=0.01")
    return key.strip(), value.strip()


def load_config(path: Path | None = None, overrides: list[str] = ()) -> Config:
    """Resolve defaults < file < overrides into a validated Config."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    if path is not None:
        for key, value in read_yaml(path).items():
            values[str(key)] = parse_value(str(key), value, str(path))
            origin[str(key)] = str(path)
        # a relative data path in a file is read from the file's folder
        if values.get("data") and not Path(values["data"]).is_absolute():
            values["data"] = str((path.parent / values["data"]).resolve())
    for text in overrides:
        key, value = parse_override(text)
        values[key] = parse_value(key, value, "--set")
        origin[key] = "--set"
    if values.get("data"):
        values["data"] = str(Path(values["data"]).expanduser().resolve())
    return validate(Config(**values), origin)
