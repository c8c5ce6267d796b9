"""One experiment end to end: config -> data -> training -> run directory.

Used by `actdiag run` and by every sweep point, so both give identical results.
Prints nothing; progress goes through the callback.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actdiag import artifacts, findings
from actdiag.config import Config
from actdiag.data import DEFAULT_DATA, load_dataset
from actdiag.errors import ActdiagError
from actdiag.train import ProgressFn, resolve_device, train


@dataclass
class Run:
    """Where a finished run lives and what it recorded."""

    run_dir: Path
    stats: dict
    series: dict[str, np.ndarray]


def data_path(cfg: Config) -> Path:
    """The words file of a config: its `data` key, or the shipped names file."""
    return Path(cfg.data) if cfg.data else DEFAULT_DATA


def run_experiment(
    cfg: Config,
    name: str,
    out: Path | None = None,
    progress: ProgressFn | None = None,
    plots: bool = True,
    on_start: Callable[[Path], None] | None = None,
) -> Run:
    """Train `cfg` and write its run directory (config, stats, series, plots).

    The data is read before the directory is made, so bad data leaves nothing
    behind; `on_start(run_dir)` is called once training is about to begin.
    """
    path = data_path(cfg)
    dataset = load_dataset(path, cfg.context, cfg.split_seed)
    resolve_device(cfg.device)
    run_dir = artifacts.make_run_dir(name, out)
    artifacts.write_config(run_dir, cfg.to_dict())
    if on_start:
        on_start(run_dir)

    # train, then read the numbers into findings written with the stats
    try:
        result = train(cfg, dataset, progress)
    except (RuntimeError, MemoryError) as err:
        _remove_if_bare(run_dir)
        if isinstance(err, MemoryError) or "alloc" in str(err):
            raise ActdiagError(
                "training ran out of memory; lower batch_size or width"
            ) from None
        raise
    series = {"loss": result.loss, "update_to_data": result.update_to_data}
    stats = artifacts.write_run(
        run_dir,
        result,
        name,
        path,
        lambda record: findings.findings_record(record, series),
    )

    # pictures, then the page that gathers everything
    if plots:
        from actdiag.plots import plot_run
        from actdiag.report import write_run_report

        maps = artifacts.read_saturation_maps(run_dir)
        plot_run(run_dir, stats, series, maps)
        write_run_report(run_dir)
    return Run(run_dir, stats, series)


def _remove_if_bare(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but its config."""
    if {p.name for p in run_dir.iterdir()} <= {artifacts.CONFIG}:
        shutil.rmtree(run_dir)
