"""Pictures for people: ``src.eval``'s side-by-side strips and the demo's contact sheet (Pillow drawing).

The contact sheet has one row per corrupted-benchmark item (the meta JSONs of ``src.corrupt``): the clean
file, then per corrupted variant what Pillow shows of it, our robust decode (clipped) and our SCA
(``dc_thumb``, no learning) through the one restoration path (:func:`src.restoration.prepare`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from src.jpeg import JPEGError
from src.jpeg.presets import decoder_preset
from src.restoration.inputs import prepare
from src.sca.presets import sca_preset
from src.utils.images import decode_truncated

TILE = (384, 192)  # contact-sheet tile (width, height)
CAPTION = 28  # caption strip height in px
BACKGROUND = (24, 24, 24)


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """uint8 (H + 14, sum W + gaps, 3): the images in a row with a label strip above each."""
    h = max(im.shape[0] for im in images)
    gap, strip = 4, 14
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, h + strip), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for im, label in zip(images, labels, strict=True):
        canvas.paste(Image.fromarray(im), (x, strip))
        draw.text((x + 2, 1), label, fill=(0, 0, 0))
        x += im.shape[1] + gap
    return np.asarray(canvas)


def error_tile(message: str, size: tuple[int, int] = TILE) -> Image.Image:
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


def fit_tile(rgb: np.ndarray, size: tuple[int, int] = TILE) -> Image.Image:
    """uint8 (H, W, 3) ``rgb`` scaled to fit ``size`` (aspect kept), centred on the background colour."""
    img = Image.fromarray(rgb)
    scale = min(size[0] / img.width, size[1] / img.height)
    small = img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR
    )
    tile = Image.new("RGB", size, BACKGROUND)
    tile.paste(small, ((size[0] - small.width) // 2, (size[1] - small.height) // 2))
    return tile


def view_tile(jpeg: bytes, size: tuple[int, int] = TILE) -> Image.Image:
    """Tile of a JPEG as Pillow shows it, or an error tile."""
    try:
        return fit_tile(decode_truncated(jpeg), size)
    except Exception as e:  # whatever Pillow raises on a corrupt scan is what it shows: a tile, no stop
        return error_tile(f"{type(e).__name__}: {e}", size)


def captioned(tile: Image.Image, text: str) -> Image.Image:
    """``tile`` with a caption strip below it."""
    out = Image.new("RGB", (tile.width, tile.height + CAPTION), BACKGROUND)
    out.paste(tile, (0, 0))
    ImageDraw.Draw(out).text((6, tile.height + 8), text, fill=(230, 230, 230))
    return out


def restored_tiles(jpeg: bytes, size: tuple[int, int] = TILE) -> tuple[Image.Image, Image.Image]:
    """Tiles of our robust decode (``paper`` decoder preset, clipped) and of SCA ``dc_thumb`` on it."""
    try:
        result = prepare(jpeg, decoder_preset("paper"), sca_preset("dc_thumb"))
    except JPEGError as e:
        return error_tile(str(e), size), error_tile(str(e), size)
    return fit_tile(result.decoded.to_rgb(), size), fit_tile(result.sca8, size)


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
    """One row per item (columns from :func:`row_columns`) of the benchmark folder ``root``."""
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
