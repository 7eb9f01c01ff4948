"""On-the-fly training samples per second per worker at the paper's 2048x1024 corruption size.

One process pinned to one thread (as a DataLoader worker: torch and numba single-threaded) runs the whole
per-sample pipeline of ``src.data`` (load + fit to 2048x1024, JPEG encode with thumbnail, sector corruption
at BER 1e-5, robust decode + the clean GT decode, SCA dc_thumb, downscale to 512x256, crop + to uint8
tensors, as the loaders ship them) and prints the median time per sample, samples/s against the floor (5/s)
and the goal (15/s), and each stage's share.

Baseline, measured in the same run: a plain image loader (Pillow decode of the clean 2048x1024 JPEG + to
a uint8 (3, H, W) tensor), what an offline-preprocessed dataset such as the paper's costs per sample. Also
shown: the clean-JPEG cache (``data.cache_clean``), the cached-variant path (``data.cache_variants``; a hit
reads one .npz) and, with ``--workers N``, a real DataLoader's throughput (its workers initialised as the
DataModule's: ``WorkerInit`` with ``--worker-threads``, default 1 like ``data.worker_threads``).

    .venv/bin/python -m benchmarks.datamodule [--samples 24] [--workers 2] [--worker-threads 1] [--quick]
        [--photos DIR] [--ber 1e-4] [--check-thumbnail]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # a DataLoader worker's view, before numba loads

import statistics
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from src.corruption import Corruptor
from src.data.datamodule import WorkerInit, warm_up
from src.data.dataset import (
    CleanJpegCache,
    CorruptedImageDataset,
    EpochSampler,
    SampleCache,
    settings_fingerprint,
)
from src.data.errors import DatasetError
from src.data.pipeline import STAGES, PipelineSettings, StageTimer, prepare_photo
from src.data.sources import ImageItem, list_split
from src.utils.images import decode_jpeg_rgb
from src.utils.photos import BUNDLED_PHOTOS

FLOOR, GOAL = 5.0, 15.0


def photos(folder: str | None = None) -> tuple[list[ImageItem], str]:
    """The photos of ``folder`` (any folder of images, searched recursively), else mate-backgrounds (large
    real photos) when installed, else the bundled photos (upscaled)."""
    if folder:
        no_holdout = {"val": 0, "test": 0}
        return list_split("folder", "train", folder, holdout=no_holdout), folder
    try:
        no_holdout = {"val": 0, "test": 0}
        items = [i for s in ("train", "val", "test") for i in list_split("mate", s, holdout=no_holdout)]
        return items, "mate-backgrounds (nature)"
    except DatasetError:  # not installed
        names = [n for n in BUNDLED_PHOTOS if n != "camera"]  # the colour ones
        return [ImageItem(n) for n in names], "scikit-image bundled photos, upscaled"


def time_pipeline(
    ds: CorruptedImageDataset, n: int, first_variant: int = 0
) -> tuple[list[float], StageTimer]:
    timer = StageTimer()
    per_sample = []
    for k in range(n):
        t0 = time.perf_counter()
        sample = ds.build(k % len(ds), variant=first_variant + k // len(ds), timer=timer)
        ds.finish(sample, np.random.default_rng(k), timer=timer)
        per_sample.append(time.perf_counter() - t0)
    return per_sample, timer


def time_baseline(ds: CorruptedImageDataset, corruptor: Corruptor, n: int) -> list[float]:
    """Pillow decode of the clean JPEG + to a uint8 (3, H, W) tensor (files made once, outside the timing)."""
    files = []
    for k in range(min(n, len(ds))):
        rgb = ds._load(k)[1]
        files.append(corruptor.encode(prepare_photo(rgb, ds.settings.corruption_size)))
    out = []
    for k in range(n):
        t0 = time.perf_counter()
        rgb = decode_jpeg_rgb(files[k % len(files)])
        torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        out.append(time.perf_counter() - t0)
    return out


def time_loader(ds: CorruptedImageDataset, workers: int, n: int, threads: int | None = 1) -> float:
    sampler = EpochSampler(ds, num_replicas=1, rank=0, shuffle=False)
    loader = DataLoader(ds, batch_size=1, sampler=sampler, num_workers=workers, persistent_workers=False,
                        worker_init_fn=WorkerInit(threads) if threads is not None else None)  # fmt: skip
    got, t0 = 0, None
    for epoch in range(1000):
        sampler.set_epoch(epoch)
        for _ in loader:
            if t0 is None:  # the first sample includes the worker start-up
                t0 = time.perf_counter()
                continue
            got += 1
            if got >= n:
                return got / (time.perf_counter() - t0)
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=24, help="timed samples (default 24)")
    ap.add_argument("--workers", type=int, default=0, help="also time a DataLoader with N workers")
    ap.add_argument(
        "--worker-threads",
        type=int,
        default=1,
        help="threads per DataLoader worker (data.worker_threads; 0 = leave the pools alone)",
    )
    ap.add_argument("--quick", action="store_true", help="8 samples")
    ap.add_argument("--photos", default=None, help="a folder of photos (default: mate-backgrounds / bundled)")
    ap.add_argument("--ber", type=float, default=1e-5, help="bit error rate of the paper preset")
    ap.add_argument(
        "--check-thumbnail",
        action="store_true",
        help="SCA checks the header thumbnail as restore does (data.check_thumbnail, off in training)",
    )
    args = ap.parse_args()
    n = 8 if args.quick else args.samples
    torch.set_num_threads(1)

    items, source = photos(args.photos)
    corruptor = Corruptor.from_preset("paper", ber=args.ber)
    settings = PipelineSettings(
        corruption_size=(2048, 1024),
        scale=(512, 256),
        sca={"method": "dc_thumb"},
        check_thumbnail=args.check_thumbnail,
    )
    ds = CorruptedImageDataset(items, corruptor, settings, split="train", seed=0, train=True, crop=(256, 256),
                               size_multiple=128)  # fmt: skip
    t0 = time.perf_counter()
    warm_up(corruptor, settings)
    ds.build(0, 0)
    warm = time.perf_counter() - t0
    check = "on" if args.check_thumbnail else "off (training's default)"
    print(
        f"photos: {len(items)} from {source}, BER {args.ber:g}, thumbnail check {check}; warm-up (numba / "
        f"cache) {warm:.1f} s"
    )

    base = time_baseline(ds, corruptor, n)
    per_sample, timer = time_pipeline(ds, n)
    med, med_base = statistics.median(per_sample), statistics.median(base)
    rate = 1.0 / med
    print(f"\nper-sample pipeline, 2048x1024 -> 512x256, one thread, median of {n}:")
    print(f"  baseline (Pillow decode of a clean 2048x1024 JPEG + to tensor): {1000 * med_base:7.1f} ms")
    print(f"  on-the-fly sample:                                              {1000 * med:7.1f} ms"
          f"  = {med / med_base:.1f}x the baseline")  # fmt: skip
    verdict = "goal met" if rate >= GOAL else ("floor met" if rate >= FLOOR else "BELOW THE FLOOR")
    print(f"  samples/s per worker: {rate:.1f} (floor {FLOOR:g}, goal {GOAL:g}): {verdict}")
    total = sum(timer.seconds.values())
    print("\nshare of time per stage (sum over the timed samples):")
    for stage in STAGES:
        sec = timer.seconds.get(stage, 0.0)
        print(f"  {stage:8s} {100 * sec / total:5.1f} %  {1000 * sec / n:7.1f} ms/sample")
    print("  (load = read + fit to 2048x1024; decode = robust decode of the corrupted file + Pillow "
          "decode of the clean one for the GT; resize = to 512x256)")  # fmt: skip

    clean = CorruptedImageDataset(items, corruptor, settings, "train", seed=0, train=True, crop=(256, 256),
                                  clean_cache=CleanJpegCache(None, "bench"))  # fmt: skip
    for k in range(len(items)):
        clean.build(k, 0)  # fills the clean-JPEG cache
    per_clean, timer_clean = time_pipeline(clean, n, first_variant=1)
    mc = statistics.median(per_clean)
    print("\nwith data.cache_clean (each photo's clean JPEG and GT kept; corruption, decode and SCA still "
          f"run per sample): {1000 * mc:.1f} ms = {1 / mc:.1f} samples/s per worker "
          f"({med / mc:.2f}x faster)")  # fmt: skip
    shares = ", ".join(f"{st} {1000 * timer_clean.seconds.get(st, 0.0) / n:.1f}" for st in STAGES)
    print(f"  ms/sample: {shares}")

    with tempfile.TemporaryDirectory() as tmp:
        cache = SampleCache(tmp, settings_fingerprint(corruptor, settings))
        cached = CorruptedImageDataset(
            items, corruptor, settings, "train", seed=0, train=True, crop=(256, 256), variants=1, cache=cache
        )
        for k in range(len(items)):
            cached.build(k, 0)
        hits = []
        for k in range(n):
            t0 = time.perf_counter()
            cached.finish(cached.build(k % len(items), 0), np.random.default_rng(k))
            hits.append(time.perf_counter() - t0)
        mh = statistics.median(hits)
        print(f"\ncached variant (data.cache_variants > 0, on disk): {1000 * mh:.1f} ms = "
              f"{1 / mh:.0f} samples/s ({med / mh:.0f}x faster than on the fly)")  # fmt: skip

    if args.workers:
        threads = args.worker_threads or None
        rate_loader = time_loader(ds, args.workers, n, threads)
        print(f"\nDataLoader with {args.workers} workers ({threads or 'unlimited'} thread(s) each): "
              f"{rate_loader:.1f} samples/s "
              f"({rate_loader / args.workers:.1f} per worker; {os.cpu_count()} CPU cores here)")  # fmt: skip


if __name__ == "__main__":
    main()
