"""Image sources for the DataModule: which photos make up the train / val / test splits, and how to load them.

Three kinds (no torch here):

- ``samples``: the real photos bundled with scikit-image (``src.utils.photos.bundled_photos``), split by name.
- ``folder``: every image under ``root`` (recursive). ``splits`` names one sub-folder per split (Cityscapes:
  ``leftImg8bit/{train,val,test}``; DIV2K: ``DIV2K_train_HR`` / ``DIV2K_valid_HR``); without ``splits`` the
  sorted file list is cut into train / val / test by ``holdout``.
- ``mate``: Debian's ``mate-backgrounds`` nature photos (``make photos`` installs them), cut by ``holdout``.

An :class:`ImageItem` is a picklable handle (a key plus an optional path); :func:`load_item` turns it into
pixels.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from src.data.errors import DatasetError
from src.utils.images import as_rgb, load_rgb
from src.utils.photos import BUNDLED_PHOTOS, bundled_photos, list_images, mate_backgrounds

log = logging.getLogger(__name__)

SOURCES = ("samples", "folder", "mate")
SPLITS = ("train", "val", "test")

#: the default split of the bundled photos, no photo in two splits (the best checkpoint, chosen on val, is
#: scored on unseen test photos); every photo not held out trains
SAMPLE_VAL = ("coffee", "retina")
SAMPLE_TEST = ("chelsea", "motorcycle")
DEFAULT_SAMPLE_SPLITS: dict[str, list[str]] = {
    "train": [n for n in BUNDLED_PHOTOS if n not in SAMPLE_VAL + SAMPLE_TEST],
    "val": list(SAMPLE_VAL),
    "test": list(SAMPLE_TEST),
}


@dataclass(frozen=True)
class ImageItem:
    """One image of a split: ``key`` names it (bundled photo name or path relative to the root), ``path`` is
    the file to read (None for bundled photos)."""

    key: str
    path: str | None = None


@cache
def _bundled() -> dict[str, np.ndarray]:
    return bundled_photos()


def bundled_names() -> list[str]:
    """Names of the bundled photos available offline."""
    return list(_bundled())


def _load_jpeg_reduced(path: str, min_size: tuple[int, int]) -> np.ndarray | None:
    """A JPEG decoded with libjpeg's DCT-domain downscaling (1/2, 1/4, 1/8) to the smallest size that still
    covers ``min_size`` = (W, H) after EXIF orientation (which it applies); None when no reduction applies
    (the caller then loads it in full). A 5640x3172 photo wanted at 2048x1024 decodes about 2x faster."""
    with Image.open(path) as im:
        if im.format != "JPEG" or im.mode not in ("RGB", "L", "YCbCr"):
            return None
        tw, th = min_size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # stored rotated by 90 degrees
            tw, th = th, tw
        w, h = im.size
        s = max(tw / w, th / h)
        if s > 0.5:  # no 1/2 reduction would still cover the target
            return None
        im.draft("RGB", (math.ceil(w * s), math.ceil(h * s)))
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))


def load_item(item: ImageItem, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Pixels of ``item``: uint8 (H, W, 3) RGB (grey photos are repeated on three channels).

    ``min_size`` = (W, H): the size the caller will resize to; large JPEGs are then decoded at a reduced
    scale that still covers it (much faster). Raises what :func:`src.utils.images.load_rgb` raises for an
    unreadable file (:class:`src.utils.images.ImageLoadError`, or OSError for a missing one).
    """
    if item.path is None:
        rgb = _bundled()[item.key]
    else:
        rgb = None
        if min_size is not None and item.path.lower().endswith((".jpg", ".jpeg")):
            try:
                rgb = _load_jpeg_reduced(item.path, min_size)
            except (OSError, ValueError, SyntaxError):
                rgb = None  # let load_rgb report the problem with its message
        if rgb is None:
            rgb = load_rgb(item.path)
    return as_rgb(rgb)


def _holdout_counts(n: int, holdout: Mapping[str, float | int]) -> tuple[int, int]:
    """Numbers of (val, test) images cut off the end of a sorted list of ``n``: ints are counts, floats
    fractions (at least one image each when the fraction is positive and the list allows it)."""

    def count(v: float | int) -> int:
        if isinstance(v, float) and 0 < v < 1:
            return max(1, round(v * n))
        if v < 0:
            raise DatasetError(f"holdout values must be >= 0 (a count or a fraction < 1), got {v!r}")
        return int(v)

    n_val, n_test = count(holdout.get("val", 0)), count(holdout.get("test", 0))
    if n_val + n_test >= n:
        raise DatasetError(
            f"holdout val={n_val} + test={n_test} leaves no training image out of {n}: lower data.holdout"
        )
    return n_val, n_test


