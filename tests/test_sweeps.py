"""Multiruns of ``src.train`` from the command line (each in a subprocess, ``+debug=fdr``, the small model): a
two-trial Optuna search (``+hparams_search=gca_refine_optuna``) and an ablation grid over the SCA variant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FAST = ["debug=fdr", "model=gca_refine_small", "logger=none", "extras.print_config=false"]


def run_train(*overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PROJECT_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", "src.train", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def job_configs(sweep_dir: Path) -> list[dict]:
    """``run_config.yaml`` (what src.train resolved: model, sca, decoder) of every job, by job number."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [yaml.safe_load((job / "run_config.yaml").read_text()) for job in jobs]


@pytest.mark.slow
def test_two_trial_optuna_search_returns_val_psnr_y(tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs hydra-optuna-sweeper")
    run_train(
        "experiment=gca_refine",
        "+hparams_search=gca_refine_optuna",
        *FAST,
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp_path}",
    )
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert result["name"] == "optuna"
    assert 20.0 < float(result["best_value"]) < 100.0  # val/psnr_y of the bundled photos, in dB
    search = yaml.safe_load((ROOT / "conf" / "hparams_search" / "gca_refine_optuna.yaml").read_text())
    assert set(result["best_params"]) == set(search["hydra"]["sweeper"]["params"])
    # two trials ran, each training with its own sampled values (they reached the model)
    configs = job_configs(tmp_path)
    assert len(configs) == 2
    chars = [c["model"]["lambda_char"] for c in configs]
    lrs = [c["model"]["optimizer_g"]["lr"] for c in configs]
    assert chars[0] != chars[1] and lrs[0] != lrs[1]
    assert all(30.0 <= v <= 600.0 for v in chars) and all(5e-5 <= v <= 1e-3 for v in lrs)
    best = result["best_params"]
    assert any(
        c["model"]["lambda_char"] == pytest.approx(best["model.lambda_char"])
        and c["model"]["optimizer_g"]["lr"] == pytest.approx(best["model.optimizer_g.lr"])
        for c in configs
    )


@pytest.mark.slow
def test_sca_ablation_grid_runs_one_job_per_variant(tmp_path) -> None:
    proc = run_train("-m", "experiment=gca_refine", "sca=dc,dc_thumb", *FAST, f"hydra.sweep.dir={tmp_path}")
    configs = job_configs(tmp_path)
    assert [c["sca"]["method"] for c in configs] == ["dc", "dc_thumb"]
    assert all(c["experiment_name"] == "gca_refine" for c in configs)
    assert (
        proc.stdout.count("optimized metric val/psnr_y") + proc.stderr.count("optimized metric val/psnr_y")
        == 2
    )
