"""``python -m src.demo`` (``make demo``): the whole pipeline on the bundled photos, on CPU, in minutes.

Steps (small functions; every output under ``outputs/demo/``):
1. :func:`build_benchmark`: ``src.corrupt.run`` on scikit-image's photos, cropped to the paper's
   2048x1024, paper preset (AES-128-CBC-ESSIV, BER 1e-5) -> ``{clean,corrupted,gt,meta}/``.
2. :func:`contact_sheet`: one row per photo: clean | corrupted as Pillow shows it (libjpeg-turbo with
   ``LOAD_TRUNCATED_IMAGES``; a grey tile with the error text where Pillow gives up) | our robust decode
   (clipped) | our SCA (``dc_thumb``, no learning) -> ``contact_sheet.png``.
3. :func:`train_eval_restore`: ``python -m src.train +experiment=demo`` (a small ``gca_refine``, offline
   wandb run in ``train/wandb/``), ``python -m src.eval`` with its checkpoint (``eval/table.md``,
   ``eval/metrics.csv``, side-by-side PNGs), ``python -m src.restore`` on one corrupted file with it
   (``restore/``) and with the shipped model ``weights/gca_refine.pt`` (``restore/shipped/``).
   ``python -m src.demo --no-train`` stops after step 2.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFile

from src.corrupt import RunSummary, run
from src.corruption import Corruptor
from src.jpeg import JPEGError, decode
from src.sca import compensate
from src.utils import atomic_write_bytes

OUTPUT_DIR = Path("outputs/demo")
DEMO_SIZE = (2048, 1024)  # the paper's corruption resolution
TILE = (384, 192)  # contact-sheet tile (width, height)
CAPTION = 28  # caption strip height in px
BACKGROUND = (24, 24, 24)


def build_benchmark(
    output_dir: Path = OUTPUT_DIR, size=DEMO_SIZE, preset: str = "paper", seed: int = 0
) -> RunSummary:
    """Corrupt the bundled photos into ``output_dir`` with a corruption preset (resumable)."""
    return run(Corruptor.from_preset(preset), None, output_dir, size=size, seed=seed, progress=True)


def pillow_view(jpeg: bytes) -> Image.Image:
    """RGB image of ``jpeg`` as Pillow decodes it, tolerating truncation (raises if Pillow gives up)."""
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            return im.convert("RGB")
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def error_tile(message: str, size=TILE) -> Image.Image:
    """A grey tile carrying an error message (wrapped)."""
    tile = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(tile)
    words, lines, line = message.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > 48:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    draw.multiline_text((8, 8), "\n".join(["Pillow error:", *lines[:8]]), fill=(255, 255, 255))
    return tile


def fit_tile(img: Image.Image, size=TILE) -> Image.Image:
    """``img`` scaled to fit ``size`` (aspect kept), centred on the background colour."""
    scale = min(size[0] / img.width, size[1] / img.height)
    small = img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR
    )
    tile = Image.new("RGB", size, BACKGROUND)
    tile.paste(small, ((size[0] - small.width) // 2, (size[1] - small.height) // 2))
    return tile


def view_tile(jpeg: bytes, size=TILE) -> Image.Image:
    """Tile of a JPEG as Pillow shows it, or an error tile."""
    try:
        return fit_tile(pillow_view(jpeg), size)
    except Exception as e:  # Pillow raises assorted errors on corrupt scans: show them, do not stop
        return error_tile(f"{type(e).__name__}: {e}", size)


def captioned(tile: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (tile.width, tile.height + CAPTION), BACKGROUND)
    out.paste(tile, (0, 0))
    ImageDraw.Draw(out).text((6, tile.height + 8), text, fill=(230, 230, 230))
    return out


def restored_tiles(jpeg: bytes, size=TILE) -> tuple[Image.Image, Image.Image]:
    """Tiles of our robust decode (clipped) and of SCA ``dc_thumb`` on it (no learning)."""
    try:
        decoded = decode(jpeg)
    except JPEGError as e:
        return error_tile(str(e), size), error_tile(str(e), size)
    thumb = None
    if decoded.thumbnail:
        with Image.open(io.BytesIO(decoded.thumbnail)) as im:
            thumb = np.asarray(im.convert("RGB"))
    sca = compensate(decoded, thumb, method="dc_thumb" if thumb is not None else "dc")
    sca_rgb = np.clip(np.rint(sca.rgb * 255), 0, 255).astype(np.uint8)
    return fit_tile(Image.fromarray(decoded.to_rgb()), size), fit_tile(Image.fromarray(sca_rgb), size)


def row_columns(meta: dict, root: Path) -> list[tuple[str, Callable[[], Image.Image]]]:
    """(caption, tile maker) per column for one benchmark item: clean, then per corrupted variant:
    Pillow's view, our robust decode, our SCA."""
    clean = (root / meta["files"]["clean"]).read_bytes()
    w, h = meta["size"]
    cols = [(f"{meta['name']} clean {w}x{h} ({len(clean) // 1024} KB)", lambda: view_tile(clean))]
    for var in meta["variants"]:
        data = (root / var["path"]).read_bytes()
        text = f"Pillow: {var['n_flips']} flips, {var['differing_bytes']} bytes differ"
        cols.append((text, lambda data=data: view_tile(data)))
        robust, sca = restored_tiles(data)
        cols.append(("robust decoder (clipped)", lambda robust=robust: robust))
        cols.append(("SCA dc_thumb (no learning)", lambda sca=sca: sca))
    return cols


