"""The run directory: the contract between training and everything that reads it.

A run directory holds `config.yaml` (resolved config), `stats.json` (schema
below), `series.npz` (per-step `loss` and `update_to_data`),
`saturation_maps.npz` (per snapshot and tanh layer, which units saturate on
which examples), PNG plots and `report.html`.
Every file is written whole or not at all. Readers (tables, plots, compare,
report) use `read_run` and never a live model.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from actdiag import __version__
from actdiag.errors import ActdiagError

SCHEMA = 1
STATS = "stats.json"
SERIES = "series.npz"
CONFIG = "config.yaml"
MAPS = "saturation_maps.npz"
SWEEP = "sweep.json"  # a sweep directory's summary
COMPARE = "compare.json"  # a comparison folder's record
REPORT = "report.html"
GUIDE = -3.0  # log10 of the lecture's 1e-3 update:data guide


# ---------------------------------------------------------------------------
# writing files whole


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # NOTE: mkstemp makes the file private; give it the usual permissions
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    """Strict JSON (no NaN or infinity), written atomically."""
    text = json.dumps(obj, indent=1, allow_nan=False)
    write_bytes_atomic(path, (text + "\n").encode())


def make_run_dir(name: str, out: Path | None, root: Path = Path("runs")) -> Path:
    """Create a fresh run directory; never reuse or overwrite an existing one."""
    if out is not None:
        if out.exists():
            raise ActdiagError(
                f"{out}: already exists; actdiag never reuses a run directory"
            )
        try:
            out.mkdir(parents=True)
        except OSError as err:
            raise ActdiagError(
                f"{out}: cannot create run directory ({err.strerror})"
            ) from None
        return out
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ActdiagError(
            f"{root}: cannot create runs folder ({err.strerror})"
        ) from None
    for suffix in ["", *(f"-{i}" for i in range(2, 10_000))]:
        path = root / f"{safe}-{stamp}{suffix}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise ActdiagError(
                f"{path}: cannot create folder ({err.strerror})"
            ) from None
    raise ActdiagError(f"{root}: could not find a free run directory name")


# ---------------------------------------------------------------------------
# the records of a run


def clean(value: Any) -> Any:
    """Replace NaN and infinity by None anywhere inside `value`."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def param_records(params: list[dict], ud: np.ndarray) -> list[dict]:
    """Each parameter with its last update:data ratio, or null and the reason."""
    records = []
    for info in params:
        record = dict(info)
        column = ud[:, info["param"]] if len(ud) else np.empty(0)
        last = float(column[-1]) if len(column) else math.nan
        record["update_to_data"] = last if math.isfinite(last) else None
        undefined = int(np.isnan(column).sum())
        if undefined:
            record["undefined_steps"] = undefined
            record["reason"] = (
                "zero spread in the weight or in its update at those steps"
            )
        records.append(record)
    return records


def stats_record(result, config_name: str, data_path: Path) -> dict:
    """The stats.json content of a finished (or stopped) RunResult."""
    final = float(result.loss[-1]) if result.steps_done else None
    return clean(
        {
            "schema": SCHEMA,
            "version": __version__,
            "name": config_name,
            "config": result.config.to_dict(),
            "device": result.device,
            "data": {"path": str(data_path), "vocab_size": result.vocab_size},
            "n_params": result.n_params,
            "steps": result.steps_done,
            "loss": final,
            "val_loss": result.val_loss,
            "diverged": result.diverged,
            "interrupted": result.interrupted,
            "seconds": round(result.seconds, 3),
            "compile_seconds": (
                None
                if result.compile_seconds is None
                else round(result.compile_seconds, 3)
            ),
            "layers": result.layers,
            "params": param_records(result.params, result.update_to_data),
            "series": {
                "file": SERIES,
                "arrays": ["loss", "update_to_data"],
                "guide": GUIDE,
            },
            "snapshots": result.snapshots,
        }
    )


def write_run(
    run_dir: Path,
    result,
    config_name: str,
    data_path: Path,
    annotate: Callable[[dict], dict] | None = None,
) -> dict:
    """Write series.npz, saturation_maps.npz and stats.json (last: a whole run).

    `annotate(record)` returns extra top-level keys (the findings) for stats.json.
    """
    buf = io.BytesIO()
    np.savez(buf, loss=result.loss, update_to_data=result.update_to_data)
    write_bytes_atomic(run_dir / SERIES, buf.getvalue())
    if result.saturation_maps:
        buf = io.BytesIO()
        np.savez_compressed(buf, **result.saturation_maps)
        write_bytes_atomic(run_dir / MAPS, buf.getvalue())
    record = stats_record(result, config_name, data_path)
    if annotate is not None:
        record.update(clean(annotate(record)))
    write_json(run_dir / STATS, record)
    return record


def write_config(run_dir: Path, config: dict) -> None:
    """The resolved config, as YAML that `actdiag run` accepts again."""
    # NOTE: imported here: the readers (compare, report) never write YAML
    import yaml

    text = yaml.safe_dump(config, sort_keys=False)
    write_bytes_atomic(run_dir / CONFIG, text.encode())


# ---------------------------------------------------------------------------
# reading


def read_stats(run_dir: Path) -> dict:
    """Load a run's stats.json with errors that name the path."""
    if not run_dir.exists():
        raise ActdiagError(f"{run_dir}: no such file or directory")
    path = run_dir / STATS
    if not run_dir.is_dir() or not path.is_file():
        raise ActdiagError(f"{run_dir}: not a run directory (no {STATS} inside)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ActdiagError(
            f"{path}: corrupt or truncated stats file (invalid JSON at line "
            f"{err.lineno} column {err.colno}: {err.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ActdiagError(f"{path}: unreadable stats file ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("schema"), int):
        raise ActdiagError(f"{path}: not an actdiag stats file (no schema number)")
    if record["schema"] > SCHEMA:
        raise ActdiagError(
            f"{path}: written with stats schema {record['schema']}; this actdiag reads "
            f"up to {SCHEMA}, upgrade actdiag"
        )
    missing = [k for k in ("config", "steps", "snapshots") if k not in record]
    if missing:
        raise ActdiagError(f"{path}: corrupt stats file (missing {', '.join(missing)})")
    return record


def read_series(run_dir: Path) -> dict[str, np.ndarray]:
    """Load series.npz: `loss` (steps,) and `update_to_data` (steps, n_params)."""
    path = run_dir / SERIES
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ActdiagError(f"{path}: missing series file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ActdiagError(
            f"{path}: unreadable or corrupt series file ({err})"
        ) from None


def saturation_png(step: int, layer: int) -> str:
    """File name of the saturation picture of one layer at one snapshot."""
    return f"saturation_step{step}_layer{layer}.png"


def read_saturation_maps(run_dir: Path) -> dict[tuple[int, int], np.ndarray]:
    """Load saturation_maps.npz as {(step, layer): (batch, units) bool}, or {}."""
    path = run_dir / MAPS
    if not path.is_file():
        return {}
    try:
        with np.load(path) as data:
            maps = {}
            for key in data.files:
                match = re.fullmatch(r"step(\d+)_layer(\d+)", key)
                if match:
                    maps[(int(match[1]), int(match[2]))] = data[key].astype(bool)
            return maps
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ActdiagError(f"{path}: unreadable or corrupt maps file ({err})") from None
