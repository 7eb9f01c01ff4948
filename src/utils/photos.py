"""Real photographs available offline, and image-folder listing. No torch.

- :data:`BUNDLED_PHOTOS` / :func:`bundled_photos`: scikit-image's bundled photos (public domain / CC0): the
  one list of them in the project.
- :func:`mate_backgrounds`: Debian's ``mate-backgrounds`` nature photos (GPL-2+), if installed.
- :func:`list_images`: any folder of images (Cityscapes, DIV2K, your own); read them with
  :func:`src.utils.images.load_rgb`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from skimage import data as skimage_data

from src.errors import BitstreamRestoreError
from src.utils.images import IMAGE_SUFFIXES, as_rgb

MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")

#: scikit-image's bundled photos (all in its wheel, nothing is downloaded); ``motorcycle`` is the left view of
#: ``skimage.data.stereo_motorcycle``, ``camera`` a grey photo repeated to RGB
BUNDLED_PHOTOS = (
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


class PhotoError(BitstreamRestoreError):
    """An unknown bundled photo name."""


def _load_bundled(name: str) -> np.ndarray | None:
    try:
        img = skimage_data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage_data, name)()
    except Exception:  # a photo missing from this scikit-image build (or needing a download): skip it
        return None
    img = np.asarray(img)
    return as_rgb(img) if img.dtype == np.uint8 else None


def bundled_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """scikit-image's bundled real photos (:data:`BUNDLED_PHOTOS`) as uint8 (H, W, 3) RGB; ``names``: a
    subset of them, None = all that load offline. Raises :class:`PhotoError` for an unknown name."""
    wanted = BUNDLED_PHOTOS if names is None else tuple(names)
    unknown = sorted(set(wanted) - set(BUNDLED_PHOTOS))
    if unknown:
        raise PhotoError(f"unknown bundled photo(s) {unknown}; available: {list(BUNDLED_PHOTOS)}")
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


def mate_backgrounds() -> list[Path]:
    """JPEG photos of Debian's mate-backgrounds (``/usr/share/backgrounds/mate``), or [] if not installed."""
    if not MATE_BACKGROUNDS.is_dir():
        return []
    return sorted(p for p in MATE_BACKGROUNDS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
