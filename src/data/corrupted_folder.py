"""A corrupted-JPEG benchmark folder (the library of ``python -m src.corrupt``).

For every input image (a folder, recursive, or scikit-image's bundled photos when ``input_dir`` is None),
optionally resized/cropped to ``size`` (e.g. ``(2048, 1024)``, the paper's), :func:`run` writes under
``output_dir``:

  clean/<name>.jpg            the clean JPEG (with its EXIF thumbnail if enabled)
  corrupted/<name>[_sK].jpg   the corrupted copies (``_sK`` only when ``seeds_per_image`` > 1)
  gt/<name>.png               the decoded clean JPEG (the ground truth, as in the paper)
  meta/<name>.json            settings, seeds, flip positions, sizes (written last: its presence = done)

``<name>`` is the path relative to the input folder without suffix. Re-running skips finished items
(resumable; all writes are atomic). Seeds are derived from (``seed``, name, variant) so an item's
corruption does not depend on which other files are in the folder.

``reencode=False`` corrupts each JPEG file of ``input_dir`` as its own bytes (headers, EXIF, thumbnail and
restart markers kept): ``clean/`` is then a copy of the input, and ``size`` must be None. Other files are
listed as failed.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from src.corruption import CorruptionError, Corruptor
from src.data.errors import DataError
from src.utils import atomic_write_bytes, atomic_write_text
from src.utils.images import ImageLoadError, decode_jpeg_rgb, encode_png, load_rgb, resize_cover, resize_uint8
from src.utils.photos import bundled_photos, list_images
from src.utils.seeds import derive_seed

log = logging.getLogger(__name__)
RESIZE_MODES = ("crop", "resize")


class InputError(DataError):
    """Bad input: missing or empty input folder, bad size or seed, an output folder made otherwise."""


@dataclass
class InputItem:
    """One image to corrupt: ``name`` (relative path without suffix, '/'-separated), ``source`` (a file
    path or ``skimage:<photo>``) and a loader returning uint8 (H, W, 3) RGB."""

    name: str
    source: str
    load: Callable[[], np.ndarray]


@dataclass
class RunSummary:
    """What :func:`run` did: counts and the meta JSON paths of all finished items."""

    output_dir: Path
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    metas: list[Path] = field(default_factory=list)


def collect_inputs(
    input_dir: str | Path | None, recursive: bool = True, limit: int | None = None
) -> list[InputItem]:
    """The images to process; bundled photos when ``input_dir`` is None. Raises :class:`InputError` for a
    missing, non-folder or image-less ``input_dir``."""
    if input_dir is None:
        photos = bundled_photos()
        items = [InputItem(n, f"skimage:{n}", (lambda img=img: img)) for n, img in photos.items()]
    else:
        root = Path(input_dir).expanduser()
        try:
            files = list_images(root, recursive=recursive)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise InputError(f"input_dir: {e}") from None
        if not files:
            raise InputError(
                f"input_dir {str(root)!r} holds no images ({'recursive' if recursive else 'top level'})"
            )
        items = [
            InputItem(f.relative_to(root).with_suffix("").as_posix(), str(f), (lambda f=f: load_rgb(f)))
            for f in files
        ]
    return items[:limit] if limit else items


def parse_size(size: Any) -> tuple[int, int] | None:
    """(width, height) from None, [w, h] or "WxH"."""
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().split("x")
    else:
        parts = list(size)
    try:
        w, h = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise InputError(f"size must be [width, height] or 'WxH' (pixels), got {size!r}") from None
    if w < 1 or h < 1:
        raise InputError(f"size must be positive, got {size!r}")
    return w, h


def fit_size(rgb: np.ndarray, size: tuple[int, int] | None, mode: str = "crop") -> np.ndarray:
    """Resize uint8 (H, W, 3) to ``size`` = (width, height): ``crop`` scales to cover it and centre-crops
    (aspect kept, :func:`src.utils.images.resize_cover`); ``resize`` scales to it exactly
    (:func:`src.utils.images.resize_uint8`). None returns the image unchanged."""
    if size is None:
        return rgb
    if mode not in RESIZE_MODES:
        raise InputError(f"resize_mode must be one of {RESIZE_MODES}, got {mode!r}")
    return resize_cover(rgb, size) if mode == "crop" else resize_uint8(rgb, size)


def item_seed(base_seed: int, name: str, variant: int) -> int:
    """Deterministic 32-bit seed of variant ``variant`` of item ``name``."""
    return derive_seed(base_seed, zlib.crc32(name.encode()), variant)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


_NUMBER_LIST = re.compile(r"\[\s*([-0-9.eE+]+(?:,\s*[-0-9.eE+]+)*)\s*\]")


def dumps_meta(meta: dict) -> str:
    """Indented JSON with lists of numbers (positions, sizes) kept on one line."""
    text = json.dumps(meta, indent=1)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", "", m.group(1)).replace(",", ", ") + "]", text)


def process_item(
    corruptor: Corruptor,
    item: InputItem,
    output_dir: Path,
    *,
    seeds_per_image: int = 1,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    resize_mode: str = "crop",
    reencode: bool = True,
) -> dict:
    """Load, fit, encode and corrupt one item; write its files (meta JSON last). Returns the meta dict.

    ``reencode=False``: the item's file bytes are the clean file (headers, EXIF, thumbnail and restart
    markers kept; ``corruptor.add_thumbnail`` decides whether a file without a thumbnail gets one).
    """
    if reencode:
        original = item.load()
        rgb = fit_size(original, size, resize_mode)
        clean = corruptor.prepare(rgb)
        gt = decode_jpeg_rgb(clean)
    else:
        try:
            data = Path(item.source).read_bytes()
        except OSError as e:
            raise ImageLoadError(f"cannot read {item.source}: {e}") from None
        clean = corruptor.prepare(data)  # CorruptionError for a file that is no JPEG
        try:
            gt = decode_jpeg_rgb(clean)
        except OSError as e:
            raise ImageLoadError(f"Pillow cannot decode {item.source}: {e}") from None
        original = rgb = gt
    name = item.name
    paths = {
        "clean": f"clean/{name}.jpg",
        "gt": f"gt/{name}.png",
        "corrupted": [
            f"corrupted/{name}.jpg" if seeds_per_image == 1 else f"corrupted/{name}_s{k}.jpg"
            for k in range(seeds_per_image)
        ],
    }
    atomic_write_bytes(output_dir / paths["clean"], clean)
    atomic_write_bytes(output_dir / paths["gt"], encode_png(gt, compress_level=1))
    variants = []
    for k in range(seeds_per_image):
        sample = corruptor.corrupt(clean, item_seed(seed, name, k))
        atomic_write_bytes(output_dir / paths["corrupted"][k], sample.corrupted_jpeg)
        record = sample.to_json_dict()
        record.pop("settings")
        record.update(variant=k, ber=sample.ber, path=paths["corrupted"][k])
        variants.append(record)
    meta = {
        "name": name,
        "source": item.source,
        "original_size": [int(original.shape[1]), int(original.shape[0])],
        "size": [int(rgb.shape[1]), int(rgb.shape[0])],
        "resize": {"size": list(size) if size else None, "mode": resize_mode},
        "reencode": bool(reencode),
        "files": paths,
        "clean_bytes": len(clean),
        "scan": sample.settings["scan"],
        "region_bits": sample.settings["region_bits"],
        "thumbnail_bytes": len(sample.thumbnail) if sample.thumbnail else 0,
        "settings": _jsonable(corruptor.settings()),
        "base_seed": int(seed),
        "seeds_per_image": int(seeds_per_image),
        "variants": variants,
    }
    atomic_write_text(output_dir / "meta" / f"{name}.json", dumps_meta(meta))
    return meta


def _check_existing(
    meta_path: Path, corruptor: Corruptor, seeds_per_image: int, seed: int, size, reencode: bool = True
) -> bool:
    """True if ``meta_path`` records the same settings (skip the item); raises if it records others."""
    if not meta_path.is_file():
        return False
    try:
        old = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False  # unreadable (should not happen with atomic writes): redo it
    same = (
        old.get("settings") == _jsonable(corruptor.settings())
        and old.get("seeds_per_image") == seeds_per_image
        and old.get("base_seed") == seed
        and (old.get("resize") or {}).get("size") == (list(size) if size else None)
        and old.get("reencode", True) == bool(reencode)
    )
    if not same:
        raise InputError(
            f"{str(meta_path)!r} was made with other settings (corruption, seed, seeds_per_image, size or "
            "reencode): "
            "use another output_dir or pass overwrite=true"
        )
    return True


def run(
    corruptor: Corruptor,
    input_dir: str | Path | None,
    output_dir: str | Path,
    *,
    size: Any = None,
    resize_mode: str = "crop",
    seeds_per_image: int = 1,
    seed: int = 0,
    recursive: bool = True,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    reencode: bool = True,
) -> RunSummary:
    """Corrupt every input image into ``output_dir`` (see the module docstring); resumable.

    Unreadable images are skipped with a warning and listed in ``RunSummary.failed``.
    """
    if isinstance(seeds_per_image, bool) or not isinstance(seeds_per_image, int) or seeds_per_image < 1:
        raise InputError(f"seeds_per_image must be a positive integer, got {seeds_per_image!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if resize_mode not in RESIZE_MODES:
        raise InputError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
    size = parse_size(size)
    if not reencode and (size is not None or input_dir is None):
        raise InputError("reencode=false corrupts the files' own bytes: it needs input_dir and size=null")
    items = collect_inputs(input_dir, recursive=recursive, limit=limit)
    out = Path(output_dir)
    summary = RunSummary(out)
    for item in tqdm(items, desc="corrupt", unit="img", disable=not progress, file=sys.stderr):
        meta_path = out / "meta" / f"{item.name}.json"
        if not overwrite and _check_existing(meta_path, corruptor, seeds_per_image, seed, size, reencode):
            summary.skipped += 1
            summary.metas.append(meta_path)
            continue
        try:
            process_item(
                corruptor,
                item,
                out,
                seeds_per_image=seeds_per_image,
                seed=seed,
                size=size,
                resize_mode=resize_mode,
                reencode=reencode,
            )
        except (ImageLoadError, CorruptionError) as e:
            log.warning("skipping %s: %s", item.source, e)
            summary.failed.append(item.source)
            continue
        summary.done += 1
        summary.metas.append(meta_path)
    return summary


def load_benchmark(root: str | Path) -> list[dict]:
    """The meta records (the dicts :func:`process_item` wrote) of the ``src.corrupt`` folder ``root``, sorted
    by name: each names its ground truth (``files.gt``, relative to ``root``: the decoded clean file), its
    clean file (``files.clean``), the original (``source``) and per corrupted variant ``path``, ``seed``,
    ``ber``, ``n_flips`` and ``differing_bytes``. Raises :class:`InputError` for a missing folder, a folder
    without ``meta/*.json`` or a record that is not one of these."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise InputError(f"benchmark folder {str(root)!r} does not exist or is not a folder")
    paths = sorted((base / "meta").rglob("*.json"))
    if not paths:
        raise InputError(
            f"{str(root)!r} is not a src.corrupt folder: it holds no meta/*.json "
            "(make one with python -m src.corrupt output_dir=DIR)"
        )
    metas = []
    for path in paths:
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read {str(path)!r}: {e}") from None
        if not isinstance(meta, dict) or "gt" not in meta.get("files", {}) or not meta.get("variants"):
            raise InputError(f"{str(path)!r} is not a src.corrupt record (no files.gt or no variants)")
        metas.append(meta)
    return metas
