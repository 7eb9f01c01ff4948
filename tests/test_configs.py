"""Hydra configs: every experiment composes with ``experiment=`` and instantiates; so do the entry points.

Also holds the compose helpers the other framework tests import (``from test_configs import compose_config``).
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from src.sca.presets import SCA_PRESETS
from src.utils.hydra_utils import register_presets

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
ABLATIONS = ("no_thumbnail", "no_sca", "sca_paper", "no_refine", "no_edge_loss", "decoder_strict")
#: small and fast data for tests: 256x128 corruption, 128x64 images, 64x64 crops
SMALL_DATA = (
    "data=samples",
    "data.corruption_size=[256,128]",
    "data.scale=[128,64]",
    "data.crop=[64,64]",
    "data.size_multiple=64",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.splits.train=[astronaut,camera]",
    "data.splits.val=[coffee]",
    "data.splits.test=[chelsea]",
    "corruption.ber=3e-4",
)

os.environ.setdefault("PROJECT_ROOT", str(ROOT))


def compose_config(name: str, overrides: list[str] | tuple[str, ...], tmp_path: Path) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with ``overrides`` like ``python -m src.<name>`` would, with the run
    folder set to ``tmp_path`` and the HydraConfig registered (so ``${hydra:...}`` resolves)."""
    GlobalHydra.instance().clear()
    register_presets()  # conf/sca and conf/decoder extend the code's presets (the entry points do this too)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
        cfg.hydra.job.num = 0
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path / "logs")
        if "extras" in cfg:
            cfg.extras.print_config = False
    HydraConfig().set_config(cfg)
    GlobalHydra.instance().clear()
    return cfg


def test_train_defaults_list_experiment_then_debug_as_null_entries() -> None:
    defaults = OmegaConf.to_container(OmegaConf.load(CONF / "train.yaml"))["defaults"]
    entries = [next(iter(d.items())) if isinstance(d, dict) else (d, None) for d in defaults]
    groups = [g for g, _ in entries]
    nulls = [g for g, v in entries if v is None and g in ("experiment", "hparams_search", "debug")]
    assert nulls == ["experiment", "hparams_search", "debug"]  # applied in this order
    assert groups.index("debug") > groups.index("experiment") > groups.index("trainer")
    assert {"data", "corruption", "decoder", "sca", "model", "trainer", "logger", "callbacks"} <= set(groups)


@pytest.mark.parametrize(
    "order",
    [
        ("experiment=demo", "debug=overfit"),
        ("debug=overfit", "experiment=demo"),
        ("+experiment=demo", "+debug=overfit"),  # the older spelling, through normalize_group_overrides
        ("+debug=overfit", "+experiment=demo"),
    ],
)
def test_experiment_and_debug_order_does_not_matter(order: tuple[str, str], tmp_path: Path) -> None:
    from src.utils.hydra_utils import normalize_group_overrides

    cfg = compose_config("train", normalize_group_overrides([*order, "data.num_workers=3"]), tmp_path)
    # the experiment's values ... (demo: the small model on CPU, validation every 5 epochs)
    assert cfg.experiment_name == "demo" and cfg.trainer.accelerator == "cpu"
    assert cfg.model.generator.ngf == 8
    # ... lose to the debug config's (overfit: 50 epochs, validation every 10), which lose to the command line
    assert cfg.trainer.max_epochs == 50 and cfg.trainer.check_val_every_n_epoch == 10
    assert cfg.task_name == "debug" and cfg.data.resample is False
    assert cfg.data.num_workers == 3


