"""SLURM through hydra-submitit-launcher: ``conf/hydra/launcher/slurm.yaml`` becomes the sbatch script we
want (one task and GPU per ``trainer.devices``, USR2 before the limit, submitit owning requeue), and
``slurm_local.yaml`` runs ``src.train`` jobs through submitit's local executor, including a real timeout ->
requeue -> resume from ``last.ckpt`` (slow)."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher")


class _Captured(Exception):
    """Raised instead of submitting: carries the executor the launcher built."""

    def __init__(self, executor: Any) -> None:
        super().__init__("captured")
        self.executor = executor


def sbatch_script(overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """The sbatch script (and the submitit executor) that ``hydra/launcher=slurm`` builds for ``src.train``
    with ``overrides``, through the launcher's own ``launch`` (submission intercepted)."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.utils import setup_globals
    from hydra.utils import instantiate

    def capture(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(self)

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # "srun is here"
    monkeypatch.setenv("PROJECT_ROOT", str(ROOT))
    setup_globals()  # the ${now:...} resolver of the sweep folder
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}", *overrides],
            return_hydra_config=True,
        )
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    with pytest.raises(_Captured) as got:
        launcher.launch([["seed=1"]], initial_job_idx=0)
    executor = got.value.executor
    return executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "x"), executor


def test_slurm_launcher_asks_one_task_and_gpu_per_device(tmp_path, monkeypatch) -> None:
    overrides = ["experiment=gca_refine", "trainer=ddp", "trainer.devices=4", "hydra.launcher.partition=gpu"]
    overrides += ["hydra.launcher.timeout_min=600"]
    script, executor = sbatch_script(overrides, tmp_path, monkeypatch)
    flags = {
        line.split("=")[0]: line.split("=", 1)[1]
        for line in script.splitlines()
        if line.startswith("#SBATCH")
    }
    assert flags["#SBATCH --ntasks-per-node"] == "4"
    assert flags["#SBATCH --gpus-per-node"] == "4"
    assert flags["#SBATCH --nodes"] == "1"
    assert flags["#SBATCH --partition"] == "gpu"
    assert flags["#SBATCH --time"] == "600"
    assert flags["#SBATCH --cpus-per-task"] == "10"
    # submitit owns requeue: USR2 before the limit (Lightning's auto-requeue would need USR1) ...
    assert flags["#SBATCH --signal"] == "USR2@120"
    assert not any("USR1" in line for line in script.splitlines())
    # ... and requeues after a timeout up to max_num_timeout times; every task runs under srun
    assert executor._executor.max_num_timeout == 20
    assert "srun" in script and f"{tmp_path}/.submitit/%j" in script


def test_slurm_launcher_follows_trainer_devices(tmp_path, monkeypatch) -> None:
    script, _ = sbatch_script(
        ["experiment=gca_refine", "trainer=ddp", "trainer.devices=2"], tmp_path, monkeypatch
    )
    assert "#SBATCH --ntasks-per-node=2" in script and "#SBATCH --gpus-per-node=2" in script


def _train_cmd(sweep_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "src.train",
        "-m",
        "hydra/launcher=slurm_local",
        "experiment=gca_refine",
        f"hydra.sweep.dir={sweep_dir}",
        *overrides,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "PROJECT_ROOT": str(ROOT), "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_debug_job_runs_through_submitit_local(tmp_path) -> None:
    cmd = _train_cmd(tmp_path, "debug=fdr", "model=gca_refine_small", "logger=none")
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / ".submitit").glob("*/*_0_result.pkl"))
    assert len(results) == 1
    with results[0].open("rb") as f:
        outcome, job_return = pickle.load(f)
    assert outcome == "success"
    assert 20.0 < float(job_return.return_value) < 100.0  # val/psnr_y of the bundled photos, in dB
    assert (tmp_path / "0" / ".hydra" / "config.yaml").is_file()
    assert (tmp_path / "0" / "run_config.yaml").is_file()


def _first_epoch(metrics_csv: Path) -> int | None:
    with metrics_csv.open() as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch")]
    return min(epochs) if epochs else None


#: a ModelCheckpoint without a monitor saves every epoch, and then (Lightning >= 2.6) last.ckpt as well
EVERY_EPOCH = ["callbacks.model_checkpoint.monitor=null", "callbacks.model_checkpoint.filename=latest"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "checkpointing",
    [
        pytest.param(EVERY_EPOCH, id="every-epoch-checkpoint"),
        pytest.param([], id="default-callbacks"),  # model_checkpoint_last writes last.ckpt every epoch
    ],
)
def test_timed_out_job_is_requeued_and_resumes_from_last_ckpt(tmp_path, checkpointing) -> None:
    """submitit's local executor sends USR2 30 s before a 1-minute limit; the job requeues itself (submitit,
    the one requeue owner) and the new attempt, with the same config and output folder, resumes from
    ``checkpoints/last.ckpt`` (``ckpt_path=auto``: the first attempt starts afresh) where the first attempt
    stopped (at most the interrupted epoch is lost). The run is long on purpose; the test stops it once the
    second attempt has resumed."""
    small_data = [
        "data.corruption_size=[256,128]",
        "data.scale=[256,128]",
        "data.crop=null",
        "data.size_multiple=32",
        "data.batch_size=2",
        "data.max_items={train:2,val:1,test:1}",
    ]
    cmd = _train_cmd(
        tmp_path,
        "hydra.launcher.timeout_min=1",
        "model=gca_refine_small",
        "trainer=cpu",
        "trainer.max_epochs=100000",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
        "ckpt_path=auto",
        "callbacks.short_epochs.min_batches=0",  # last.ckpt after every (one-batch) epoch
        "test=false",
        "extras.print_config=false",
        # no learning: val/psnr_y never improves after epoch 0, so the default callbacks' stale last.ckpt
        # shows deterministically (what is tested here is the bookkeeping of epochs, not learning)
        "model.optimizer_g.lr=0",
        "model.optimizer_d.lr=0",
        *small_data,
        *checkpointing,
    )
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    job = tmp_path / "0"
    try:
        deadline = time.monotonic() + 240
        resumed = None
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(2)
            second = job / "csv" / "version_1" / "metrics.csv"
            if second.is_file() and (first := _first_epoch(second)) is not None:
                resumed = first
                break
        logs = "".join(p.read_text() for p in (tmp_path / ".submitit").glob("*/*_0_log.*"))
    finally:
        if proc.poll() is None:  # (the job may have ended by itself: out of requeues)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "Caught signal SIGUSR2" in logs, logs[-3000:]
    assert f"Restoring states from the checkpoint path at {job / 'checkpoints' / 'last.ckpt'}" in logs
    assert resumed is not None and resumed > 0, "the second attempt did not continue the first one's epochs"
    first_attempt = job / "csv" / "version_0" / "metrics.csv"
    with first_attempt.open() as f:
        reached = max(int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch"))
    print(f"first attempt logged epochs up to {reached}; the requeued attempt resumed at epoch {resumed}")
    assert resumed >= reached - 1  # only the epoch running when USR2 came may be lost
