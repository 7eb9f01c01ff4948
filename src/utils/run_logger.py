"""The Lightning logger that writes a run's plain files (``metrics.csv``, ``tables/*.csv``; the formats are
described in :mod:`src.utils.run_files`)."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from src.utils.io import atomic_write_text
from src.utils.run_files import METRICS_COLUMNS, METRICS_CSV, TABLES_DIR, number


class RunFileLogger(Logger):
    """Writes ``<save_dir>/metrics.csv`` (long form, appended) and ``<save_dir>/tables/<key>.csv``.

    The file is opened per call (a few times per ``log_every_n_steps``): nothing stays open, so the logger
    pickles for ``ddp_spawn`` and a SIGKILL loses at most the row being written.
    """

    def __init__(self, save_dir: str | os.PathLike) -> None:
        super().__init__()
        self._save_dir = str(save_dir)

    @property
    def name(self) -> str:
        return "run_files"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def metrics_path(self) -> Path:
        return Path(self._save_dir) / METRICS_CSV

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The config is in the run folder already (``.hydra/config.yaml``, ``summary.json``)."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        now = f"{time.time():.3f}"
        step_text = "" if step is None else int(step)
        rows = []
        for key, value in metrics.items():
            got = number(value)
            if got is not None:
                rows.append((step_text, key, repr(got), now))
        if not rows:
            return
        path = self.metrics_path
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.is_file() or path.stat().st_size == 0
        with path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(METRICS_COLUMNS)
            writer.writerows(rows)

    @rank_zero_only
    def log_table(
        self,
        key: str,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        """``tables/<key with / as _>.csv`` (replaced: the latest table of that key)."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(list(columns or []))
        writer.writerows([list(r) for r in data or []])
        atomic_write_text(Path(self._save_dir) / TABLES_DIR / f"{key.replace('/', '_')}.csv", buf.getvalue())
