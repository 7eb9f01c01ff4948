"""Lightning callbacks of the training runs (``conf/callbacks/``): cheap short epochs."""

from __future__ import annotations

import logging
import math
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, Timer

log = logging.getLogger(__name__)


class ShortEpochs(Callback):
    """Validation and the monitor-less (``last.ckpt``) checkpoints about every ``min_batches`` training
    batches when an epoch is shorter than that.

    A 10-photo folder makes epochs of 2-3 batches; validating and writing checkpoints after each of them costs
    far more than the training (the GPU idles). When an epoch has ``E < min_batches`` batches (after
    ``limit_train_batches``), validation runs every ``k = ceil(min_batches / E)`` epochs (``trainer.
    check_val_every_n_epoch``) and the checkpoint callbacks without a monitor save every ``k`` epochs too; the
    best-model checkpoint follows validation as before. The final epoch (``max_epochs``) always validates and
    saves, and so does the epoch in which the run stops early (``trainer.max_time`` spent, or another callback
    set ``trainer.should_stop``), so a run never ends without its last checkpoint and a best model to test.
    Epoch-wise schedules are untouched. It only acts when validation is at its defaults (every epoch,
    ``val_check_interval`` unset): explicit ``trainer.check_val_every_n_epoch`` / ``val_check_interval``
    values are left alone.

    Args:
        min_batches: validate / checkpoint at most about this often (in training batches); 0 turns it off.
    """

    def __init__(self, min_batches: int = 100) -> None:
        if int(min_batches) < 0:
            raise ValueError(f"min_batches must be >= 0, got {min_batches!r}")
        self.min_batches = int(min_batches)
        self.every = 1

    def _checkpoint_callbacks(self, trainer: Trainer) -> list[ModelCheckpoint]:
        return [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor is None]

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        batches = trainer.num_training_batches
        default_val = trainer.check_val_every_n_epoch == 1 and trainer.val_check_interval in (1, 1.0, None)
        if not self.min_batches or not default_val or not math.isfinite(batches) or batches <= 0:
            return
        if batches >= self.min_batches:
            return
        self.every = math.ceil(self.min_batches / batches)
        trainer.check_val_every_n_epoch = self.every
        for cb in self._checkpoint_callbacks(trainer):
            if cb.every_n_epochs == 1:
                cb._every_n_epochs = self.every
        log.info(
            "short epochs (%d training batches < %d): validating and writing last.ckpt every %d epochs "
            "(about every %d batches) and after the last epoch; callbacks.short_epochs.min_batches=0 "
            "turns this off",
            batches,
            self.min_batches,
            self.every,
            self.every * batches,
        )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (
            self.every > 1
            and trainer.max_epochs is not None
            and trainer.current_epoch + 1 >= trainer.max_epochs
        ):
            self._validate_this_epoch(trainer)  # the final epoch: validate and save whatever the interval

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Lightning decides on validation right after these hooks; Timer's own hook (which sets should_stop
        # when max_time is spent) may run after this one, so ask it directly
        if self.every > 1 and (trainer.should_stop or _time_is_up(trainer)):
            self._validate_this_epoch(trainer)

    def _validate_this_epoch(self, trainer: Trainer) -> None:
        trainer.check_val_every_n_epoch = 1
        for cb in self._checkpoint_callbacks(trainer):
            cb._every_n_epochs = 1

    def state_dict(self) -> dict[str, Any]:
        return {"min_batches": self.min_batches}


def _time_is_up(trainer: Trainer) -> bool:
    """Whether ``trainer.max_time`` is spent (Lightning's Timer callback stops the fit at this batch)."""
    for cb in trainer.callbacks:
        if isinstance(cb, Timer):
            remaining = cb.time_remaining("train")
            return remaining is not None and remaining <= 0
    return False


class RunRecord(Callback):
    """Times this process's ``fit`` and keeps ``summary.json`` current: written when training starts, after
    every validation and when training ends (rank 0), so a killed run still says how far it got.
    ``src.train`` adds it to every run and writes the final summary after testing (:meth:`write`).

    Timing: training batches done and seconds from the start to the end of this attempt's training loop
    (validation included: the throughput a user gets)."""

    def __init__(self, cfg: Any, run_dir: str, started: float, resumed_from: str | None = None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.started = started
        self.resumed_from = resumed_from
        self.wandb_id: str | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.start_batches = 0
        self.end_batches = 0

    @staticmethod
    def _batches(trainer: Trainer) -> int:
        return int(trainer.fit_loop.epoch_loop._batches_that_stepped)

    def write(
        self, status: str, trainer: Trainer | None = None, metrics: dict[str, Any] | None = None
    ) -> None:
        """Rewrite ``summary.json`` (rank 0 only)."""
        if trainer is not None and not trainer.is_global_zero:
            return
        from src.utils.run_files import write_summary
        from src.utils.training import run_summary

        if metrics is None and trainer is not None:
            metrics = dict(trainer.callback_metrics)
        summary = run_summary(
            self.cfg, self.run_dir, status, self.started, metrics, trainer, self.resumed_from, self.wandb_id
        )
        if self.seconds:
            summary["fit_s"] = self.seconds
            summary["batches_per_s"] = self.batches / self.seconds if self.batches else None
        write_summary(self.run_dir, summary)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        import time

        self.start_time = time.perf_counter()
        self.start_batches = self._batches(trainer)  # restored from a checkpoint when resuming
        self.write("running", trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.start_time is None:
            return
        import time

        self.end_time = time.perf_counter()
        self.end_batches = self._batches(trainer)
        self.write("running", trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        import time

        self.end_time = time.perf_counter()
        self.end_batches = self._batches(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        import time

        if self.start_time is not None:
            self.end_time, self.end_batches = time.perf_counter(), self._batches(trainer)
        self.write("failed" if not isinstance(exception, KeyboardInterrupt) else "interrupted", trainer)

    @property
    def seconds(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    @property
    def batches(self) -> int:
        return max(self.end_batches - self.start_batches, 0)
