"""Training speed of a small photo folder (epochs of a few batches) against the speed inside a long epoch.

A 10-photo folder (``data=folder``, 8 train / 1 val / 1 test photos) makes epochs of 2 batches: each epoch end
used to validate, write checkpoints and restart the DataLoader workers. Runs ``src.train`` itself (composed
config, real callbacks, loggers and DataLoader workers), the small model on CPU by default:

- ``long``: the same photos repeated (``data.train_repeats``) into ONE long epoch: the in-epoch speed is the
  median interval between consecutive training batches, epoch ends left out (the baseline);
- ``short``: the 10-photo folder as it comes (2 batches per epoch), today's defaults
  (``callbacks.short_epochs``, persistent workers): training batches / seconds from the first to the last
  training batch, everything included (epoch ends, validations, checkpoints);
- ``short_old``: the same without them (``callbacks.short_epochs.min_batches=0
  data.persistent_workers=false``: validation, checkpoints and new workers after every epoch), the behaviour
  before.

Prints batches/s and the ratios to the in-epoch speed, medians over ``--repeats`` runs. The photos are the
bundled ones (written to a temporary folder); ``--photos DIR`` takes the first 10 images of DIR instead.

    python -m benchmarks.short_epochs [--batches 40 --workers 2 --repeats 1 --photos DIR]
    python -m benchmarks.short_epochs --accelerator gpu --model gca_refine --workers 8 --batches 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback

from src.utils.hydra_utils import set_project_root

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("PROJECT_ROOT", str(ROOT))
os.environ["WANDB_MODE"] = "disabled"

set_project_root()


class BatchClock(Callback):
    """Wall-clock time at the end of every training batch, with its epoch."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, *args) -> None:
        self.marks.append((trainer.current_epoch, time.perf_counter()))

    def in_epoch_rate(self) -> float:
        """Batches/s from the median interval between consecutive batches of the same epoch."""
        gaps = [b - a for (ea, a), (eb, b) in zip(self.marks, self.marks[1:], strict=False) if ea == eb]
        return 1.0 / statistics.median(gaps[2:] or gaps)  # the first batches warm up

    def overall_rate(self) -> float:
        """Batches/s from the first to the last batch end (epoch ends, validation, checkpoints included)."""
        return (len(self.marks) - 1) / (self.marks[-1][1] - self.marks[0][1])


def make_folder(folder: Path, source: str | None) -> Path:
    """10 photos as JPEG files: the first 10 of ``source``, or the 9 bundled photos plus a mirrored one."""
    from PIL import Image

    from src.utils.photos import bundled_photos, list_images, load_rgb

    folder.mkdir(parents=True, exist_ok=True)
    if source:
        photos = [load_rgb(p) for p in list_images(source)[:10]]
    else:
        photos = list(bundled_photos().values())
        photos.append(np.ascontiguousarray(photos[0][:, ::-1]))
    for i, rgb in enumerate(photos[:10]):
        Image.fromarray(rgb).save(folder / f"photo{i:02d}.jpg", quality=92)
    return folder


def run_training(
    folder: Path,
    out: Path,
    batches: int,
    workers: int,
    mode: str,
    accelerator: str = "cpu",
    model: str = "gca_refine_small",
) -> BatchClock:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from src.train import train

    per_epoch = 2  # 8 training photos, batch 4
    overrides = [
        "experiment=gca_refine", f"model={model}", f"trainer.accelerator={accelerator}", "logger=csv",
        "test=false",
        "data=folder", f"data.root={folder}", "data.holdout={val: 1, test: 1}",
        "data.corruption_size=[512,256]", "data.scale=[256,128]", "data.crop=[128,128]",
        "data.size_multiple=64", "data.batch_size=4",
        f"data.num_workers={workers}", "data.pin_memory=false", "extras.print_config=false",
        "callbacks.rich_progress_bar=null", "callbacks.model_summary=null", "trainer.num_sanity_val_steps=0",
        "+trainer.enable_progress_bar=false",
    ]  # fmt: skip
    if mode == "long":
        overrides += [f"data.train_repeats={batches // per_epoch}", "trainer.max_epochs=1"]
    else:
        overrides += [f"trainer.max_epochs={batches // per_epoch}"]
    if mode == "short_old":
        overrides += ["callbacks.short_epochs.min_batches=0", "data.persistent_workers=false"]
    from hydra import compose, initialize_config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.job.num = 0
        cfg.paths.output_dir = str(out)
        cfg.callbacks.batch_clock = {"_target_": f"{__name__}.BatchClock"}
    HydraConfig().set_config(cfg)
    GlobalHydra.instance().clear()
    _, objects = train(cfg)
    return next(c for c in objects["callbacks"] if type(c).__name__ == "BatchClock")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40, help="training batches per run (even)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--repeats", type=int, default=1, help="runs per mode (medians are printed)")
    ap.add_argument("--photos", default=None, help="take the first 10 images of this folder")
    ap.add_argument("--accelerator", default="cpu", help="cpu or gpu (one device)")
    ap.add_argument("--model", default="gca_refine_small", help="model config")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {"long": [], "short": [], "short_old": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "photos", args.photos)
        for r in range(args.repeats):
            for mode in ("long", "short", "short_old"):
                out = Path(tmp) / f"{mode}_{r}"
                clock = run_training(
                    folder, out, args.batches, args.workers, mode, args.accelerator, args.model
                )
                rate = clock.in_epoch_rate() if mode == "long" else clock.overall_rate()
                rates[mode].append(rate)
                n = len(clock.marks)
                print(f"  {mode:10} run {r}: {rate:.2f} batches/s over {n} batches", flush=True)
    base = statistics.median(rates["long"])
    print(f"\n10-photo folder, {args.batches} batches of 4 crops 128x128, {args.model}, {args.accelerator}, "
          f"{args.workers} workers (medians of {args.repeats})")  # fmt: skip
    print(f"  inside a long epoch (baseline)           {base:6.2f} batches/s")
    for mode, what in (("short", "2-batch epochs, defaults"), ("short_old", "2-batch epochs, before")):
        rate = statistics.median(rates[mode])
        print(f"  {what:40} {rate:6.2f} batches/s   ratio {rate / base:.2f}")


if __name__ == "__main__":
    main()
