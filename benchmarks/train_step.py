"""Training-step and inference speed of each GCA model config, on CPU by default (``--accelerator gpu``).

One training step = what ``training_step`` does per batch: generator forward, D forwards (real, fake, and
the G terms' pass), all losses, ONE backward pass of the D + G losses, a D and a G Adam step; timed inside a
Lightning fit by a callback, median over steps after warm-up. Inference = ``GCAGenerator.forward`` under
``no_grad`` on one image. Ratios are against the paper's network (``gca_refine_paper``), measured in the same
run.

    .venv/bin/python -m benchmarks.train_step [--crop 128x128 --batch 2 --steps 6 --threads 2]
    python -m benchmarks.train_step --accelerator gpu --precision bf16-mixed --crop 256x512 --batch 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
CONFIGS = ("gca_refine_paper", "gca_refine", "gca_coarse", "gca_refine_small")
BASELINE = "gca_refine_paper"


class RandomBatches(Dataset):
    """Random tensors shaped like the batch contract (speed does not depend on content)."""

    def __init__(self, n: int, height: int, width: int) -> None:
        self.n, self.h, self.w = n, height, width

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        h, w = self.h, self.w
        return {
            "sca": torch.rand(3, h, w, generator=g),
            "thumb": torch.rand(3, h, w, generator=g),
            "gt": torch.rand(3, h, w, generator=g),
            "mask": torch.ones(1, h, w),
        }


class StepTimer(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_train_batch_start(self, *args) -> None:
        _sync()
        self._t = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        _sync()
        self.times.append(time.perf_counter() - self._t)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build(name: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return instantiate(compose(config_name=name))


def time_training(
    name: str,
    crop: tuple[int, int],
    batch: int,
    steps: int,
    accelerator: str,
    precision: str,
    warmup: int = 2,
) -> float:
    module = build(name)
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=-1,
        max_epochs=1,
        limit_train_batches=steps + warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    loader = DataLoader(RandomBatches((steps + warmup) * batch, *crop), batch_size=batch)
    trainer.fit(module, loader)
    return statistics.median(timer.times[warmup:])


def time_inference(name: str, height: int, width: int, device: str, bf16: bool, repeats: int = 3) -> float:
    net = build(name).net.eval().to(device)
    x = {
        k: torch.rand(1, c, height, width, device=device) for k, c in (("sca", 3), ("thumb", 3), ("mask", 1))
    }
    times = []
    with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
        net(x["sca"], x["thumb"], x["mask"])  # warm-up
        for _ in range(repeats):
            _sync()
            t = time.perf_counter()
            net(x["sca"], x["thumb"], x["mask"])
            _sync()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", default="128x128", help="training crop HxW (multiples of 32)")
    ap.add_argument("--accelerator", default="cpu", help="cpu or gpu")
    ap.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed on GPU")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per config (after 2 warm-up steps)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--infer", default="256x512", help="inference image HxW")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    ih, iw = (int(v) for v in args.infer.split("x"))
    crop = tuple(int(v) for v in args.crop.split("x"))
    gpu = args.accelerator == "gpu"
    where = torch.cuda.get_device_name() if gpu else f"CPU, {args.threads} threads"
    print(
        f"torch {torch.__version__}, {where}, {args.precision}; train: batch {args.batch} x "
        f"{crop[0]}x{crop[1]}, median of {args.steps} steps; inference: 1 x {ih}x{iw}"
    )
    rows = {}
    names = [BASELINE] + [c for c in args.configs if c != BASELINE]
    for name in names:
        step = time_training(name, crop, args.batch, args.steps, args.accelerator, args.precision)
        infer = time_inference(name, ih, iw, "cuda" if gpu else "cpu", "bf16" in args.precision)
        params = sum(p.numel() for p in build(name).net.parameters())
        rows[name] = (params, step, infer)
    base_step, base_infer = rows[BASELINE][1], rows[BASELINE][2]
    head = ("config", "G params", "step ms", "train img/s", "vs paper", "infer ms", "vs paper")
    print(f"{head[0]:18} {head[1]:>10} {head[2]:>9} {head[3]:>12} {head[4]:>9} {head[5]:>9} {head[6]:>9}")
    for name, (params, step, infer) in rows.items():
        print(
            f"{name:18} {params / 1e6:9.2f}M {step * 1e3:9.0f} {args.batch / step:12.2f} "
            f"{base_step / step:8.2f}x {infer * 1e3:9.0f} {base_infer / infer:8.2f}x"
        )


if __name__ == "__main__":
    main()
