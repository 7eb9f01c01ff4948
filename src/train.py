"""Training entry point: ``python -m src.train experiment=gca_refine [overrides]``.

Flow (lightning-hydra-template): seed -> the job's identity (run name and tags with its swept overrides) ->
DataModule, model, callbacks, loggers, Trainer from the config -> ``fit`` (resuming continues the run in its
own folder and wandb run) -> ``test`` on the best checkpoint -> ``summary.json`` -> the value of
``optimized_metric`` for sweepers. With ``model: null`` (``experiment=sca_only``) there is nothing to train:
the non-learned pipeline is scored on the validation and test images instead. Every run writes
``metrics.csv`` and ``summary.json`` into its folder (``src/utils/run_files.py``), which
``python -m src.report`` reads.

Examples::

    python -m src.train experiment=gca_refine                          # bundled photos, wandb offline
    python -m src.train experiment=gca_refine data=cityscapes data.root=/data/cityscapes/leftImg8bit
    python -m src.train experiment=gca_refine trainer=gpu debug=fdr   # one batch of everything, on the GPU
    python -m src.train -m experiment=gca_refine sca=paper,dc,dc_thumb debug=limit   # an ablation grid
    python -m src.train experiment=gca_refine ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import hydra
from omegaconf import DictConfig

from src.utils.hydra_utils import (
    extras,
    get_metric_value,
    normalize_group_overrides,
    route_lightning_logs,
    set_project_root,
    task_wrapper,
)

log = logging.getLogger(__name__)
set_project_root()


def _metrics(trainer: Any) -> dict[str, float]:
    return {k: float(v.item() if hasattr(v, "item") else v) for k, v in trainer.callback_metrics.items()}


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (unless ``train=false``) and test (unless ``test=false``); returns (metrics, objects)."""
    import lightning as L

    from src.utils import instantiators as inst
    from src.utils import training as tr
    from src.utils.callbacks import RunRecord
    from src.utils.run_identity import apply_job_identity
    from src.utils.run_logger import RunFileLogger

    route_lightning_logs()
    started, run_dir = time.time(), str(cfg.paths.output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    apply_job_identity(cfg)
    ckpt_path = tr.resolve_ckpt_path(cfg.get("ckpt_path"), run_dir)
    tr.resume_wandb_run(cfg, run_dir, ckpt_path)
    log.info("run %r in %s", cfg.run_name, run_dir)

    log.info("instantiating the datamodule <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data)
    loggers = [*inst.instantiate_loggers(cfg.get("logger")), RunFileLogger(run_dir)]
    record = RunRecord(cfg, run_dir, started, resumed_from=ckpt_path)

    if cfg.get("model") is None:
        log.info("no model configured: scoring the non-learned pipeline (SCA input and thumbnail)")
        inst.log_hyperparameters(cfg, None, loggers)
        record.wandb_id = tr.remember_wandb_run(loggers, run_dir)
        metrics = tr.score_pipeline(cfg, datamodule, loggers)
        record.write("finished", metrics=metrics)
        return metrics, {"cfg": cfg, "datamodule": datamodule, "loggers": loggers}

    log.info("instantiating the model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model)
    tr.check_sizes(model, datamodule)
    tr.handle_manual_optimization_flags(cfg, model)
    callbacks = [*inst.instantiate_callbacks(cfg.get("callbacks")), record]
    log.info("instantiating the trainer <%s>", cfg.trainer._target_)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    objects = {"cfg": cfg, "datamodule": datamodule, "model": model, "callbacks": callbacks}
    objects.update({"loggers": loggers, "trainer": trainer})
    inst.log_hyperparameters(cfg, model, trainer.loggers)
    if trainer.is_global_zero:
        tr.save_run_info(cfg, run_dir)
        record.wandb_id = tr.remember_wandb_run(trainer.loggers, run_dir)
        goals = inst.summary_goals(trainer, model, cfg.get("optimized_metric"))
        inst.define_best_summaries(trainer.loggers, goals)

    if cfg.get("train"):
        log.info("training%s", f", resuming from {ckpt_path}" if ckpt_path else "")
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = _metrics(trainer)

    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("no best checkpoint (fast_dev_run, no validation or no ModelCheckpoint): testing the "
                        "weights as they are")  # fmt: skip
        log.info("testing (checkpoint: %s)", best or "current weights")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(_metrics(trainer))
    ckpt_cb = trainer.checkpoint_callback
    if ckpt_cb is not None and getattr(ckpt_cb, "best_model_score", None) is not None:
        metrics[ckpt_cb.monitor] = float(ckpt_cb.best_model_score)  # the best epoch's value, not the last one
        log.info("best checkpoint: %s", ckpt_cb.best_model_path)
    record.write("finished", trainer, metrics)
    return metrics, objects


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric (for sweepers)."""
    extras(cfg)
    metrics, _ = train(cfg)
    return get_metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *normalize_group_overrides(sys.argv[1:])]
    main()
