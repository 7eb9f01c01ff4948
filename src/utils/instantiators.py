"""Build Lightning callbacks and loggers from Hydra config groups, and log the run's hyper-parameters."""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.hydra_utils import ConfigError

log = logging.getLogger(__name__)


def _instantiate_group(cfg: DictConfig | None, what: str) -> list[Any]:
    if not cfg:
        log.info("no %s configured", what)
        return []
    if not isinstance(cfg, DictConfig):
        raise ConfigError(
            f"the {what} config must be a mapping of name -> {{_target_: ...}}, got {type(cfg)}"
        )
    out = []
    for name, node in cfg.items():
        if isinstance(node, DictConfig) and "_target_" in node:
            log.info("instantiating %s %s <%s>", what[:-1], name, node._target_)
            out.append(hydra.utils.instantiate(node))
    return out


def instantiate_callbacks(cfg: DictConfig | None) -> list[Any]:
    """Lightning callbacks from the ``callbacks`` group (entries without ``_target_`` are ignored)."""
    return _instantiate_group(cfg, "callbacks")


def instantiate_loggers(cfg: DictConfig | None) -> list[Any]:
    """Lightning loggers from the ``logger`` group (entries without ``_target_`` are ignored)."""
    return _instantiate_group(cfg, "loggers")


def drop_callbacks_needing_a_logger(callbacks: list[Any], loggers: list[Any]) -> list[Any]:
    """Without a logger, ``LearningRateMonitor`` raises at the start of training: leave it out then."""
    if loggers:
        return callbacks
    from lightning.pytorch.callbacks import LearningRateMonitor

    kept = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if len(kept) != len(callbacks):
        log.info("no logger: leaving out the LearningRateMonitor callback")
    return kept


def log_hyperparameters(cfg: DictConfig, model: Any, loggers: list[Any]) -> None:
    """Send the resolved config (the job's identity, data, corruption, decoder, sca, model, trainer, ...)
    plus parameter counts to every logger in ``loggers`` (e.g. ``trainer.loggers``; rank 0 only; no-op
    without loggers). ``model`` may be None (``experiment=sca_only``)."""
    if not loggers:
        return
    hparams: dict[str, Any] = {}
    keys = (
        "experiment_name",
        "run_name",
        "task_name",
        "tags",
        "seed",
        "ckpt_path",
        "optimized_metric",
        "job",
    )
    for key in keys:
        if key in cfg:
            hparams[key] = (
                OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            )
    for key in ("data", "corruption", "decoder", "sca", "model", "trainer", "callbacks"):
        if key in cfg and cfg[key] is not None:
            hparams[key] = OmegaConf.to_container(cfg[key], resolve=True)
    if model is not None:
        params = list(model.parameters())
        hparams["model/params/total"] = sum(p.numel() for p in params)
        hparams["model/params/trainable"] = sum(p.numel() for p in params if p.requires_grad)
    for lg in loggers:
        lg.log_hyperparams(hparams)


def summary_goals(trainer: Any, model: Any, optimized_metric: str | None) -> dict[str, str]:
    """``{metric: "max"|"min"}`` whose best value the run summary should hold: every checkpoint monitor
    (with its mode), the optimised metric (max unless a monitor says otherwise) and the module's validation
    metrics (``val/<name>``: PSNR / SSIM, higher is better)."""
    hparams = getattr(model, "hparams", None) or {}
    goals = {f"val/{m}": "max" for m in hparams.get("val_metrics", ())}
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None):
            goals[cb.monitor] = cb.mode
    if optimized_metric:
        goals.setdefault(optimized_metric, "max")
    return goals


def define_best_summaries(loggers: list[Any], goals: dict[str, str]) -> list[str]:
    """``define_metric(name, summary="max"|"min")`` on every wandb logger's run for ``goals``
    (:func:`summary_goals`), so the wandb summary holds the best value (what the sweeper and the best
    checkpoint use), not the last one. Exact names: this wandb ignores summaries on glob patterns. Returns the
    names defined (empty without a wandb logger)."""
    from lightning.pytorch.loggers import WandbLogger

    done: list[str] = []
    for lg in loggers:
        if not isinstance(lg, WandbLogger):
            continue
        run = lg.experiment
        if not hasattr(run, "define_metric"):
            continue
        for name, mode in goals.items():
            run.define_metric(name, step_metric="trainer/global_step", summary=mode)
            done.append(name)
    return done
