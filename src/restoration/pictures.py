"""Pictures for people (Pillow drawing): labelled panels (:func:`side_by_side`: ``src.eval``'s pictures and
``src.restore``'s ``side_by_side=true`` picture, :func:`restore_comparison`) and the demo's contact sheet.

The contact sheet has one row per corrupted-benchmark item (the meta JSONs of ``src.corrupt``): the clean
file, then per corrupted variant what Pillow shows of it, our robust decode (clipped) and our SCA
(``dc_thumb``, no learning) through the one restoration path (:func:`src.restoration.prepare`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from src.jpeg import JPEGError
from src.jpeg.presets import decoder_preset
from src.restoration.inputs import prepare
from src.sca.presets import sca_preset
from src.utils.images import Size, as_rgb, decode_truncated, resize_uint8

log = logging.getLogger(__name__)

LABEL_SIZE = 18  # px: label text of side-by-side pictures
MIN_PANEL = 384  # px: narrower panels are enlarged by a whole factor (nearest neighbour)
GAP = 6  # px between panels
TILE = (384, 192)  # contact-sheet tile (width, height)
CAPTION = 28  # caption strip height in px
BACKGROUND = (24, 24, 24)


def label_font(size: int = LABEL_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` px (scalable since Pillow 10.1; the small bitmap font before)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # an older Pillow, or one built without FreeType
        return ImageFont.load_default()


def fit_width(rgb: np.ndarray, width: int | None, min_width: int = MIN_PANEL) -> np.ndarray:
    """uint8 (H, W, 3) ``rgb`` shrunk (bicubic, aspect kept) to ``width`` px when it is wider, or enlarged by
    the smallest whole factor (nearest neighbour: every pixel a visible square) that makes it at least
    ``min_width`` px wide when it is narrower."""
    w = rgb.shape[1]
    if width is not None and w > width:
        height = max(1, round(rgb.shape[0] * width / w))
        return resize_uint8(np.ascontiguousarray(rgb), (width, height))
    if w < min_width:
        k = -(-min_width // w)
        return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)
    return rgb


def wrap_label(draw: ImageDraw.ImageDraw, text: str, width: int, font: Any) -> list[str]:
    """``text`` cut into lines of at most ``width`` px (at spaces; a longer word is cut where it must)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        cand = f"{line} {word}".strip()
        if draw.textlength(cand, font=font) <= width or not line:
            line = cand
        else:
            lines.append(line)
            line = word
        while draw.textlength(line, font=font) > width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and draw.textlength(line[:cut], font=font) > width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    return [*lines, line] if line else lines


