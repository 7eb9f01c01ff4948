"""Training entry point: ``python -m src.train +experiment=gca_refine [overrides]``.

Flow (lightning-hydra-template): seed -> DataModule, model, callbacks, loggers, Trainer from the config ->
``fit`` (``ckpt_path=.../checkpoints/last.ckpt`` resumes: the epoch and step counts continue) -> ``test`` on
the best checkpoint -> the value of ``optimized_metric`` for sweepers. With ``model: null``
(``+experiment=sca_only``) there is nothing to train: the non-learned pipeline is scored on the validation
and test images instead.

Examples::

    python -m src.train +experiment=gca_refine                          # bundled photos, wandb offline
    python -m src.train +experiment=gca_refine data=cityscapes data.root=/data/cityscapes/leftImg8bit
    python -m src.train +experiment=gca_refine +debug=fdr trainer=gpu                # one batch of everything
    python -m src.train -m +experiment=no_sca,no_edge_loss +debug=fdr    # a multirun over two ablations
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.hydra_utils import ConfigError, extras, get_metric_value, set_project_root, task_wrapper

log = logging.getLogger(__name__)
set_project_root()


def _metrics(trainer: Any) -> dict[str, float]:
    return {k: float(v.item() if hasattr(v, "item") else v) for k, v in trainer.callback_metrics.items()}


def save_run_info(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Write the resolved model, SCA and decoder configs to ``<output_dir>/run_config.yaml``, next to the
    ``checkpoints/`` folder, so ``src.restore`` / ``src.eval`` make a checkpoint's input with the SCA and
    decoder options it was trained with (``src.restoration.load_restorer``)."""
    from src.utils import atomic_write_text

    def plain(key: str) -> Any:
        node = OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    info = {k: plain(k) for k in ("experiment_name", "model", "sca", "decoder")}
    info["size_multiple"] = plain("data.size_multiple")
    info["scale"] = plain("data.scale")
    return atomic_write_text(Path(output_dir) / "run_config.yaml", OmegaConf.to_yaml(OmegaConf.create(info)))


def score_pipeline(cfg: DictConfig, datamodule: Any, loggers: list[Any]) -> dict[str, float]:
    """Per-image means of the non-learned pipeline's metrics (the SCA image, i.e. the network input, and the
    thumbnail alone) on the val and test splits, logged as ``val/psnr_y`` ... like a model's."""
    import numpy as np

    from src.data.dataset import batch_to_float
    from src.metrics import all_metrics

    metrics: dict[str, float] = {}
    for split in ("val", "test") if cfg.get("test") else ("val",):
        datamodule.setup("validate" if split == "val" else "test")
        loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
        rows: dict[str, list[float]] = {}
        for batch in loader:
            batch = batch_to_float(batch)  # uint8 images from the loader; no Trainer hook runs here
            gt = (batch["gt"].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            for name, key in (("", "sca"), ("_thumb", "thumb"), ("_corrupted", "corrupted")):
                if key not in batch:
                    continue
                pred = (batch[key].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
                for p, g in zip(pred, gt, strict=True):
                    for metric, value in all_metrics(p, g).items():
                        rows.setdefault(f"{split}/{metric}{name}", []).append(value)
        split_metrics = {k: float(np.mean(v)) for k, v in rows.items()}
        log.info("%s: %s", split, {k: round(v, 3) for k, v in split_metrics.items()})
        for lg in loggers:
            lg.log_metrics(split_metrics, step=0)
        metrics.update(split_metrics)
    for lg in loggers:
        lg.save()
        lg.finalize("success")
    return metrics


def check_sizes(model: Any, datamodule: Any) -> None:
    """Training crops and evaluation images are multiples of ``data.size_multiple``; the networks need
    multiples of ``model.net.required_multiple``. Raises a :class:`ConfigError` saying what to set."""
    need = getattr(getattr(model, "net", None), "required_multiple", None)
    have = getattr(datamodule, "size_multiple", None)
    if need and have and have % int(need):
        raise ConfigError(
            f"data.size_multiple={have} is not a multiple of {need}, which the model's networks need "
            f"(coarse downsamplings and refine levels): set data.size_multiple={need} or a multiple of it"
        )


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (unless ``train=false``) and test (unless ``test=false``); returns (metrics, objects)."""
    import lightning as L

    from src.utils.instantiators import (
        drop_callbacks_needing_a_logger,
        instantiate_callbacks,
        instantiate_loggers,
        log_hyperparameters,
    )

    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    log.info("instantiating the datamodule <%s>", cfg.data._target_)
    datamodule = hydra.utils.instantiate(cfg.data)
    loggers = instantiate_loggers(cfg.get("logger"))

    if cfg.get("model") is None:
        log.info("no model configured: scoring the non-learned pipeline (SCA input and thumbnail)")
        metrics = score_pipeline(cfg, datamodule, loggers)
        return metrics, {"cfg": cfg, "datamodule": datamodule, "loggers": loggers}

    log.info("instantiating the model <%s>", cfg.model._target_)
    model = hydra.utils.instantiate(cfg.model)
    check_sizes(model, datamodule)
    callbacks = drop_callbacks_needing_a_logger(instantiate_callbacks(cfg.get("callbacks")), loggers)
    log.info("instantiating the trainer <%s>", cfg.trainer._target_)
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    objects = {
        "cfg": cfg,
        "datamodule": datamodule,
        "model": model,
        "callbacks": callbacks,
        "loggers": loggers,
        "trainer": trainer,
    }
    log_hyperparameters(cfg, model, trainer)
    if trainer.is_global_zero:
        save_run_info(cfg, cfg.paths.output_dir)

    if cfg.get("train"):
        log.info("training%s", f", resuming from {cfg.ckpt_path}" if cfg.get("ckpt_path") else "")
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_metrics = _metrics(trainer)

    test_metrics: dict[str, float] = {}
    if cfg.get("test"):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning(
                "no best checkpoint (fast_dev_run, no validation or no ModelCheckpoint): "
                "testing the weights as they are"
            )
            best = None
        log.info("testing (checkpoint: %s)", best or "current weights")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best)
        test_metrics = _metrics(trainer)
        if best:
            log.info("best checkpoint: %s", best)
    metrics = {**train_metrics, **test_metrics}
    ckpt_cb = trainer.checkpoint_callback
    if ckpt_cb is not None and getattr(ckpt_cb, "best_model_score", None) is not None:
        metrics[ckpt_cb.monitor] = float(ckpt_cb.best_model_score)  # the best epoch's value, not the last one
    return metrics, objects


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric (for sweepers)."""
    extras(cfg)
    metrics, _ = train(cfg)
    return get_metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
