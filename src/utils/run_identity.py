"""What a training job is, for the people comparing runs: its command-line overrides, the values a multirun
sweeps, the multirun it belongs to, and the run name and tags made from them (``gca_refine sca=dc seed=2``).

Read from Hydra's runtime config (``HydraConfig``); the swept keys of a grid come from the sweep folder's
``multirun.yaml`` (written by Hydra's basic sweeper before the first job starts: its overrides still hold the
``a,b,c`` / ``range()`` / ``glob()`` forms), those of an Optuna search from ``hydra.sweeper.params``.
Imports Hydra / OmegaConf only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

#: config groups whose choice does not change what is trained or measured (left out of a single run's name)
INFRASTRUCTURE_GROUPS = ("hydra", "logger", "extras", "paths", "callbacks", "trainer", "experiment", "debug",
                         "hparams_search", "local")  # fmt: skip
#: value overrides a single run's name carries (besides group choices): the method's settings and the seed
NAMED_PREFIXES = ("seed", "model", "sca", "decoder", "corruption")
#: wandb's limit on the length of a tag
MAX_TAG_CHARS = 64
MAX_NAME_CHARS = 128


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(overrides))


def _matches(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") or key.startswith(p + "/") for p in prefixes)


def _short(value: str) -> str:
    """A value as it reads in a run name: floats to 4 significant digits (Optuna's 0.000123456789...)."""
    try:
        f = float(value)
    except ValueError:
        return value
    if value.lstrip("+-").isdigit():
        return value
    return f"{f:.4g}"


def swept_keys(multirun_dir: str | Path | None, sweeper_params: Mapping[str, Any] | None) -> list[str]:
    """Keys a multirun varies: the sweep overrides of ``<multirun_dir>/multirun.yaml`` (``sca=dc,dc_thumb``,
    ``seed=range(3)``, ``+experiment=glob(*)``) and the keys of ``hydra.sweeper.params`` (Optuna's search
    space, or the basic sweeper's params)."""
    keys: list[str] = []
    path = Path(multirun_dir) / "multirun.yaml" if multirun_dir else None
    if path is not None and path.is_file():
        try:
            task = OmegaConf.load(path).hydra.overrides.task
            keys += [o.key_or_group for o in _parse(list(task)) if o.is_sweep_override()]
        except Exception as exc:  # a damaged file must not stop a training job
            log.warning("could not read the swept keys from %s: %s", path, exc)
    for key in sweeper_params or {}:
        key = str(key).lstrip("+~")
        if key not in keys:
            keys.append(key)
    return keys


def job_identity(cfg: DictConfig) -> dict[str, Any]:
    """``{"overrides", "swept", "named", "multirun"}`` of the current Hydra job:

    - ``overrides``: the job's command-line overrides (``hydra.overrides.task``, a multirun job's own values);
    - ``swept``: ``{key: value}`` of the keys its multirun varies (empty in a single run);
    - ``named``: what the run name carries: ``swept`` in a multirun; in a single run the group choices
      (``sca=dc``, ``model=gca_refine_small``; not :data:`INFRASTRUCTURE_GROUPS`) and the overrides of the
      method's settings and the seed (:data:`NAMED_PREFIXES`), not sizes, paths or Trainer flags;
    - ``multirun``: ``{"dir", "id", "job_num"}`` (``id``: the sweep folder's name), or None.
    """
    hydra_cfg = cfg.get("hydra") if "hydra" in cfg else None
    if hydra_cfg is None:
        from hydra.core.hydra_config import HydraConfig

        hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    overrides = [str(o) for o in OmegaConf.select(hydra_cfg, "overrides.task", default=[]) or []]
    parsed = _parse(overrides)
    choices = OmegaConf.select(hydra_cfg, "runtime.choices", default=None)
    groups = set(choices.keys()) if choices is not None else set()
    values = {o.key_or_group: o.get_value_element_as_str() for o in parsed if not o.is_sweep_override()}
    mode = str(OmegaConf.select(hydra_cfg, "mode", default="") or "")
    multirun = None
    swept: dict[str, str] = {}
    if mode.endswith("MULTIRUN"):
        sweep_dir = OmegaConf.select(hydra_cfg, "sweep.dir", default=None)
        params = OmegaConf.select(hydra_cfg, "sweeper.params", default=None)
        keys = swept_keys(sweep_dir, OmegaConf.to_container(params) if params is not None else None)
        swept = {k: values[k] for k in keys if k in values}
        multirun = {
            "dir": str(sweep_dir) if sweep_dir else None,
            "id": Path(str(sweep_dir)).name if sweep_dir else None,
            "job_num": OmegaConf.select(hydra_cfg, "job.num", default=None),
        }
        named = dict(swept)
    else:
        named = {
            k: v
            for k, v in values.items()
            if ("." not in k and "/" not in k and k not in INFRASTRUCTURE_GROUPS and k in groups)
            or ("." in k and _matches(k, NAMED_PREFIXES))
            or k == "seed"
        }
    return {"overrides": overrides, "swept": swept, "named": named, "multirun": multirun}


def run_name(experiment: str, named: Mapping[str, str]) -> str:
    """``"<experiment> k=v k=v"`` (the experiment's own override left out: it is the first word)."""
    parts = [str(experiment)] + [
        f"{k}={_short(v)}" for k, v in named.items() if not _matches(k, ("experiment",))
    ]
    return " ".join(parts)[:MAX_NAME_CHARS]


def run_tags(base: Sequence[str], named: Mapping[str, str], multirun: Mapping[str, Any] | None) -> list[str]:
    """``base`` tags + one ``k=v`` tag per named override (+ ``multirun:<id>``), each at most 64 characters,
    no duplicates."""
    tags = [str(t) for t in base]
    tags += [f"{k}={_short(v)}" for k, v in named.items() if not _matches(k, ("experiment",))]
    if multirun and multirun.get("id"):
        tags.append(f"multirun:{multirun['id']}")
    out: list[str] = []
    for tag in tags:
        tag = tag[:MAX_TAG_CHARS]
        if tag not in out:
            out.append(tag)
    return out


def apply_job_identity(cfg: DictConfig) -> dict[str, Any]:
    """Store the job's identity in ``cfg`` (``cfg.job``: overrides, swept values, multirun), set
    ``cfg.run_name`` (unless given) and extend ``cfg.tags``, so that the loggers (``name: ${run_name}``,
    ``tags: ${tags}``) and the logged config carry them. Returns the identity."""
    ident = job_identity(cfg)
    experiment = str(cfg.get("experiment_name") or "default")
    with open_dict(cfg):
        cfg.job = {k: ident[k] for k in ("overrides", "swept", "multirun")}
        if not cfg.get("run_name"):
            cfg.run_name = run_name(experiment, ident["named"])
        base = list(OmegaConf.to_container(cfg.tags, resolve=True)) if cfg.get("tags") else [experiment]
        cfg.tags = run_tags(base, ident["named"], ident["multirun"])
    return ident