def side_by_side(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    columns: int | None = None,
    panel_width: int | None = None,
    title: str | None = None,
) -> np.ndarray:
    """uint8 (H, W, 3): the panels in a grid of ``columns`` (default: one row), each under its label
    (:data:`LABEL_SIZE` px text, wrapped to the panel's width), each shrunk to ``panel_width`` px when wider
    or enlarged to :data:`MIN_PANEL` px when narrower (:func:`fit_width`), with an optional ``title`` on
    top. The one home of labelled panel pictures (``src.eval``, ``src.restore``). Grey (H, W) panels (masks)
    are shown as grey."""
    font = label_font()
    line_h = LABEL_SIZE + 4
    shown = [fit_width(as_rgb(np.asarray(im)), panel_width) for im in images]
    columns = len(shown) if not columns else max(1, min(columns, len(shown)))
    cell_w = max(im.shape[1] for im in shown)
    width = columns * cell_w + GAP * (columns - 1)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [wrap_label(scratch, text, cell_w - 8, font) for text in labels]
    title_lines = wrap_label(scratch, title, width - 8, font) if title else []
    rows = [list(range(i, min(i + columns, len(shown)))) for i in range(0, len(shown), columns)]
    strips = [max(len(wrapped[k]) for k in row) * line_h + 6 for row in rows]
    row_h = [max(shown[k].shape[0] for k in row) + strip for row, strip in zip(rows, strips, strict=True)]
    top = len(title_lines) * line_h + (6 if title_lines else 0)
    canvas = Image.new("RGB", (width, top + sum(row_h) + GAP * (len(rows) - 1)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(title_lines):
        draw.text((4, 3 + i * line_h), line, fill=(0, 0, 0), font=font)
    y = top
    for row, strip, height in zip(rows, strips, row_h, strict=True):
        for c, k in enumerate(row):
            x = c * (cell_w + GAP)
            for i, line in enumerate(wrapped[k]):
                draw.text((x + 4, y + 3 + i * line_h), line, fill=(0, 0, 0), font=font)
            canvas.paste(Image.fromarray(shown[k]), (x, y + strip))
        y += height + GAP
    return np.asarray(canvas)


def damage_window(error: np.ndarray, size: Size) -> tuple[int, int]:
    """(left, top) of the ``size`` = (w, h) window of float (H, W) ``error`` with the largest sum (searched
    on a grid of 1/8 of the window), so a crop shows where the damage is; (0, 0) when it covers it all."""
    h, w = error.shape
    cw, ch = min(size[0], w), min(size[1], h)
    integral = np.zeros((h + 1, w + 1), np.float64)
    integral[1:, 1:] = np.cumsum(np.cumsum(error, axis=0), axis=1)
    tops = np.unique(np.r_[np.arange(0, h - ch + 1, max(1, ch // 8)), h - ch])
    lefts = np.unique(np.r_[np.arange(0, w - cw + 1, max(1, cw // 8)), w - cw])
    t, left = np.meshgrid(tops, lefts, indexing="ij")
    sums = integral[t + ch, left + cw] - integral[t, left + cw] - integral[t + ch, left] + integral[t, left]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(lefts[j]), int(tops[i])


def pillow_view(data: bytes, size: Size) -> np.ndarray:
    """uint8 (H, W, 3): what Pillow shows of a corrupted JPEG (:func:`src.utils.images.decode_truncated`); a
    uniform grey image of ``size`` = (W, H) where it raises or decodes another size."""
    try:
        rgb = decode_truncated(data)
    except Exception as exc:  # whatever Pillow raises on spurious markers is the "standard decoder" result
        log.debug("Pillow failed on a corrupted file: %s", exc)
        rgb = None
    if rgb is None or rgb.shape[1::-1] != tuple(size):
        return np.full((size[1], size[0], 3), 128, np.uint8)
    return rgb


def restore_comparison(
    data: bytes, restored: np.ndarray, trust: np.ndarray | None, restored_label: str, panel_width: int = 1024
) -> np.ndarray:
    """``src.restore``'s side-by-side picture of one file: what Pillow shows of the JPEG bytes ``data`` |
    uint8 (H, W, 3) ``restored`` (labelled ``restored_label``) | float (H, W) ``trust`` in [0, 1] as grey
    (white = trusted, black = filled or untrusted; a black panel when None), each panel at most
    ``panel_width`` px wide, in one row."""
    h, w = restored.shape[:2]
    if trust is None:
        mask, share = np.zeros((h, w), np.uint8), "none"
    else:
        t = np.clip(np.asarray(trust, np.float64), 0.0, 1.0)
        mask, share = np.rint(t * 255).astype(np.uint8), f"{100 * float(t.mean()):.1f} % trusted"
    return side_by_side(
        [pillow_view(data, (w, h)), restored, mask],
        ["Pillow decode (what a viewer shows)", restored_label, f"trust mask, white = trusted ({share})"],
        panel_width=panel_width,
    )


def eval_picture(
    images: Mapping[str, np.ndarray],
    psnr: Mapping[str, float],
    names: Sequence[str],
    crop: Size | None,
    title: str,
    focus: str | None = None,
) -> np.ndarray:
    """``src.eval``'s picture of one file: the outputs ``images[name]`` (uint8 (H, W, 3), one size, with
    ``images["gt"]``) of ``names`` at their own size, each labelled with its Y-PSNR ``psnr[name]`` (dB, over
    the whole image), in rows of three. Images larger than ``crop`` = (w, h) are cut to the window where the
    panel ``focus`` (default: the first) differs most from the ground truth (:func:`damage_window`): where the
    restoration is worst; the ``title`` line says what was cut."""
    gt = images["gt"]
    h, w = gt.shape[:2]
    focus = focus if focus in images else names[0]
    left, top, (cw, ch) = 0, 0, (w, h)
    if crop is not None and (w > crop[0] or h > crop[1]):
        cw, ch = min(crop[0], w), min(crop[1], h)
        error = np.abs(images[focus].astype(np.float32) - gt.astype(np.float32)).mean(axis=2)
        left, top = damage_window(error, (cw, ch))
    where = ""
    if (cw, ch) != (w, h):
        where = f"; crop {cw}x{ch} at x={left}, y={top} (where {focus} is worst)"
    panels, labels = [], []
    for name in names:
        panels.append(images[name][top : top + ch, left : left + cw])
        labels.append("ground truth" if name == "gt" else f"{name}: {psnr[name]:.2f} dB")
    title = f"{title}; {w}x{h}{where}; Y-PSNR of the whole image"
    return side_by_side(panels, labels, columns=3, title=title)


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
