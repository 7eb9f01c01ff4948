"""Plain files every training run writes into its run folder, readable without wandb or a network:

- ``metrics.csv``: every logged value in long form, one row per (step, key): ``step,key,value,time``
  (``step``: training batches done, the step Lightning gives the loggers; ``time``: Unix seconds). Appended
  as the run goes (a killed run keeps its rows; a resumed run appends, repeating the steps after its
  checkpoint: readers keep the LAST row of each (step, key), see :func:`read_metrics`). In pandas:
  ``pd.read_csv(p).pivot_table(index="step", columns="key", values="value", aggfunc="last")``.
- ``tables/<key>.csv``: the latest table logged under ``key`` (per-image validation / test metrics).
- ``summary.json``: what the run is and what it reached (:func:`run_summary`), rewritten atomically at the
  start (``status: running``) and at the end of every attempt.
- ``checkpoints/wandb_run_id``: the id of the run's wandb run, so that a resumed run continues it.

:class:`src.utils.run_logger.RunFileLogger` (a Lightning logger, added by ``src.train`` to every run) writes
the first two; this module holds the plain functions of ``src.train`` and ``src.report`` (no torch, no
Lightning: the report starts fast).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from src.utils.io import atomic_write_text

log = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
TABLES_DIR = "tables"
WANDB_ID_FILE = Path("checkpoints") / "wandb_run_id"
METRICS_COLUMNS = ("step", "key", "value", "time")


def number(value: Any) -> float | None:
    """A logged value as a float (tensors and numpy scalars too), or None when it is not a number."""
    value = value.item() if hasattr(value, "item") else value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_metrics(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` sorted by step from a ``metrics.csv``; of repeated (step, key) rows
    (a resumed run replays the steps after its checkpoint) the last one wins. {} when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return {}
    series: dict[str, dict[int, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                step, value = int(row["step"]), float(row["value"])
            except (KeyError, TypeError, ValueError):
                continue
            series.setdefault(row["key"], {})[step] = value
    return {k: sorted(v.items()) for k, v in series.items()}


def metrics_time_span(path: str | os.PathLike) -> float | None:
    """Seconds between the first and the last row of a ``metrics.csv`` (None without two rows)."""
    path = Path(path)
    if not path.is_file():
        return None
    times = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                times.append(float(row["time"]))
            except (KeyError, TypeError, ValueError):
                continue
    return max(times) - min(times) if len(times) > 1 else None


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run's ``summary.json`` ({} when it is missing or unreadable)."""
    path = Path(run_dir) / SUMMARY_JSON
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(run_dir: str | os.PathLike, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` atomically (NaN / inf as null: strict JSON)."""

    def clean(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return _finite(v)

    return atomic_write_text(Path(run_dir) / SUMMARY_JSON, json.dumps(clean(summary), indent=2) + "\n")


def save_wandb_id(run_dir: str | os.PathLike, run_id: str) -> Path:
    """Keep the wandb run id beside the checkpoints (``checkpoints/wandb_run_id``)."""
    return atomic_write_text(Path(run_dir) / WANDB_ID_FILE, f"{run_id}\n")


def load_wandb_id(run_dir: str | os.PathLike) -> str | None:
    """The wandb run id saved by :func:`save_wandb_id`, or None."""
    path = Path(run_dir) / WANDB_ID_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def best_and_last(series: Sequence[tuple[int, float]], mode: str = "max") -> dict[str, Any]:
    """``{"best", "best_step", "last", "last_step"}`` of a metric's (step, value) series (None when empty)."""
    if not series:
        return {"best": None, "best_step": None, "last": None, "last_step": None}
    pick = max if mode == "max" else min
    best_step, best = pick(series, key=lambda sv: sv[1])
    last_step, last = series[-1]
    return {"best": best, "best_step": best_step, "last": last, "last_step": last_step}


def scalar_metrics(metrics: Mapping[str, Any], keys: Iterable[str] | None = None) -> dict[str, float]:
    """Plain floats of a metrics mapping (tensors -> floats, non-numbers dropped), optionally of ``keys``."""
    out = {}
    for k, v in metrics.items():
        if keys is not None and k not in keys:
            continue
        got = number(v)
        if got is not None:
            out[str(k)] = got
    return out
