"""Multiruns of ``src.train`` from the command line (each in a subprocess, ``debug=limit``, the small model,
small images) and their ``python -m src.report``: an ablation grid over the SCA variant (wandb offline: one
run per job, each named after its swept value) and a two-trial Optuna search (``hparams_search=
gca_refine_optuna``) with its per-trial table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_configs import SMALL_DATA

ROOT = Path(__file__).resolve().parents[1]
FAST = ["debug=limit", "model=gca_refine_small", "trainer=cpu", "extras.print_config=false", *SMALL_DATA]


def run(module: str, *args: str, wandb: str = "disabled") -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": wandb, "WANDB_SILENT": "true", "PROJECT_ROOT": str(ROOT)}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def jobs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def job_configs(sweep_dir: Path) -> list[dict]:
    """``run_config.yaml`` (what src.train resolved: model, sca, decoder) of every job, by job number."""
    return [yaml.safe_load((job / "run_config.yaml").read_text()) for job in jobs(sweep_dir)]


def report_rows(folder: Path) -> list[list[str]]:
    lines = [ln for ln in (folder / "report.md").read_text().splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[1:]]


@pytest.mark.slow
def test_sca_ablation_grid_names_its_runs_and_reports(tmp_path) -> None:
    proc = run(
        "src.train", "-m", "experiment=gca_refine", "sca=paper,dc,dc_thumb", *FAST, "logger=wandb",
        f"hydra.sweep.dir={tmp_path}", wandb="offline",
    )  # fmt: skip
    assert [c["sca"]["method"] for c in job_configs(tmp_path)] == ["paper", "dc", "dc_thumb"]
    assert (proc.stdout + proc.stderr).count("optimized metric val/psnr_y") == 3
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs(tmp_path)]
    # wandb: three runs, named and tagged after the experiment and the swept value, the multirun id and the
    # job's overrides in the logged config
    names = [s["run_name"] for s in summaries]
    assert names == ["gca_refine sca=paper", "gca_refine sca=dc", "gca_refine sca=dc_thumb"]
    assert [s["tags"][:2] for s in summaries] == [
        ["gca_refine", f"sca={m}"] for m in ("paper", "dc", "dc_thumb")
    ]
    ids = {s["wandb_id"] for s in summaries}
    assert len(ids) == 3 and all(ids)
    for job, s in zip(jobs(tmp_path), summaries, strict=True):
        assert s["job"]["swept"] == {"sca": s["run_name"].split("=")[-1]}
        assert s["job"]["multirun"]["id"] == tmp_path.name and f"multirun:{tmp_path.name}" in s["tags"]
        (wandb_run,) = (job / "wandb").glob(f"offline-run-*-{s['wandb_id']}")
        assert (job / "checkpoints" / "wandb_run_id").read_text().strip() == s["wandb_id"]
        assert list(wandb_run.glob("*.wandb"))
    # the report: one row per job with its swept value and numbers, the figure, in seconds
    tic = time.perf_counter()
    out = run("src.report", str(tmp_path)).stdout
    seconds = time.perf_counter() - tic
    rows = report_rows(tmp_path)
    assert [r[0] for r in rows] == ["0", "1", "2"]
    assert [r[2] for r in rows] == ["sca=paper", "sca=dc", "sca=dc_thumb"]
    assert all(r[3] != "-" and r[8] != "-" for r in rows)  # best val/psnr_y and test/psnr_y
    assert (tmp_path / "report.png").stat().st_size > 10_000 and "3 job(s)" in out
    print(f"report of 3 jobs: {seconds:.1f} s (process included)")


@pytest.mark.slow
def test_two_trial_optuna_search_returns_val_psnr_y_and_reports_its_trials(tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs hydra-optuna-sweeper")
    run(
        "src.train", "experiment=gca_refine", "hparams_search=gca_refine_optuna", *FAST, "logger=none",
        "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert result["name"] == "optuna"
    assert 10.0 < float(result["best_value"]) < 100.0  # val/psnr_y of the bundled photos, in dB
    search = yaml.safe_load((ROOT / "conf" / "hparams_search" / "gca_refine_optuna.yaml").read_text())
    assert set(result["best_params"]) == set(search["hydra"]["sweeper"]["params"])
    # two trials ran, each training with its own sampled values (they reached the model)
    configs = job_configs(tmp_path)
    assert len(configs) == 2
    chars = [c["model"]["lambda_char"] for c in configs]
    lrs = [c["model"]["optimizer_g"]["lr"] for c in configs]
    assert chars[0] != chars[1] and lrs[0] != lrs[1]
    assert all(30.0 <= v <= 600.0 for v in chars) and all(5e-5 <= v <= 1e-3 for v in lrs)
    # every trial's sampled values are its swept overrides (run name, summary) ...
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs(tmp_path)]
    for s, c in zip(summaries, configs, strict=True):
        assert set(s["job"]["swept"]) == set(result["best_params"])
        assert float(s["job"]["swept"]["model.lambda_char"]) == pytest.approx(c["model"]["lambda_char"])
    # ... and the report has the per-trial table, best first, the best trial marked
    run("src.report", str(tmp_path))
    md = (tmp_path / "report.md").read_text()
    assert "## Optuna search" in md and "Optuna: 2 trials" in md
    trial_rows = [ln for ln in md.split("## Optuna search")[1].splitlines() if ln.startswith("| ")][1:]
    assert len(trial_rows) == 2 and trial_rows[0].rstrip().endswith("| best |")
    assert f"{float(result['best_value']):.2f}" in trial_rows[0]
