"""``python -m src.demo`` (``make demo``): the whole pipeline on the bundled photos, on CPU, in minutes.

Steps (every output under ``outputs/demo/``):
1. :func:`build_benchmark`: ``src.corrupt``'s library (:func:`src.data.corrupted_folder.run`) on
   scikit-image's photos, cropped to the paper's 2048x1024, paper preset (AES-128-CBC-ESSIV, BER 1e-5) ->
   ``{clean,corrupted,gt,meta}/``.
2. :func:`src.restoration.pictures.contact_sheet`: one row per photo: clean | corrupted as Pillow shows it
   (libjpeg-turbo with ``LOAD_TRUNCATED_IMAGES``; a grey tile with the error text where Pillow gives up) | our
   robust decode (clipped) | our SCA (``dc_thumb``, no learning) -> ``contact_sheet.png``.
3. :func:`train_eval_restore`: ``python -m src.train experiment=demo`` (a small ``gca_refine``, offline
   wandb run in ``train/wandb/``), ``python -m src.eval`` with its checkpoint (``eval/table.md``,
   ``eval/metrics.csv``, side-by-side PNGs), ``python -m src.restore`` on one corrupted file with it
   (``restore/``) and with the shipped model ``weights/gca_refine.pt`` (``restore/shipped/``).
   ``python -m src.demo --no-train`` stops after step 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from src.corruption import Corruptor
from src.data.corrupted_folder import RunSummary, run
from src.restoration.pictures import contact_sheet
from src.utils.cli import cli_errors
from src.utils.images import write_png

OUTPUT_DIR = Path("outputs/demo")
DEMO_SIZE = (2048, 1024)  # the paper's corruption resolution


def build_benchmark(
    output_dir: Path = OUTPUT_DIR, size: tuple[int, int] = DEMO_SIZE, preset: str = "paper", seed: int = 0
) -> RunSummary:
    """Corrupt the bundled photos into ``output_dir`` with a corruption preset (resumable)."""
    return run(Corruptor.from_preset(preset), None, output_dir, size=size, seed=seed, progress=True)


def run_module(module: str, *overrides: str) -> None:
    """``python -m <module> overrides...`` in a child process (each entry point is its own Hydra app)."""
    cmd = [sys.executable, "-m", module, *overrides]
    print("demo: $", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    subprocess.run(cmd, check=True, env=env)


def train_eval_restore(output_dir: Path, corrupted_file: Path) -> Path:
    """Train the small demo model, evaluate it (the paper's table) and restore one corrupted file."""
    train_dir, eval_dir, restore_dir = output_dir / "train", output_dir / "eval", output_dir / "restore"
    run_module("src.train", "experiment=demo", "logger=wandb", f"hydra.run.dir={train_dir}")
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    run_module(
        "src.eval",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={eval_dir}",
        "data.corruption_size=[512,256]",
        "corruption.ber=1e-4",
        "bers=[1e-5,1e-4]",
        "save_images=2",
    )
    # overwrite=true: a second `make demo` replaces the demo's own outputs (src.restore refuses by default)
    run_module("src.restore", f"input={corrupted_file}", f"ckpt_path={ckpt}", f"output_dir={restore_dir}",
               "overwrite=true", "side_by_side=true")  # fmt: skip
    # what a user gets out of the box: the same file through the shipped model (weights/gca_refine.pt)
    shipped = restore_dir / "shipped"
    run_module("src.restore", f"input={corrupted_file}", f"output_dir={shipped}", "overwrite=true")
    return eval_dir / "table.md"


def main(output_dir: Path = OUTPUT_DIR, train: bool = True) -> Path:
    """Steps 1-2, then step 3 when ``train``; returns the contact sheet's path."""
    t0 = time.perf_counter()
    summary = build_benchmark(output_dir)
    path = write_png(output_dir / "contact_sheet.png", np.asarray(contact_sheet(summary.metas, output_dir)))
    metas = [json.loads(m.read_text()) for m in summary.metas]
    n_flips = [len(v["positions"]) for m in metas for v in m["variants"]]
    print(
        f"demo: {len(summary.metas)} photos at {DEMO_SIZE[0]}x{DEMO_SIZE[1]}, paper preset, "
        f"{int(np.sum(n_flips))} bit flips in all -> {output_dir}/ ; contact sheet {path} "
        f"({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    if train:
        table = train_eval_restore(output_dir, output_dir / metas[0]["variants"][0]["path"])
        print(table.read_text())
        print(f"demo: done in {time.perf_counter() - t0:.0f} s; everything is under {output_dir}/")
    return path


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-train"]
    with cli_errors("demo"):
        main(Path(args[0]) if args else OUTPUT_DIR, train="--no-train" not in sys.argv[1:])