def _cut(items: list[ImageItem], split: str, holdout: Mapping[str, float | int]) -> list[ImageItem]:
    n_val, n_test = _holdout_counts(len(items), holdout)
    n_train = len(items) - n_val - n_test
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(items))}
    lo, hi = bounds[split]
    return items[lo:hi]


def _folder_items(folder: Path, root: Path) -> list[ImageItem]:
    paths = sorted(Path(p) for p in list_images(folder, recursive=True))
    return [
        ImageItem(key=str(p.relative_to(root)) if p.is_relative_to(root) else str(p), path=str(p))
        for p in paths
    ]


def check_root(root: str | os.PathLike | None, source: str) -> Path:
    """``root`` as a Path, or a :class:`DatasetError` that says what to set when it is missing or not a
    folder."""
    if root is None or str(root) in ("", "???"):
        raise DatasetError(
            f"data.root is not set for source {source!r}: pass data.root=/path/to/images "
            "(Cityscapes: .../leftImg8bit, DIV2K: the folder holding DIV2K_train_HR)"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"data.root={str(root)!r} does not exist or is not a folder")
    return path


def list_split(
    source: str,
    split: str,
    root: str | os.PathLike | None = None,
    splits: Mapping[str, Sequence[str] | str | None] | None = None,
    holdout: Mapping[str, float | int] | None = None,
) -> list[ImageItem]:
    """The images of ``split`` ("train", "val" or "test") for ``source``.

    ``samples``: ``splits[split]`` is a list of bundled photo names (a split missing from ``splits``, or
    null: :data:`DEFAULT_SAMPLE_SPLITS`).
    ``folder``: ``splits[split]`` is a sub-folder of ``root`` (or null to fall back to ``holdout``); without
    ``splits``, all images under ``root`` are cut by ``holdout`` ({val: 0.1, test: 0.1} by default).
    ``mate``: the installed mate-backgrounds photos (``root`` overrides their folder), cut by ``holdout``.
    Raises :class:`DatasetError` for an unknown source / split, a missing or empty folder, or an unknown name.
    """
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    holdout = dict(holdout) if holdout is not None else {"val": 0.1, "test": 0.1}
    if source == "samples":
        given = (splits or {}).get(split)
        names = DEFAULT_SAMPLE_SPLITS[split] if given is None else given
        if isinstance(names, str):
            names = [names]
        available = bundled_names()
        unknown = [n for n in names if n not in available]
        if unknown:
            raise DatasetError(f"unknown bundled photo(s) {unknown}; available: {', '.join(available)}")
        return [ImageItem(key=n) for n in names]
    if source == "folder":
        base = check_root(root, source)
        sub = (splits or {}).get(split)
        if sub:
            folder = base / str(sub)
            if not folder.is_dir():
                raise DatasetError(f"split folder {str(folder)!r} for split {split!r} does not exist")
            items = _folder_items(folder, base)
            if not items:
                raise DatasetError(f"split folder {str(folder)!r} holds no image")
            return items
        items = _folder_items(base, base)
        if not items:
            raise DatasetError(f"data.root={str(root)!r} holds no image (searched recursively)")
        return _cut(items, split, holdout)
    if source == "mate":
        if root is not None and str(root) not in ("", "???"):
            base = check_root(root, source)
            items = _folder_items(base, base)
        else:
            paths = sorted(str(p) for p in mate_backgrounds())
            # the nature photos only: abstract/ holds one picture at three resolutions (a split would leak)
            paths = [p for p in paths if f"{os.sep}nature{os.sep}" in p] or paths
            items = [ImageItem(key=Path(p).name, path=p) for p in paths]
        if not items:
            raise DatasetError(
                "no mate-backgrounds photo found: install them with `make photos` "
                "(apt-get install mate-backgrounds) or set data.root"
            )
        return _cut(items, split, holdout)
    raise DatasetError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")


def readable_items(items: Sequence[ImageItem]) -> tuple[list[ImageItem], list[ImageItem]]:
    """Split ``items`` into (readable, unreadable) by opening each file's header with Pillow (cheap: no pixel
    decode). Bundled photos are always readable. A truncated file with a good header passes here and is caught
    (and skipped) when it is decoded."""
    good: list[ImageItem] = []
    bad: list[ImageItem] = []
    for item in items:
        if item.path is None:
            good.append(item)
            continue
        try:
            with Image.open(item.path) as im:
                im.size  # noqa: B018 (parses the header)
            good.append(item)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            log.warning("skipping unreadable image %s: %s", item.path, exc)
            bad.append(item)
    return good, bad
