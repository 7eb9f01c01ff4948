"""Glue for the Hydra entry points (``src.train``, ``src.eval``, ``src.restore``, ``src.corrupt``): project
root, the code-defined presets in Hydra's config store, the task wrapper, config printing, optional extras,
metric lookup, the command-line spelling of the optional groups, the run folder of a resumed run and the
console routing of Lightning's log lines. Imports Hydra / OmegaConf, never torch at import time.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import rich
import rich.syntax
import rich.tree
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from src.errors import BitstreamRestoreError
from src.jpeg.presets import DECODER_PRESETS
from src.sca.presets import SCA_PRESETS
from src.utils.io import atomic_write_text

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(BitstreamRestoreError):
    """A config value the entry points cannot use (unknown metric name, missing required key)."""


def set_project_root() -> Path:
    """Set ``PROJECT_ROOT`` (read by ``conf/paths/default.yaml``) to the repository root unless already
    set, and register the presets (:func:`register_presets`)."""
    os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
    register_presets()
    return Path(os.environ["PROJECT_ROOT"])


def register_presets() -> None:
    """Put the presets defined in code into Hydra's config store, where ``conf/sca/<m>.yaml`` and
    ``conf/decoder/<s>.yaml`` extend them: ``presets/sca/<method>`` (``src.sca.presets.SCA_PRESETS``) and
    ``presets/decoder/<strategy>`` (``src.jpeg.presets.DECODER_PRESETS``). Idempotent."""
    store = ConfigStore.instance()
    for group, presets in (("presets/sca", SCA_PRESETS), ("presets/decoder", DECODER_PRESETS)):
        for name, options in presets.items():
            store.store(group=group, name=name, node=dict(options))


#: config groups with a ``null`` entry in ``conf/train.yaml``'s defaults (applied in that order, whatever
#: their order on the command line)
OPTIONAL_GROUPS = ("experiment", "hparams_search", "debug")


#: Trainer flags that ``conf/trainer/default.yaml`` lists (once only settable with ``+trainer.NAME=``)
TRAINER_FLAGS = (
    "max_time", "max_steps", "limit_train_batches", "limit_val_batches", "limit_test_batches",
    "val_check_interval", "check_val_every_n_epoch", "log_every_n_steps", "accumulate_grad_batches",
    "gradient_clip_val",
)  # fmt: skip


def normalize_group_overrides(args: Sequence[str]) -> list[str]:
    """Command-line arguments with ``+experiment=X`` / ``+hparams_search=X`` / ``+debug=X`` spelt
    ``experiment=X`` ...: these groups have a ``null`` entry in ``conf/train.yaml``'s defaults (so the order
    of ``experiment=`` and ``debug=`` on the command line does not matter), and Hydra refuses to append
    (``+``) a group that the defaults already list. The ``+`` spelling of earlier command lines keeps
    working through this; so does ``+trainer.max_time=...`` for the :data:`TRAINER_FLAGS` the trainer
    configs now list (Hydra refuses to append a key that exists)."""
    prefixes = [f"+{group}=" for group in OPTIONAL_GROUPS] + [f"+trainer.{flag}=" for flag in TRAINER_FLAGS]
    return [arg[1:] if any(arg.startswith(p) for p in prefixes) else arg for arg in args]


def resume_run_folder(run_dir: str | None, ckpt_path: str | None, default: str) -> str:
    """The folder of a training run (``hydra.run.dir`` of ``conf/hydra/train.yaml``): ``run_dir`` when
    given; the run that holds ``ckpt_path`` when it is a file inside a ``checkpoints/`` folder (a resumed
    run writes into its own folder); else ``default`` (a new dated folder)."""
    if run_dir not in (None, "", "None"):
        return str(run_dir)
    if ckpt_path not in (None, "", "None", "last", "auto"):
        path = Path(str(ckpt_path))
        if path.parent.name == "checkpoints":
            return str(path.parent.parent)
    return default


def register_resolvers() -> None:
    """OmegaConf resolvers of the configs (``${resume_run_folder:...}``); idempotent."""
    if not OmegaConf.has_resolver("resume_run_folder"):
        OmegaConf.register_new_resolver("resume_run_folder", resume_run_folder)


def route_lightning_logs() -> None:
    """Lightning adds its own console handler to the ``lightning`` loggers; under Hydra (whose root handlers
    print and write ``<task>.log``) every line would show twice. Drop those console handlers and let the
    records propagate to the root handlers. No-op while the root logger has no handler."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lg = logging.getLogger(name)
        for handler in list(lg.handlers):
            if type(handler) is logging.StreamHandler:
                lg.removeHandler(handler)
        lg.propagate = True


