"""src.train: fast_dev_run of both GCA experiments, resume from last.ckpt, sca_only, data-root errors;
slow: DDP (2 spawned CPU processes) and a multirun over two ablations in a subprocess."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_configs import ROOT, SMALL_DATA, compose_config

from src.data import DatasetError
from src.train import train

#: a tiny coarse GAN for CPU tests (the config's networks at toy sizes)
SMALL_COARSE = (
    "model.generator.ngf=8",
    "model.generator.n_downsample_global=2",
    "model.generator.n_blocks_global=1",
    "model.generator.n_blocks_local=1",
    "model.discriminator.ndf=16",
    "model.discriminator.n_layers=2",
)
CPU = ("trainer=cpu", "extras.print_config=false")


def _overrides(experiment: str, *extra: str) -> list[str]:
    model = SMALL_COARSE if experiment in ("gca_coarse", "no_refine") else ("model=gca_refine_small",)
    return [f"experiment={experiment}", *SMALL_DATA, *CPU, *model, *extra]


@pytest.mark.parametrize("experiment", ["gca_coarse", "gca_refine"])
def test_fast_dev_run_fit_validate_test(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [*_overrides(experiment), "debug=fdr"], tmp_path)
    metrics, objects = train(cfg)
    trainer = objects["trainer"]
    assert trainer.fast_dev_run and trainer.global_step == 2  # one D and one G step
    for key in ("val/psnr_y", "test/psnr_y", "test/psnr_y_input", "test/ssim_y"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert 5 < metrics["test/psnr_y_input"] < 60  # the SCA input of a corrupted 128x64 photo
    assert (tmp_path / "run_config.yaml").is_file()


def test_resume_from_last_checkpoint_continues_step_and_epoch(tmp_path: Path) -> None:
    first = tmp_path / "first"
    cfg = compose_config(
        "train", _overrides("gca_refine", "trainer.max_epochs=1", "logger=csv", "test=false"), first
    )
    _, objects = train(cfg)
    last = first / "checkpoints" / "last.ckpt"
    assert last.is_file() and objects["trainer"].global_step == 2
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["epoch"] == 0 and state["global_step"] == 2

    second = tmp_path / "second"
    cfg2 = compose_config(
        "train",
        _overrides("gca_refine", "trainer.max_epochs=2", "logger=csv", "test=false", f"ckpt_path={last}"),
        second,
    )
    metrics, objects2 = train(cfg2)
    trainer = objects2["trainer"]
    assert trainer.current_epoch == 2 and trainer.global_step == 4  # continued, not restarted
    assert trainer.train_dataloader.sampler.epoch == 1  # and the data saw epoch 1: fresh corruptions
    assert math.isfinite(metrics["val/psnr_y"])

    # the checkpoint restores through src.restore's loader (run_config.yaml sits next to checkpoints/)
    from src.restore import load_restorer

    restorer = load_restorer(last, "cpu")
    assert restorer.sca_options["method"] == "dc_thumb" and restorer.size_multiple == 64


def test_sca_only_scores_the_pipeline_without_training(tmp_path: Path) -> None:
    cfg = compose_config("train", ["experiment=sca_only", *SMALL_DATA, *CPU, "logger=csv"], tmp_path)
    metrics, objects = train(cfg)
    assert "trainer" not in objects
    for split in ("val", "test"):
        assert {f"{split}/psnr_y", f"{split}/psnr_y_thumb", f"{split}/psnr_y_corrupted"} <= set(metrics)
        # SCA repairs what the robust decode leaves: colour casts and shifted blocks
        assert metrics[f"{split}/psnr_y"] > metrics[f"{split}/psnr_y_corrupted"]
    assert list((tmp_path / "csv").rglob("metrics.csv"))


def test_missing_data_root_fails_before_training(tmp_path: Path) -> None:
    folder = ["experiment=gca_refine", "model=gca_refine_small", *CPU, "data=folder", "debug=fdr"]
    sizes = [
        "data.corruption_size=[256,128]",
        "data.scale=[128,64]",
        "data.crop=[64,64]",
        "data.size_multiple=64",
    ]
    cfg = compose_config("train", [*folder, *sizes], tmp_path)
    with pytest.raises(DatasetError, match=r"data\.root is not set"):
        train(cfg)
    cfg = compose_config("train", [*folder, *sizes, f"data.root={tmp_path}"], tmp_path)
    with pytest.raises(DatasetError, match="holds no image"):
        train(cfg)


@pytest.mark.slow
def test_ddp_spawn_two_cpu_processes(tmp_path: Path) -> None:
    cfg = compose_config(
        "train",
        _overrides(
            "gca_refine", "trainer=ddp_spawn_cpu", "trainer.max_epochs=1", "logger=csv", "test=false",
            "data.splits.train=[astronaut,camera,rocket,retina]",
        ),
        tmp_path,
    )  # fmt: skip
    metrics, objects = train(cfg)
    assert objects["trainer"].world_size == 2
    assert math.isfinite(metrics["val/psnr_y"])
    # the spawned ranks' state comes back through the checkpoint: 4 images / (2 ranks x batch 2 / 2 per
    # device) = 2 batches per rank, 2 optimizer steps each
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 4 and state["epoch"] == 0


@pytest.mark.slow
def test_multirun_over_two_ablations(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "src.train", "-m", "experiment=no_sca,no_edge_loss", "debug=fdr",
        "model=gca_refine_small", *SMALL_DATA, *CPU, f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted((sweep / d / ".hydra" / "config.yaml").read_text().split("experiment_name: ")[1].split()[0]
                   for d in ("0", "1"))  # fmt: skip
    assert names == ["no_edge_loss", "no_sca"]
    assert all((sweep / d / "run_config.yaml").is_file() for d in ("0", "1"))


def test_size_multiple_must_suit_the_networks(tmp_path: Path) -> None:
    from src.utils.hydra_utils import ConfigError

    overrides = ["experiment=gca_refine", *SMALL_DATA, *CPU, "data.size_multiple=16", "debug=fdr"]
    cfg = compose_config("train", overrides, tmp_path)  # the paper-size networks need multiples of 32
    with pytest.raises(ConfigError, match=r"data\.size_multiple=16 is not a multiple of 32"):
        train(cfg)
