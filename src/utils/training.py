"""The steps of ``src.train`` that are more than one call: resuming (which checkpoint, which wandb run),
Trainer flags the GCA modules handle themselves, size checks, the non-learned pipeline's scores, and the run
files (``run_config.yaml``, ``summary.json``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from src.utils.hydra_utils import ConfigError
from src.utils.io import atomic_write_text
from src.utils.run_files import load_wandb_id, read_summary, scalar_metrics

log = logging.getLogger(__name__)

LAST_CKPT = Path("checkpoints") / "last.ckpt"


def resolve_ckpt_path(ckpt_path: str | None, run_dir: str | Path) -> str | None:
    """The checkpoint to resume from: a file path as given; ``last``: ``<run_dir>/checkpoints/last.ckpt``
    (a :class:`ConfigError` saying how to name the run when it does not exist); ``auto``: the same, or None
    (start afresh) when there is none yet; None: None."""
    if ckpt_path in (None, ""):
        return None
    last = Path(run_dir) / LAST_CKPT
    if ckpt_path in ("last", "auto"):
        if last.is_file():
            return str(last)
        if ckpt_path == "auto":
            log.info("ckpt_path=auto: no %s yet, starting afresh", last)
            return None
        raise ConfigError(
            f"ckpt_path=last: there is no {last} (this run's folder). Name the run to resume: "
            "run_dir=logs/train/runs/<run> ckpt_path=last, or ckpt_path=<run>/checkpoints/last.ckpt"
        )
    path = Path(str(ckpt_path))
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    if path.resolve().parent.parent != Path(run_dir).resolve():
        log.warning(
            "resuming from %s, a checkpoint outside this run's folder %s: a new folder and wandb run",
            path,
            run_dir,
        )
    return str(path)


def resume_wandb_run(cfg: DictConfig, run_dir: str | Path, ckpt_path: str | None) -> str | None:
    """When resuming in ``run_dir`` and the run saved a wandb id there, point the wandb logger at that run
    (``logger.wandb.id``; WandbLogger resumes with ``resume="allow"``). Returns the id or None."""
    if not ckpt_path or OmegaConf.select(cfg, "logger.wandb") is None:
        return None
    if OmegaConf.select(cfg, "logger.wandb.id", default=None):
        return str(cfg.logger.wandb.id)  # given on the command line
    run_id = load_wandb_id(run_dir)
    if run_id:
        with open_dict(cfg):
            cfg.logger.wandb.id = run_id
        log.info("resuming wandb run %s", run_id)
    return run_id


def remember_wandb_run(loggers: list[Any], run_dir: str | Path) -> str | None:
    """Save the id of the (started) wandb run beside the checkpoints, for a later resume."""
    from lightning.pytorch.loggers import WandbLogger

    from src.utils.run_files import save_wandb_id

    for lg in loggers:
        if isinstance(lg, WandbLogger):
            run_id = lg.experiment.id
            if run_id:
                save_wandb_id(run_dir, run_id)
                return str(run_id)
    return None


def handle_manual_optimization_flags(cfg: DictConfig, model: Any) -> None:
    """Trainer flags that Lightning refuses under manual optimisation (the GCA modules): hand
    ``trainer.gradient_clip_val`` to the module (it clips each network's gradient norm in its step) and
    reject ``trainer.accumulate_grad_batches > 1`` with a :class:`ConfigError`."""
    if getattr(model, "automatic_optimization", True):
        return
    clip = cfg.trainer.get("gradient_clip_val")
    if clip:
        if "gradient_clip_val" not in getattr(model, "hparams", {}):
            raise ConfigError(f"trainer.gradient_clip_val is not supported by {type(model).__name__}")
        model.hparams.gradient_clip_val = float(clip)
        with open_dict(cfg):
            cfg.trainer.gradient_clip_val = None
        log.info("trainer.gradient_clip_val=%s: clipped by the module (manual optimisation)", clip)
    if int(cfg.trainer.get("accumulate_grad_batches") or 1) > 1:
        raise ConfigError(
            "trainer.accumulate_grad_batches > 1 is not supported by the GCA modules (manual optimisation, "
            "one step per batch): raise data.batch_size instead"
        )


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


def save_run_info(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Write the resolved model, SCA and decoder configs to ``<output_dir>/run_config.yaml``, next to the
    ``checkpoints/`` folder, so ``src.restore`` / ``src.eval`` make a checkpoint's input with the SCA and
    decoder options it was trained with (``src.restoration.load_restorer``)."""

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

    from src.metrics import all_metrics
    from src.utils.images import to_uint8

    def levels(t: Any) -> np.ndarray:  # uint8 (B, H, W, 3): the loaders ship uint8 images (B, 3, H, W)
        arr = t.permute(0, 2, 3, 1).numpy()
        return arr if arr.dtype == np.uint8 else to_uint8(arr)

    metrics: dict[str, float] = {}
    for split in ("val", "test") if cfg.get("test") else ("val",):
        datamodule.setup("validate" if split == "val" else "test")
        loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
        rows: dict[str, list[float]] = {}
        for batch in loader:
            gt = levels(batch["gt"])
            for name, key in (("", "sca"), ("_thumb", "thumb"), ("_corrupted", "corrupted")):
                if key not in batch:
                    continue
                pred = levels(batch[key])
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


def _plain(cfg: DictConfig, key: str) -> Any:
    node = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def run_summary(
    cfg: DictConfig,
    run_dir: str | Path,
    status: str,
    started: float,
    metrics: dict[str, Any] | None = None,
    trainer: Any = None,
    resumed_from: str | None = None,
    wandb_id: str | None = None,
) -> dict[str, Any]:
    """The content of ``summary.json`` (see :mod:`src.utils.run_files`): identity (experiment, run name,
    tags, overrides, swept values, multirun), status, wall time over all attempts, epochs, batches, the best
    checkpoint's score, the final metrics (val and test), the wandb run id (the fit timing is added by
    :class:`src.utils.callbacks.RunRecord`).

    ``started``: ``time.time()`` when this attempt began; the wall time of earlier attempts comes from the
    previous ``summary.json`` in ``run_dir``."""
    previous = read_summary(run_dir)
    earlier = previous.get("earlier_attempts_s", 0.0) or 0.0
    attempts = int(previous.get("attempts", 0) or 0)
    if previous.get("attempt_started") != started:  # a new attempt (not a rewrite of this one)
        earlier += float(previous.get("attempt_s", 0.0) or 0.0) if previous else 0.0
        attempts += 1
    now = time.time()
    out: dict[str, Any] = {
        "experiment": cfg.get("experiment_name"),
        "run_name": cfg.get("run_name"),
        "tags": _plain(cfg, "tags"),
        "job": _plain(cfg, "job"),
        "task_name": cfg.get("task_name"),
        "seed": cfg.get("seed"),
        "status": status,
        "run_dir": str(run_dir),
        "first_started": previous.get("first_started", started),
        "attempt_started": started,
        "updated": now,
        "attempts": attempts,
        "attempt_s": now - started,
        "earlier_attempts_s": earlier,
        "wall_time_s": earlier + (now - started),
        "resumed_from": resumed_from or previous.get("resumed_from"),
        "optimized_metric": cfg.get("optimized_metric"),
        "wandb_id": wandb_id or previous.get("wandb_id"),
    }
    if trainer is not None:
        out["epochs"] = int(trainer.current_epoch)
        out["batches"] = int(trainer.fit_loop.epoch_loop._batches_that_stepped)
        out["global_step"] = int(trainer.global_step)
        ckpt = trainer.checkpoint_callback
        if ckpt is not None and getattr(ckpt, "monitor", None):
            score = ckpt.best_model_score
            out["best"] = {
                "monitor": ckpt.monitor,
                "mode": ckpt.mode,
                "value": float(score) if score is not None else None,
                "path": ckpt.best_model_path or None,
            }
    out["metrics"] = scalar_metrics(metrics or {})
    return out