def contact_sheet(metas: list[Path], root: Path) -> Image.Image:
    """One row per item (columns from :func:`row_columns`)."""
    rows = []
    for path in metas:
        meta = json.loads(path.read_text())
        rows.append([captioned(make(), text) for text, make in row_columns(meta, root)])
    n_cols = max(len(r) for r in rows)
    cell_w, cell_h = TILE[0], TILE[1] + CAPTION
    sheet = Image.new("RGB", (n_cols * cell_w + (n_cols + 1) * 4, len(rows) * (cell_h + 4) + 4), (0, 0, 0))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            sheet.paste(cell, (4 + j * (cell_w + 4), 4 + i * (cell_h + 4)))
    return sheet


def save_png(img: Image.Image, path: Path) -> Path:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False)
    return atomic_write_bytes(path, buf.getvalue())


def run_module(module: str, *overrides: str) -> None:
    """``python -m <module> overrides...`` in a child process (each entry point is its own Hydra app)."""
    cmd = [sys.executable, "-m", module, *overrides]
    print("demo: $", " ".join(cmd[1:]), flush=True)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    subprocess.run(cmd, check=True, env=env)


def train_eval_restore(output_dir: Path, corrupted_file: Path) -> Path:
    """Train the small demo model, evaluate it (the paper's table) and restore one corrupted file."""
    train_dir, eval_dir, restore_dir = output_dir / "train", output_dir / "eval", output_dir / "restore"
    run_module("src.train", "+experiment=demo", "logger=wandb", f"hydra.run.dir={train_dir}")
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
    run_module("src.restore", f"input={corrupted_file}", f"ckpt_path={ckpt}", f"output_dir={restore_dir}")
    # what a user gets out of the box: the same file through the shipped model (weights/gca_refine.pt)
    run_module("src.restore", f"input={corrupted_file}", f"output_dir={restore_dir / 'shipped'}")
    return eval_dir / "table.md"


def main(output_dir: Path = OUTPUT_DIR, train: bool = True) -> Path:
    t0 = time.perf_counter()
    summary = build_benchmark(output_dir)
    sheet = contact_sheet(summary.metas, output_dir)
    path = save_png(sheet, output_dir / "contact_sheet.png")
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
    main(Path(args[0]) if args else OUTPUT_DIR, train="--no-train" not in sys.argv[1:])
