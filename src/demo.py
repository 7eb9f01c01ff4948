"""``python -m src.demo`` (``make demo``): a small paper-preset benchmark from the bundled photos and a
contact sheet of what a standard decoder makes of the corrupted files.

Steps (small functions, so later stages of the pipeline can be added as more columns):
1. :func:`build_benchmark`: ``src.corrupt.run`` on scikit-image's photos, cropped to the paper's
   2048x1024, paper preset (AES-128-CBC-ESSIV, BER 1e-5) -> ``outputs/demo/{clean,corrupted,gt,meta}``.
2. :func:`contact_sheet`: one row per photo, clean | corrupted as Pillow shows it (libjpeg-turbo with
   ``LOAD_TRUNCATED_IMAGES``; a grey tile with the error text where Pillow gives up)
   -> ``outputs/demo/contact_sheet.png``.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFile

from src.corrupt import RunSummary, run
from src.corruption import Corruptor
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


def row_columns(meta: dict, root: Path) -> list[tuple[str, Callable[[], Image.Image]]]:
    """(caption, tile maker) per column for one benchmark item: clean, then each corrupted variant."""
    clean = (root / meta["files"]["clean"]).read_bytes()
    w, h = meta["size"]
    cols = [(f"{meta['name']} clean {w}x{h} ({len(clean) // 1024} KB)", lambda: view_tile(clean))]
    for var in meta["variants"]:
        data = (root / var["path"]).read_bytes()
        text = f"corrupted: {var['n_flips']} flips, {var['differing_bytes']} bytes differ"
        cols.append((text, lambda data=data: view_tile(data)))
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


def main(output_dir: Path = OUTPUT_DIR) -> Path:
    t0 = time.perf_counter()
    summary = build_benchmark(output_dir)
    sheet = contact_sheet(summary.metas, output_dir)
    path = save_png(sheet, output_dir / "contact_sheet.png")
    n_flips = [len(v["positions"]) for m in summary.metas for v in json.loads(m.read_text())["variants"]]
    print(
        f"demo: {len(summary.metas)} photos at {DEMO_SIZE[0]}x{DEMO_SIZE[1]}, paper preset, "
        f"{int(np.sum(n_flips))} bit flips in all -> {output_dir}/ ; contact sheet {path} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return path


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT_DIR)
