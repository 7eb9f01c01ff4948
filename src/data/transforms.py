"""Sizes, cropping and flipping of sample arrays (resizing lives in :mod:`src.utils.images`).

Layouts: images (H, W, 3), masks (H, W). Sizes are given as (width, height), like Pillow and the paper's
"2048x1024". Crops and flips keep dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from src.data.errors import TransformError
from src.utils.images import Size


def as_size(value: Sequence[int] | None, name: str) -> Size | None:
    """(width, height) from a 2-sequence of positive ints (or None)."""
    if value is None:
        return None
    if len(value) != 2 or any(int(v) != v or v <= 0 for v in value):
        raise TransformError(f"{name} must be [width, height] of positive ints, got {list(value)!r}")
    return int(value[0]), int(value[1])


def scaled_size(size: Size, scale: Sequence[int] | float | None) -> Size:
    """Output size for an image of ``size``: ``scale`` is (W, H), a factor in (0, 1], or None (unchanged)."""
    if scale is None:
        return size
    if isinstance(scale, int | float):
        if not 0 < scale <= 1:
            raise TransformError(f"a scale factor must be in (0, 1], got {scale!r}")
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
    out = as_size(scale, "scale")
    assert out is not None
    return out


def mcu_alignment(mcu: int, in_width: int, out_width: int) -> int:
    """Crop-offset step (pixels at the output scale) that keeps crops on the JPEG MCU grid: ``mcu`` pixels at
    the corruption scale times the downscale factor, at least 1 (then alignment is sub-pixel and cannot be
    kept)."""
    return max(1, round(mcu * out_width / in_width))


def crop_to_multiple(arrays: Mapping[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """Top-left crop of every (H, W[, C]) array to the largest size whose H and W are multiples of
    ``multiple`` (the offset 0 keeps the MCU grid). Raises :class:`TransformError` if the image is smaller
    than ``multiple``."""
    first = next(iter(arrays.values()))
    h, w = first.shape[:2]
    nh, nw = h - h % multiple, w - w % multiple
    if nh == 0 or nw == 0:
        raise TransformError(f"image {w}x{h} is smaller than the size multiple {multiple}: raise the scale")
    return {k: v[:nh, :nw] for k, v in arrays.items()}


def random_crop(
    arrays: Mapping[str, np.ndarray], size: Size, align: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The same random crop of ``size`` = (W, H) from every (H, W[, C]) array, its offsets multiples of
    ``align``. Raises :class:`TransformError` if the crop is larger than the image."""
    first = next(iter(arrays.values()))
    h, w = first.shape[:2]
    cw, ch = size
    if cw > w or ch > h:
        raise TransformError(
            f"crop {cw}x{ch} is larger than the image {w}x{h}: lower data.crop or raise data.scale"
        )
    x = int(rng.integers(0, (w - cw) // align + 1)) * align
    y = int(rng.integers(0, (h - ch) // align + 1)) * align
    return {k: v[y : y + ch, x : x + cw] for k, v in arrays.items()}


def focused_crop(
    arrays: Mapping[str, np.ndarray],
    size: Size,
    align: int,
    rng: np.random.Generator,
    weight: np.ndarray,
) -> dict[str, np.ndarray]:
    """A crop of ``size`` = (W, H) (offsets multiples of ``align``) that contains a pixel drawn with
    probability proportional to ``weight`` (H, W) >= 0, e.g. ``1 - trust`` to train on the MCUs SCA had to
    fill; among the aligned crops containing it, one is drawn uniformly. Falls back to
    :func:`random_crop` when ``weight`` is all zero."""
    total = float(weight.sum())
    if not total > 0:
        return random_crop(arrays, size, align, rng)
    first = next(iter(arrays.values()))
    h, w = first.shape[:2]
    cw, ch = size
    if cw > w or ch > h:
        raise TransformError(
            f"crop {cw}x{ch} is larger than the image {w}x{h}: lower data.crop or raise data.scale"
        )
    flat = np.cumsum(weight, axis=None, dtype=np.float64)
    py, px = divmod(int(np.searchsorted(flat, rng.random() * flat[-1], side="right")), w)
    py, px = min(py, h - 1), min(px, w - 1)

    def offset(p: int, crop: int, full: int) -> int:
        lo = -(-max(0, p - crop + 1) // align)  # first aligned offset whose crop still holds p
        hi = min(p, full - crop) // align
        return min(int(rng.integers(lo, max(lo, hi) + 1)), (full - crop) // align) * align

    x, y = offset(px, cw, w), offset(py, ch, h)
    return {k: v[y : y + ch, x : x + cw] for k, v in arrays.items()}


def random_flip(
    arrays: Mapping[str, np.ndarray], rng: np.random.Generator, hflip: bool = True, vflip: bool = False
) -> dict[str, np.ndarray]:
    """The same random horizontal (and optionally vertical) flip, each with probability 1/2, on every
    array."""
    out = dict(arrays)
    if hflip and rng.random() < 0.5:
        out = {k: v[:, ::-1] for k, v in out.items()}
    if vflip and rng.random() < 0.5:
        out = {k: v[::-1] for k, v in out.items()}
    return out
