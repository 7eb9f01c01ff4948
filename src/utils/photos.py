"""Real photographs available offline, and image-folder helpers. No torch.

- :func:`bundled_photos`: scikit-image's bundled photos (public domain / CC0; see research/env.md §5).
- :func:`mate_backgrounds`: Debian's ``mate-backgrounds`` nature photos (GPL-2+), if installed.
- :func:`list_images` / :func:`load_rgb`: any folder of images (Cityscapes, DIV2K, your own).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")

# name -> skimage.data function (all in the scikit-image wheel, nothing is downloaded)
_BUNDLED = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "motorcycle",
    "camera",
)


class ImageLoadError(ValueError):
    """A file that is not a readable image (the message names the file)."""


def _load_bundled(name: str) -> np.ndarray | None:
    from skimage import data

    try:
        if name == "motorcycle":
            img = data.stereo_motorcycle()[0]  # the left view
        else:
            img = getattr(data, name)()
    except Exception:  # a photo missing from this scikit-image build (or needing a download): skip it
        return None
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        return None
    return np.ascontiguousarray(img[:, :, :3])


def bundled_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """scikit-image's bundled real photos as uint8 (H, W, 3) RGB (grey ``camera`` repeated to RGB).

    names: a subset of astronaut, coffee, chelsea, rocket, hubble_deep_field, retina,
    immunohistochemistry, motorcycle (left view of stereo_motorcycle), camera; None = all that load offline.
    """
    wanted = _BUNDLED if names is None else tuple(names)
    unknown = sorted(set(wanted) - set(_BUNDLED))
    if unknown:
        raise ValueError(f"unknown bundled photo(s) {unknown}; available: {list(_BUNDLED)}")
    out = {}
    for name in wanted:
        img = _load_bundled(name)
        if img is not None:
            out[name] = img
    return out


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by suffix, case-insensitive), sorted; [] if there are none.

    Raises FileNotFoundError / NotADirectoryError naming the folder if it is missing or not a folder.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"image folder not found: {str(root)!r}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {str(root)!r}")
    files = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) RGB of an image file, EXIF orientation applied (alpha dropped, grey repeated,
    16-bit scaled to 8). Raises :class:`ImageLoadError` naming the file if it is not a readable image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                scale = 255.0 / 65535.0 if a.max() > 255 else 1.0
                rgb = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
                return np.ascontiguousarray(np.repeat(rgb[:, :, None], 3, axis=2))
            return np.asarray(im.convert("RGB")).copy()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"cannot read {str(path)!r} as an image: {e}") from e


def mate_backgrounds() -> list[Path]:
    """JPEG photos of Debian's mate-backgrounds (``/usr/share/backgrounds/mate``), or [] if not installed."""
    if not MATE_BACKGROUNDS.is_dir():
        return []
    return sorted(p for p in MATE_BACKGROUNDS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
