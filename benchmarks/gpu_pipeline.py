"""Input-pipeline ratio: steps/s of the ``gca_refine`` training loop fed by the REAL on-the-fly DataModule vs
the same loop fed with pre-made tensors of the same shape (the baseline, measured in the same run).

The real feed is the DataModule ``src.train`` builds (``conf/train.yaml`` with ``experiment=gca_refine
data=<--data>``): photos corrupted at 2048x1024 (paper preset: AES-CBC-ESSIV sectors, BER 1e-5), robust
decode, SCA ``dc_thumb``, bicubic downscale to 512x256, whole images (``data.crop=null``), batch 8, N
workers (default: CPU cores per GPU - 2) of ``data.worker_threads`` threads each (``--worker-threads``,
default 1 as in the config: ``WorkerInit``), pinned memory, persistent workers. The pre-made feed is
``gpu_throughput.PremadeBatches`` (pre-collated, pinned). Same Trainer (bf16-mixed, 1 device), same model.
Both feeds ship the loaders' dtypes (uint8 ``sca`` / ``thumb`` / ``gt``, float32 ``mask``) and convert them
to float32 on the device in the same ``on_after_batch_transfer`` (``src.data.dataset.batch_to_float``), so
the ratio compares the input pipelines only.

Because the offline photo sets are small (``data=mate``: 8 training photos, i.e. one batch per epoch, and a
new epoch drains the worker queue), the training split is repeated to make one long epoch; every repeat is a
new sample (the corruption seed includes the index), so nothing is reused unless ``cache_variants`` is on.

Cases, each in its own process (killed when ``--budget`` runs out):
  - ``premade``: the baseline loop;
  - ``loader``: the DataLoader alone (N workers, no GPU work): samples/s and samples/s per worker (the issue's
    need: ~10 per worker at 2048x1024 to feed ~150 images/s from 14 workers);
  - ``real``: the training loop on the on-the-fly DataModule -> ratio real / premade (floor 0.9);
  - ``loader_1thread`` (+ ``real_1thread``): the same with the OMP / OPENBLAS / MKL_NUM_THREADS variables
    at 1 from the start, in the main process too (the workers already limit themselves, ``WorkerInit``);
  - ``loader_pools``: the loader with ``data.worker_threads=null`` (workers leave their thread pools alone:
    numpy's OpenBLAS may start as many threads as cores in every worker), for comparison;
  - ``real_clean`` (+ ``loader_clean``): the same with ``data.cache_clean=true`` (each photo's clean JPEG is
    kept after its first use; corruption, decode and SCA stay fresh for every sample);
  - ``real_cached`` (+ ``loader_cached``): the same with ``data.cache_variants=K`` and an on-disk cache
    (shared by the workers), timed after the cache is warm. The timed window lies in one epoch, which uses
    one variant per photo: this is the steady state of the cached mode after its first K epochs.
Throughputs here are window means (total steps / total time after the warm-up): a starving pipeline
delivers in bursts, and a median step would hide the waits.

    python -m benchmarks.gpu_pipeline --data mate --photos PHOTOS [--workers 14] [--json out.json]
    .venv/bin/python -m benchmarks.gpu_pipeline --accelerator cpu --data samples --scale 128x64 \\
        --corruption-size 256x128 --size-multiple 32 --batch 2 --workers 1 --steps 3 --warmup 2 \\
        --loader-seconds 3                                                         # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from benchmarks import gpu_throughput as gt  # sets PROJECT_ROOT

FLOOR = 0.9
CASES = ("premade", "loader", "real", "real_clean", "real_cached", "loader_1thread", "real_1thread",
         "loader_clean", "loader_cached", "loader_pools")  # fmt: skip
#: the "_1thread" cases run with these (BLAS / OpenMP pools of one thread in the main process and, inherited,
#: in every worker: without them each worker starts a pool as large as the machine, 14 workers x 32 threads)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_workers() -> int:
    """CPU cores per visible GPU - 2 (the main process and the pin-memory thread need a core)."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 1
    return max(1, (os.cpu_count() or 2) // max(gpus, 1) - 2)


def build_datamodule(args: argparse.Namespace, cache_dir: str | None) -> Any:
    """The DataModule of ``src.train experiment=gca_refine data=<data>`` with this benchmark's sizes."""
    from hydra.utils import instantiate

    width, height = gt.parse_size(args.scale)
    cw, ch = gt.parse_size(args.corruption_size)
    gpu = args.accelerator == "gpu"
    overrides = [
        "experiment=gca_refine",
        f"data={args.data}",
        f"data.batch_size={args.batch}",
        f"data.num_workers={args.workers}",
        "data.crop=null",
        f"data.scale=[{width},{height}]",
        f"data.corruption_size=[{cw},{ch}]",
        f"data.pin_memory={str(gpu).lower()}",
        f"data.persistent_workers={str(args.workers > 0).lower()}",
        f"data.cache_variants={args.cache_variants if cache_dir else 0}",
        f"data.cache_dir={cache_dir or 'null'}",
        f"data.worker_threads={args.worker_threads or 'null'}",
        f"data.cache_clean={str(getattr(args, 'case', None) in ('real_clean', 'loader_clean')).lower()}",
    ]
    if args.photos:
        overrides.append(f"data.root={Path(args.photos).resolve()}")
    if args.size_multiple:
        overrides.append(f"data.size_multiple={args.size_multiple}")
    dm = instantiate(gt.compose_train_config(overrides).data)
    return dm


def lengthen_epoch(dm: Any, samples: int) -> int:
    """Repeat the training items so that one epoch holds at least ``samples`` samples; returns the number of
    distinct photos. (Uses the DataModule's item cache: it must run before ``setup``.)"""
    items = dm._items("train")
    reps = max(1, math.ceil(samples / len(items)))
    dm.items["train"] = items * reps
    return len(items)


def measure_loader(args: argparse.Namespace, cache_dir: str | None) -> dict[str, Any]:
    """Samples/s of the training DataLoader alone, after the first round of ``workers`` batches."""
    dm = build_datamodule(args, cache_dir)
    expected = 60 * args.loader_seconds * max(args.workers, 1)  # generous: at most ~60 samples/s per worker
    distinct = lengthen_epoch(dm, args.batch * (2 * args.workers + 2) + int(expected))
    dm.persistent_workers = False  # this loader is iterated once, then dropped
    dm.setup("fit")
    loader: DataLoader = dm.train_dataloader()
    it = iter(loader)
    # the first round arrives in a burst after the workers' start-up; a cache must be warm first (within one
    # epoch only variant 0 is used: every distinct photo made once)
    skip = max(args.workers, 1) + (math.ceil(2 * distinct / args.batch) if cache_dir else 0)
    t_first = time.perf_counter()
    for _ in range(skip):
        next(it)
    t0 = time.perf_counter()
    got = 0
    while time.perf_counter() - t0 < args.loader_seconds:
        try:
            got += len(next(it)["gt"])
        except StopIteration:
            break
    elapsed = time.perf_counter() - t0
    del it
    rate = got / elapsed
    return {
        "samples": got,
        "seconds": elapsed,
        "startup_s": t0 - t_first,
        "samples_per_s": rate,
        "samples_per_s_per_worker": rate / max(args.workers, 1),
        "workers": args.workers,
        "distinct_photos": distinct,
    }


class PremadeDataModule(L.LightningDataModule):
    """Pre-made batches in the real loaders' dtypes (uint8 images, float32 mask), converted on the device by
    the same hook as ``RestorationDataModule``'s."""

    def __init__(self, data: gt.PremadeBatches) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=None, num_workers=0)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        from src.data.dataset import batch_to_float

        return batch_to_float(batch)