def rank_zero() -> bool:
    """True in the process of global rank 0 (from the launcher's environment; True when not distributed)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "JSM_NAMESPACE_RANK"):
        if var in os.environ:
            return int(os.environ[var]) == 0
    return True


def finish_wandb() -> None:
    """Close the wandb run of this process if one is open (each multirun job must log its own run)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        log.info("closing the wandb run")
        wandb.finish()


def task_wrapper(task_func: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Run ``task_func(cfg)`` so that a failure is logged with the run folder before it propagates (a
    project error without its traceback: the entry point reports it in one line), and the wandb run is always
    closed (multiruns would otherwise merge their runs)."""

    @functools.wraps(task_func)
    def wrap(cfg: DictConfig) -> Any:
        try:
            return task_func(cfg)
        except BitstreamRestoreError as exc:
            log.error("the task failed: %s", exc)
            raise
        except Exception:
            log.exception("the task failed")
            raise
        finally:
            out = OmegaConf.select(cfg, "paths.output_dir", default=None)
            if out:
                log.info("output folder: %s", out)
            finish_wandb()

    return wrap


def print_config_tree(
    cfg: DictConfig,
    fields: Sequence[str] = (
        "data",
        "corruption",
        "decoder",
        "sca",
        "model",
        "callbacks",
        "logger",
        "trainer",
    ),
    resolve: bool = False,
    save_to: str | os.PathLike | None = None,
) -> None:
    """Print the config as a rich tree (the ``fields`` first, then the rest); optionally save it as text."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    order = [f for f in fields if f in cfg] + [k for k in cfg if k not in fields and k != "hydra"]
    for name in order:
        branch = tree.add(str(name), style="bold", guide_style="dim")
        node = cfg[name]
        text = OmegaConf.to_yaml(node, resolve=resolve) if isinstance(node, DictConfig) else str(node)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    if rank_zero():
        rich.print(tree)
        if save_to is not None:
            console = Console(file=io.StringIO(), record=True, width=120)  # records, prints nothing
            console.print(tree)
            atomic_write_text(save_to, console.export_text())


def extras(cfg: DictConfig) -> None:
    """Optional conveniences before the task (``cfg.extras``): silence Python warnings, print the config;
    logs what a ``debug=`` config changed beyond its purpose (``debug_note``)."""
    note = cfg.get("debug_note")
    if note:
        log.warning("debug config: %s", note)
    opts = cfg.get("extras")
    if not opts:
        return
    if opts.get("ignore_warnings"):
        log.info("ignoring Python warnings (extras.ignore_warnings=true)")
        warnings.filterwarnings("ignore")
    if opts.get("print_config"):
        out = OmegaConf.select(cfg, "paths.output_dir", default=None)
        print_config_tree(cfg, resolve=True, save_to=Path(out) / "config_tree.log" if out else None)


def get_metric_value(metric_dict: Mapping[str, Any], metric_name: str | None) -> float | None:
    """The value of ``metric_name`` in ``metric_dict`` as a float (for sweepers); None if no name is given.
    Raises :class:`ConfigError` naming the available metrics if it is missing."""
    if not metric_name:
        log.info("no optimized_metric set: returning None to the sweeper")
        return None
    if metric_name not in metric_dict:
        raise ConfigError(
            f"optimized_metric {metric_name!r} was not logged; available: {sorted(metric_dict)}. "
            "Set optimized_metric to one of them."
        )
    value = metric_dict[metric_name]
    value = float(value.item() if hasattr(value, "item") else value)
    log.info("optimized metric %s = %s", metric_name, value)
    return value


register_resolvers()
