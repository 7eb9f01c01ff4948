"""src.train: fast_dev_run of both GCA experiments, resume from last.ckpt, sca_only, data-root errors;
slow: DDP (2 spawned CPU processes) and a multirun over two ablations in a subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
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
    summary = json.loads((tmp_path / "summary.json").read_text())  # fast_dev_run: no logger, still a summary
    assert summary["status"] == "finished" and summary["batches"] == 1 and summary["experiment"] == experiment


def test_resume_continues_the_run_its_folder_wandb_run_and_best_model(tmp_path, monkeypatch) -> None:
    """ckpt_path=<run>/checkpoints/last.ckpt: Hydra's run folder is <run> (conf/hydra/train.yaml), the epoch
    and step counts continue, the wandb run id saved beside the checkpoint is reused, the best-model score
    survives and metrics.csv / summary.json continue in the same folder."""
    import json

    from src.utils.hydra_utils import resume_run_folder
    from src.utils.run_files import read_metrics

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    base = ("trainer.max_epochs=1", "logger=wandb", "test=false", "callbacks.short_epochs.min_batches=0")
    cfg = compose_config("train", _overrides("gca_refine", *base), run)
    _, objects = train(cfg)
    last = run / "checkpoints" / "last.ckpt"
    assert last.is_file() and objects["trainer"].global_step == 2
    run_id = (run / "checkpoints" / "wandb_run_id").read_text().strip()
    best_score = float(objects["trainer"].checkpoint_callback.best_model_score)
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["epoch"] == 0 and state["global_step"] == 2

    # the folder Hydra gives the resumed run: the one that holds the checkpoint
    assert resume_run_folder(None, str(last), "logs/train/runs/new") == str(run)
    assert resume_run_folder(str(tmp_path / "x"), str(last), "new") == str(tmp_path / "x")
    assert resume_run_folder(None, "last", "new") == "new"
    cfg2 = compose_config(
        "train", _overrides("gca_refine", *base, "trainer.max_epochs=2", f"ckpt_path={last}"), run
    )
    assert cfg2.hydra.run.dir == str(run)
    metrics, objects2 = train(cfg2)
    trainer = objects2["trainer"]
    assert trainer.current_epoch == 2 and trainer.global_step == 4  # continued, not restarted
    assert trainer.train_dataloader.sampler.epoch == 1  # and the data saw epoch 1: fresh corruptions
    assert math.isfinite(metrics["val/psnr_y"])
    assert cfg2.logger.wandb.id == run_id and trainer.loggers[0].experiment.id == run_id
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2  # two attempts ...
    # offline-run-<date>_<time>-<id>, with a "-<n>" suffix when both attempts start within the same second
    assert {p.name.split("-")[3] for p in (run / "wandb").glob("offline-run-*")} == {run_id}  # one run
    # best-model tracking continued (its score came back from the checkpoint: no "dirpath has changed")
    ckpt_cb = trainer.checkpoint_callback
    assert (
        float(ckpt_cb.best_model_score) >= best_score and Path(ckpt_cb.best_model_path).parent == last.parent
    )
    series = read_metrics(run / "metrics.csv")["val/psnr_y"]
    assert [s for s, _ in series] == sorted({s for s, _ in series}) and len(series) == 2  # epochs 0 and 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["attempts"] == 2 and summary["resumed_from"] == str(last) and summary["wandb_id"] == run_id
    assert summary["epochs"] == 2 and summary["batches"] == 2 and summary["status"] == "finished"

    # the checkpoint restores through the restoration library (run_config.yaml sits next to checkpoints/),
    # with the SCA and decoder options its input must be made with
    from src.restoration import load_restorer

    restorer = load_restorer(last, "cpu")
    assert restorer.sca_options == OmegaConf.to_container(cfg.sca, resolve=True)
    assert restorer.decoder_options["strategy"] == "paper"


def test_ckpt_path_last_needs_a_run_and_auto_starts_afresh(tmp_path) -> None:
    from src.utils.hydra_utils import ConfigError

    cfg = compose_config("train", _overrides("gca_refine", "ckpt_path=last", "debug=fdr"), tmp_path)
    with pytest.raises(ConfigError, match=r"ckpt_path=last: there is no .*last\.ckpt.*run_dir="):
        train(cfg)
    cfg = compose_config("train", _overrides("gca_refine", "ckpt_path=auto", "debug=fdr"), tmp_path)
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 2 and "val/psnr_y" in metrics
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        train(compose_config("train", _overrides("gca_refine", f"ckpt_path={tmp_path}/x.ckpt"), tmp_path))


def test_sca_only_scores_the_pipeline_without_training(tmp_path: Path) -> None:
    cfg = compose_config("train", ["experiment=sca_only", *SMALL_DATA, *CPU, "logger=csv"], tmp_path)
    metrics, objects = train(cfg)
    assert "trainer" not in objects
    for split in ("val", "test"):
        assert {f"{split}/psnr_y", f"{split}/psnr_y_thumb", f"{split}/psnr_y_corrupted"} <= set(metrics)
        # SCA repairs what the robust decode leaves: colour casts and shifted blocks
        assert metrics[f"{split}/psnr_y"] > metrics[f"{split}/psnr_y_corrupted"]
    assert list((tmp_path / "csv").rglob("metrics.csv"))
    # it logs its config like a training run, and writes the run files the report reads
    import yaml

    hparams = yaml.safe_load(next((tmp_path / "csv").rglob("hparams.yaml")).read_text())
    assert hparams["experiment_name"] == "sca_only" and hparams["sca"]["method"] == "dc_thumb"
    assert (
        hparams["job"]["overrides"][0] == "experiment=sca_only"
        and hparams["run_name"] == "sca_only data=samples corruption.ber=0.0003"
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["metrics"]["test/psnr_y"] == metrics["test/psnr_y"]
    assert "val/psnr_y" in (tmp_path / "metrics.csv").read_text()


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


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_continues_steps_metrics_and_wandb_run(tmp_path: Path) -> None:
    """A CPU run is SIGKILLed in the middle of an epoch; ``ckpt_path=<run>/checkpoints/last.ckpt`` resumes it
    in the same folder and wandb run, from the last epoch end, and it ends where an uninterrupted run ends."""
    import signal
    import time

    import yaml

    from src.utils.run_files import read_metrics

    run, logs = tmp_path / "run", tmp_path / "logs"
    per_epoch, epochs = 6, 3  # 2 photos x 6 repeats / batch 2
    common = [
        "experiment=gca_refine", "model=gca_refine_small", *SMALL_DATA, *CPU, "logger=wandb", "test=false",
        f"trainer.max_epochs={epochs}", "trainer.log_every_n_steps=1", "data.train_repeats=6",
        "callbacks.short_epochs.min_batches=0", "callbacks.rich_progress_bar=null", f"paths.log_dir={logs}",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "src.train", *common]
    proc = subprocess.Popen(
        [*cmd, f"run_dir={run}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    last = run / "checkpoints" / "last.ckpt"
    killed_at = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            steps = [s for s, _ in read_metrics(run / "metrics.csv").get("train/loss_g_step", [])]
            # after the first epoch's last.ckpt, in the middle of the second epoch
            if last.is_file() and steps and per_epoch + 2 <= max(steps) < 2 * per_epoch - 1:
                killed_at = max(steps)
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed_at is not None, "the run did not reach the middle of its second epoch"
    state = torch.load(last, map_location="cpu", weights_only=False)
    assert state["epoch"] == 0 and state["global_step"] == 2 * per_epoch  # the first epoch's end
    run_id = (run / "checkpoints" / "wandb_run_id").read_text().strip()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"  # it never finished

    resumed = subprocess.run(
        [*cmd, f"ckpt_path={last}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # one run folder (none under logs/), one wandb run (two offline attempts with the same id)
    assert not (logs / "train").exists()
    attempts = sorted((run / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(p.name.split("-")[3] == run_id for p in attempts)
    assert yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())[-1] == f"ckpt_path={last}"
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final["epoch"] == epochs - 1 and final["global_step"] == 2 * per_epoch * epochs
    # the curves continue: every training batch logged once (the killed epoch's rows replaced), one
    # validation per epoch, at increasing steps
    series = read_metrics(run / "metrics.csv")
    assert [s for s, _ in series["train/loss_g_step"]] == list(range(per_epoch * epochs))
    val_steps = [s for s, _ in series["val/psnr_y"]]
    assert len(val_steps) == epochs and val_steps == sorted(val_steps)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["attempts"] == 2 and summary["wandb_id"] == run_id
    assert summary["batches"] == per_epoch * epochs and summary["best"]["path"].startswith(str(run))
    print(f"killed at batch {killed_at}; resumed from batch {per_epoch}; finished at {summary['batches']}")


def test_command_line_prints_the_config_once_and_each_log_line_once(tmp_path: Path) -> None:
    """The config tree and every Lightning INFO line show once (Lightning's own console handler is dropped
    under Hydra's), the debug config says what it changes, and the old ``+experiment`` spelling works."""
    cmd = [
        sys.executable, "-m", "src.train", "+experiment=gca_refine", "model=gca_refine_small", *SMALL_DATA,
        "trainer=cpu", "+debug=fdr", "logger=none", f"run_dir={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert out.count("CONFIG") == 1 and (tmp_path / "config_tree.log").read_text().count("CONFIG") == 1
    assert out.count("Seed set to 12345") == 1 and out.count("`Trainer.fit` stopped") == 1
    assert out.count("debug config: fast_dev_run") == 1
    assert "Seed set to 12345" in (tmp_path / "debug.log").read_text()  # Hydra's log file still has it


def test_short_epochs_validate_and_checkpoint_every_k_epochs_and_at_the_end(tmp_path: Path) -> None:
    """One-batch epochs with ``callbacks.short_epochs.min_batches=3``: validation and last.ckpt every 3
    epochs (after epochs 3 and 6 of 7) and after the last one, not after each."""
    overrides = _overrides(
        "gca_refine", "trainer.max_epochs=7", "logger=csv", "test=false",
        "callbacks.short_epochs.min_batches=3", "trainer.num_sanity_val_steps=0",
    )  # fmt: skip
    _, objects = train(compose_config("train", overrides, tmp_path))
    from src.utils.run_files import read_metrics

    val_steps = [s for s, _ in read_metrics(tmp_path / "metrics.csv")["val/psnr_y"]]
    assert len(val_steps) == 3 and val_steps == sorted(val_steps)  # epochs 3, 6 and 7
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 6 and objects["trainer"].global_step == 14


def test_short_epochs_still_validate_and_checkpoint_when_max_time_stops_the_run(tmp_path: Path) -> None:
    """A time budget (``trainer.max_time``) ends the run between two validations of short epochs: the epoch it
    stops in still validates and writes last.ckpt, so a budgeted run (an ablation row) has its metric."""
    overrides = _overrides(
        "gca_refine", "trainer.max_epochs=10000", "trainer.max_time=00:00:00:04", "logger=csv", "test=false",
        "callbacks.short_epochs.min_batches=100000", "trainer.num_sanity_val_steps=0",
    )  # fmt: skip
    metrics, objects = train(compose_config("train", overrides, tmp_path))
    from src.utils.run_files import read_metrics

    trainer = objects["trainer"]
    assert 0 < trainer.current_epoch < 9999  # stopped by the clock, long before max_epochs
    assert len(read_metrics(tmp_path / "metrics.csv")["val/psnr_y"]) == 1
    assert math.isfinite(metrics["val/psnr_y"])
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == trainer.global_step


def test_trainer_gradient_clip_goes_to_the_module_and_accumulation_is_refused(tmp_path: Path) -> None:
    from src.utils.hydra_utils import ConfigError

    cfg = compose_config(
        "train", _overrides("gca_refine", "debug=fdr", "trainer.gradient_clip_val=0.5"), tmp_path
    )
    _, objects = train(cfg)  # Lightning alone refuses gradient_clip_val under manual optimisation
    assert objects["model"].hparams.gradient_clip_val == 0.5 and objects["trainer"].gradient_clip_val is None
    cfg = compose_config(
        "train", _overrides("gca_refine", "debug=fdr", "trainer.accumulate_grad_batches=2"), tmp_path
    )
    with pytest.raises(ConfigError, match=r"accumulate_grad_batches > 1 .* raise data\.batch_size"):
        train(cfg)