def loader_dtypes(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A float batch of ``gt.make_batch`` as the DataLoaders ship it: uint8 images, float32 mask."""
    from src.data.dataset import UINT8_KEYS

    return {
        k: v.mul(255).round_().clamp_(0, 255).to(torch.uint8) if k in UINT8_KEYS else v.float()
        for k, v in batch.items()
    }


def measure_training(args: argparse.Namespace, feed: str, cache_dir: str | None) -> dict[str, Any]:
    """The training loop (bf16-mixed, 1 device) fed by pre-made tensors (``feed="premade"``) or the real
    DataModule (``feed="real"``); steps/s over the window after the warm-up."""
    width, height = gt.parse_size(args.scale)
    n = args.warmup + args.steps
    module = gt.build_module(args.model)
    clock = gt.StepClock()
    case = gt.Case(feed, precision=args.precision)
    trainer = gt.make_trainer(args.accelerator, case, n, [clock])
    info: dict[str, Any] = {}
    if feed == "premade":
        data = gt.PremadeBatches(n, args.batch, width, height, pin=args.accelerator == "gpu")
        data.batches = [loader_dtypes(b) for b in data.batches]  # pinned on first use, as before
        trainer.fit(module, datamodule=PremadeDataModule(data))
    else:
        dm = build_datamodule(args, cache_dir)
        info["distinct_photos"] = lengthen_epoch(dm, args.batch * (n + 2 * args.workers + 2))
        trainer.fit(module, datamodule=dm)
    return {
        **info,
        **clock.summary(args.warmup, args.batch),
        "workers": args.workers if feed != "premade" else 0,
    }


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """The case ``args.case`` in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = tmp if args.case.endswith("_cached") else None
        if args.case.endswith("_1thread"):
            torch.set_num_threads(1)  # also the main process's torch pool (workers have one anyway)
        if args.case == "loader_pools":
            args.worker_threads = 0  # data.worker_threads=null
        if args.case.startswith("loader"):
            return measure_loader(args, cache_dir)
        return measure_training(args, "premade" if args.case == "premade" else "real", cache_dir)


def subprocess_case(args: argparse.Namespace, case: str, timeout: float) -> dict[str, Any]:
    """Run ``case`` in a fresh process with this run's settings (killed after ``timeout`` seconds)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_pipeline", "--case", case]
    for name in (
        "accelerator", "data", "photos", "model", "precision", "scale", "corruption_size", "size_multiple",
        "batch", "workers", "worker_threads", "steps", "warmup", "loader_seconds", "cache_variants",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    return gt.run_subprocess(cmd, case, timeout, env=ONE_THREAD if case.endswith("_1thread") else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerator", default=None, help="gpu (default when CUDA is there) or cpu")
    ap.add_argument("--data", default="mate", help="data config (conf/data/NAME.yaml): mate, samples, folder")
    ap.add_argument(
        "--photos", default=None, help="data.root (e.g. a folder made by scripts/shrink_photos.py)"
    )
    ap.add_argument("--model", default="gca_refine")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--scale", default="512x256", help="training image WxH")
    ap.add_argument("--corruption-size", default="2048x1024", help="WxH the photos are corrupted at")
    ap.add_argument("--size-multiple", type=int, default=None, help="data.size_multiple (default: config's)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: cores/GPU - 2)")
    ap.add_argument("--worker-threads", type=int, default=1, help="data.worker_threads (0: null)")
    ap.add_argument("--steps", type=int, default=90, help="timed training steps per case")
    ap.add_argument("--warmup", type=int, default=30, help="untimed first steps (worker start, cache fill)")
    ap.add_argument("--loader-seconds", type=float, default=10.0, help="DataLoader-only timing window")
    ap.add_argument("--cache-variants", type=int, default=2, help="K of the cached mode (0: skip it)")
    ap.add_argument(
        "--cases", default="premade,loader,real,real_clean,real_cached", help=f"any of {','.join(CASES)}"
    )
    ap.add_argument("--budget", type=float, default=None, help="seconds; later cases are skipped past it")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--case-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.accelerator is None:
        if not torch.cuda.is_available():
            print("gpu_pipeline: no CUDA device here; pass --accelerator cpu for a smoke run")
            return
        args.accelerator = "gpu"
    if args.workers is None:
        args.workers = default_workers()
    if args.case is not None:
        result = run_one(args)
        if args.case_json:
            Path(args.case_json).write_text(json.dumps(result))
        return

    t0 = time.perf_counter()
    cases = [c for c in args.cases.split(",") if c]
    bad = [c for c in cases if c not in CASES]
    if bad:
        raise gt.BenchmarkError(f"unknown cases {bad}; allowed: {', '.join(CASES)}")
    if args.cache_variants <= 0:
        cases = [c for c in cases if not c.endswith("_cached")]
    print(
        f"gpu_pipeline: {gt.device_name(args.accelerator)}, {os.cpu_count()} CPU cores; data={args.data} "
        f"(root {args.photos or 'config default'}), corrupted at {args.corruption_size}, trained at "
        f"{args.scale}, batch {args.batch}, {args.workers} workers, {args.precision}; "
        f"{args.steps} steps after {args.warmup}",
        flush=True,
    )
    rows: dict[str, dict[str, Any]] = {}
    for case in cases:
        write_report(args, rows, {})  # after every case: a run killed from outside keeps what it measured
        elapsed = time.perf_counter() - t0
        if args.budget is not None and elapsed > args.budget:
            rows[case] = {"status": "skipped", "error": f"budget spent ({elapsed:.0f} s)"}
            print(f"-- {case}: skipped (budget)", flush=True)
            continue
        print(f"-- {case} ({elapsed:.0f} s elapsed)", flush=True)
        left = (args.budget - elapsed) if args.budget is not None else 900.0
        try:
            rows[case] = subprocess_case(args, case, timeout=max(left, 30.0))
            r = rows[case]
            if "steps_per_s_mean" in r:
                print(
                    f"   {r['steps_per_s_mean']:.2f} steps/s ({args.batch * r['steps_per_s_mean']:.1f} img/s)"
                )
            else:
                print(
                    f"   {r['samples_per_s']:.1f} samples/s, {r['samples_per_s_per_worker']:.2f} per worker"
                )
        except Exception as err:
            rows[case] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            print(f"   FAILED: {type(err).__name__}: {err}", flush=True)

    ratios: dict[str, float] = {}
    base = rows.get("premade", {}).get("steps_per_s_mean")
    print(f"\n{'case':14} {'steps/s':>8} {'img/s':>8} {'vs premade':>10} {'samples/s/worker':>17}")
    for case, r in rows.items():
        if "status" in r:
            print(f"{case:14} {r['status']}: {r['error']}")
            continue
        sps = r.get("steps_per_s_mean")
        per_worker = r.get("samples_per_s_per_worker")
        if sps is not None and base and case != "premade":
            ratios[f"{case}/premade"] = sps / base
        col_sps = f"{sps:8.2f}" if sps is not None else f"{'-':>8}"
        col_img = f"{args.batch * sps:8.1f}" if sps is not None else f"{r['samples_per_s']:8.1f}"
        col_ratio = f"{sps / base:9.2f}x" if sps is not None and base else f"{'-':>10}"
        col_worker = f"{per_worker:17.2f}" if per_worker is not None else f"{'-':>17}"
        print(f"{case:14} {col_sps} {col_img} {col_ratio} {col_worker}")
    for k, v in ratios.items():
        verdict = "meets" if v >= FLOOR else "BELOW"
        print(f"  {k}: {v:.2f} ({verdict} the {FLOOR} floor)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_report(args, rows, ratios)


def write_report(args: argparse.Namespace, rows: dict[str, Any], ratios: dict[str, float]) -> None:
    """All results so far as JSON at ``--json`` (atomically), if given."""
    if not args.json:
        return
    from src.utils import atomic_write_text

    report = {
        "benchmark": "gpu_pipeline",
        "device": gt.device_name(args.accelerator),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "args": {k: v for k, v in vars(args).items() if not k.startswith("case")},
        "baseline": "premade",
        "floor": FLOOR,
        "cases": rows,
        "ratios": ratios,
    }
    atomic_write_text(args.json, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