def test_common_trainer_flags_override_without_plus(tmp_path: Path) -> None:
    flags = {
        "max_time": "00:00:10:00",
        "max_steps": 40,
        "limit_train_batches": 5,
        "limit_val_batches": 0.5,
        "limit_test_batches": 2,
        "val_check_interval": 3,
        "check_val_every_n_epoch": 2,
        "log_every_n_steps": 7,
        "accumulate_grad_batches": 1,
        "gradient_clip_val": 0.5,
    }
    cfg = compose_config("train", [f"trainer.{k}={v}" for k, v in flags.items()], tmp_path)
    assert {k: cfg.trainer[k] for k in flags} == flags
    from src.utils.hydra_utils import normalize_group_overrides  # older command lines: +trainer.max_time=...

    old = normalize_group_overrides([f"+trainer.{k}={v}" for k, v in flags.items()])
    assert compose_config("train", old, tmp_path).trainer == cfg.trainer
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[], accelerator="cpu")
    assert trainer.max_steps == 40 and trainer.limit_train_batches == 5 and trainer.log_every_n_steps == 7


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [f"experiment={experiment}", *SMALL_DATA, "trainer=cpu"], tmp_path)
    assert cfg.experiment_name == experiment  # the wandb group and first tag
    assert cfg.tags[0] == experiment and cfg.optimized_metric == "val/psnr_y"
    assert cfg.logger.wandb.group == experiment and cfg.logger.wandb.save_dir == str(tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    assert dm.corruption_size == (256, 128) and dm.corruptor.ber == pytest.approx(3e-4)
    assert dm.pipeline.sca["method"] == cfg.sca.method and dm.pipeline.decoder == OmegaConf.to_container(
        cfg.decoder
    )
    if cfg.get("model") is None:
        assert experiment == "sca_only" and cfg.train is False
        return
    model = hydra.utils.instantiate(cfg.model)
    # every training crop and evaluation image size is a multiple of what the networks need
    assert cfg.data.size_multiple % model.net.required_multiple == 0
    callbacks = [hydra.utils.instantiate(c) for c in cfg.callbacks.values() if "_target_" in c]
    loggers = [hydra.utils.instantiate(c) for c in cfg.logger.values() if "_target_" in c]
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert (
        trainer.max_epochs == cfg.trainer.max_epochs and trainer.checkpoint_callback.monitor == "val/psnr_y"
    )


def test_ablations_change_what_they_say(tmp_path: Path) -> None:
    base = compose_config("train", ["experiment=gca_refine"], tmp_path)

    def diff(experiment: str) -> DictConfig:
        return compose_config("train", [f"experiment={experiment}"], tmp_path)

    assert base.sca.method == "dc_thumb" and base.model.use_thumbnail is True
    nt = diff("no_thumbnail")
    assert nt.sca.method == "dc" and nt.model.use_thumbnail is False
    assert diff("no_sca").sca.method == "none" and diff("sca_paper").sca.method == "paper"
    assert diff("no_refine").model._target_.endswith("CoarseGANModule")
    ne = diff("no_edge_loss")
    assert ne.model.lambda_edge == 0 and ne.model.lambda_edge_refined == 0
    assert diff("decoder_strict").decoder.strategy == "strict"
    for name in ABLATIONS:
        assert "ablation" in diff(name).tags
    # command-line values beat the experiment's, and debug beats the experiment; the logger stays
    cfg = compose_config("train", ["debug=fdr", "experiment=no_sca", "sca=dc"], tmp_path)
    assert cfg.sca.method == "dc" and cfg.trainer.fast_dev_run is True and "wandb" in cfg.logger


@pytest.mark.parametrize("data", ["samples", "folder", "cityscapes", "div2k", "mate"])
def test_data_groups_compose(data: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [f"data={data}"], tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    if data == "cityscapes":
        assert dm.splits == {"train": "train", "val": "val", "test": "test"}
        assert dm.corruption_size == (2048, 1024) and dm.scale == (512, 256)
    if data == "samples":  # no photo in two splits: the checkpoint chosen on val is scored on unseen photos
        dm.setup()
        keys = {split: {item.key for item in dm.items[split]} for split in ("train", "val", "test")}
        assert all(keys.values()) and not (keys["val"] & keys["test"]) and not (keys["train"] & keys["test"])
        assert not keys["train"] & keys["val"]
    if data in ("folder", "cityscapes", "div2k"):  # no root given: a clear error before any training step
        from src.data import DatasetError

        with pytest.raises(DatasetError, match=r"data\.root is not set"):
            dm.setup("fit")


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_cpu", "ddp_spawn_cpu"])
def test_trainer_groups_compose(trainer: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [f"trainer={trainer}"], tmp_path)
    assert cfg.trainer._target_ == "lightning.pytorch.trainer.Trainer"
    assert cfg.trainer.default_root_dir == str(tmp_path)
    if trainer in ("ddp_cpu", "ddp_spawn_cpu"):
        trainer_obj = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
        assert trainer_obj.world_size == 2 and trainer_obj.strategy.__class__.__name__ == "DDPStrategy"


@pytest.mark.parametrize("logger", ["wandb", "csv", "none"])
def test_logger_groups(logger: str, tmp_path: Path) -> None:
    from src.utils.instantiators import instantiate_loggers

    cfg = compose_config("train", ["experiment=gca_refine", f"logger={logger}"], tmp_path)
    loggers = instantiate_loggers(cfg.logger)
    assert len(loggers) == (0 if logger == "none" else 1)
    if logger == "wandb":
        assert cfg.logger.wandb.mode == "disabled"  # WANDB_MODE from conftest; offline by default
        assert loggers[0].save_dir == str(tmp_path)


def test_wandb_is_offline_without_wandb_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_config("train", [], tmp_path)
    assert cfg.logger.wandb.mode == "offline"


@pytest.mark.parametrize("debug", ["default", "fdr", "overfit", "limit"])
def test_debug_groups_keep_the_users_accelerator_devices_and_logger(debug: str, tmp_path: Path) -> None:
    user = ["trainer=ddp", "trainer.devices=4", "logger=csv", "data.num_workers=6"]
    cfg = compose_config("train", [f"debug={debug}", "experiment=gca_refine", *user], tmp_path)
    assert cfg.task_name == "debug"
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == ("gpu", 4, "ddp")
    assert list(cfg.logger) == ["csv"] and cfg.data.num_workers == 6
    # a config that changes anything beyond its purpose says so (logged by extras())
    assert bool(cfg.debug_note) == (debug in ("fdr", "overfit"))


def test_eval_and_restore_configs_compose(tmp_path: Path) -> None:
    ev = compose_config("eval", ["ckpt_path=/x.ckpt"], tmp_path)
    assert ev.output_dir == str(tmp_path) and set(ev.sca_methods) <= set(SCA_PRESETS)  # rows the code knows
    rs = compose_config("restore", ["input=some.jpg"], tmp_path)
    assert rs.input == "some.jpg" and rs.sca.method == "dc_thumb" and rs.thumbnail is None
    assert OmegaConf.is_missing(compose_config("restore", [], tmp_path), "input")  # input=... is required


def test_run_name_and_tags_carry_the_swept_overrides(tmp_path: Path) -> None:
    """A multirun job is named ``<experiment> <swept key=value ...>`` (from the sweep folder's multirun.yaml,
    as Hydra's basic sweeper writes it) and its config holds its overrides, swept values and multirun id; a
    single run is named after its group choices and method settings, not paths or Trainer flags."""
    from hydra.types import RunMode

    from src.utils.run_identity import apply_job_identity

    sweep = tmp_path / "2026-01-01_00-00-00"
    sweep.mkdir()
    given = ["experiment=gca_refine", "sca=paper,dc", "seed=1,2", "trainer.max_epochs=3"]
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": given}}}), sweep / "multirun.yaml")
    job = ["experiment=gca_refine", "sca=dc", "seed=2", "trainer.max_epochs=3"]
    cfg = compose_config("train", job, tmp_path)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(sweep)
        cfg.hydra.job.num = 3
    apply_job_identity(cfg)
    assert cfg.run_name == "gca_refine sca=dc seed=2"
    assert cfg.tags == ["gca_refine", "sca=dc", "seed=2", "multirun:2026-01-01_00-00-00"]
    assert cfg.job.swept == {"sca": "dc", "seed": "2"} and list(cfg.job.overrides) == job
    assert cfg.job.multirun.id == sweep.name and cfg.job.multirun.job_num == 3
    assert cfg.logger.wandb.name == cfg.run_name and list(cfg.logger.wandb.tags) == list(cfg.tags)

    single = ["experiment=no_sca", "sca=dc", "model.lambda_gan=0.5", "data.root=/x", "trainer.max_epochs=3"]
    cfg = compose_config("train", single, tmp_path)
    apply_job_identity(cfg)
    assert cfg.run_name == "no_sca sca=dc model.lambda_gan=0.5" and cfg.job.multirun is None
    assert cfg.tags == ["no_sca", "ablation", "sca=dc", "model.lambda_gan=0.5"]
