"""The per-sample pipeline: clean photo -> corrupted JPEG -> robust decode -> SCA -> training-scale arrays.

Plain functions on numpy arrays (no torch): the DataModule calls :func:`make_sample` in its CPU workers, the
benchmark times it stage by stage, ``src.eval`` reuses its parts at several resolutions.

Steps (the paper's protocol, research/paper.md §1.1): resize / centre-crop the photo to the corruption size
(the paper: 2048x1024) -> JPEG with an EXIF thumbnail and sector-level corruption (``Corruptor.corrupt``,
seeded) -> ``decode(corrupted, **decoder)`` -> the thumbnail from the decoded header -> ``compensate(decoded,
thumbnail, **sca)`` -> bicubic downscale to the training scale of the SCA image, the ground truth (the decoded
CLEAN JPEG, as the paper's GT), the trust mask (area average) and the thumbnail (bicubic-upsampled to the same
size).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from src.data.transforms import Size, resize_cover, resize_float, resize_uint8, scaled_size

log = logging.getLogger(__name__)

THUMB_SOURCES = ("header", "input", "none")
STAGES = ("load", "encode", "corrupt", "decode", "sca", "resize", "crop")


class PipelineError(ValueError):
    """A pipeline setting is invalid (unknown thumbnail source, bad sizes)."""


class StageTimer:
    """Accumulates wall-clock seconds per stage name; ``with timer("decode"): ...``. A disabled timer costs
    nothing but the context manager."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            self.calls[stage] = self.calls.get(stage, 0) + 1


@contextmanager
def _no_timer(stage: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class PipelineSettings:
    """What :func:`make_sample` does besides corrupting.

    corruption_size: (W, H) the photo is resized / centre-cropped to before encoding; None keeps its size.
    scale: output size (W, H), a factor in (0, 1] of the corruption size, or None (no downscale).
    decoder: keyword options of ``src.jpeg.decode`` (e.g. ``{"strategy": "paper"}``).
    sca: keyword options of ``src.sca.compensate`` (e.g. ``{"method": "dc_thumb"}``).
    thumb_source: ``header`` (the thumbnail stored in the corrupted file; falls back to ``input`` with a
    warning
        when the file has none), ``input`` (made from the SCA output itself: no side information, for the
        ``no_thumbnail`` ablation) or ``none`` (zeros).
    thumb_long_side: long side in pixels of an ``input`` thumbnail (the paper's 160).
    keep_corrupted: also return the robust decode, clipped (for image grids and the eval table).
    """

    corruption_size: Size | None = (2048, 1024)
    scale: Size | float | None = (512, 256)
    decoder: Mapping[str, Any] = field(default_factory=dict)
    sca: Mapping[str, Any] = field(default_factory=lambda: {"method": "dc_thumb"})
    thumb_source: str = "header"
    thumb_long_side: int = 160
    keep_corrupted: bool = False

    def __post_init__(self) -> None:
        if self.thumb_source not in THUMB_SOURCES:
            raise PipelineError(
                f"unknown thumb_source {self.thumb_source!r}; allowed: {', '.join(THUMB_SOURCES)}"
            )


def decode_thumbnail(data: bytes | None) -> np.ndarray | None:
    """uint8 (h, w, 3) RGB of thumbnail JPEG bytes, or None when there are none or Pillow cannot decode
    them."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:  # a damaged thumbnail is as good as none
        log.warning("cannot decode the header thumbnail (%d bytes): %s", len(data), exc)
        return None


def decode_jpeg_rgb(data: bytes) -> np.ndarray:
    """uint8 (H, W, 3) RGB of a clean JPEG (Pillow; the paper's ground truth is the decoded clean JPEG)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def thumbnail_of(rgb: np.ndarray, long_side: int = 160) -> np.ndarray:
    """Bicubic thumbnail of uint8 (H, W, 3) with ``long_side`` pixels on its longer side, aspect kept."""
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    return resize_uint8(rgb, (max(1, round(w * s)), max(1, round(h * s))))


def to_uint8(img01: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8, rounded half up and clipped."""
    scaled = np.multiply(img01, np.float32(255.0), dtype=np.float32)
    scaled += np.float32(0.5)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return scaled.astype(np.uint8)


def prepare_photo(rgb: np.ndarray, corruption_size: Size | None) -> np.ndarray:
    """The photo at the corruption size: uint8 (H, W, 3), resized to cover and centre-cropped (unchanged when
    ``corruption_size`` is None)."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if corruption_size is None:
        return np.ascontiguousarray(rgb)
    return resize_cover(np.ascontiguousarray(rgb), corruption_size)


def corrupt_photo(corruptor: Any, rgb: np.ndarray, seed: int, timer: Any = _no_timer) -> Any:
    """``corruptor.corrupt`` on the photo, timing encode and corrupt separately when the corruptor can encode
    on its own (``corruptor.encode(rgb) -> bytes``)."""
    encode = getattr(corruptor, "encode", None)
    if callable(encode):
        with timer("encode"):
            clean = encode(rgb)
        with timer("corrupt"):
            return corruptor.corrupt(clean, seed)
    with timer("corrupt"):
        return corruptor.corrupt(rgb, seed)


def sample_ber(sample: Any) -> float:
    """The bit-error rate used for a ``CorruptionSample`` (drawn when the corruptor holds a range)."""
    value = (getattr(sample, "settings", None) or {}).get("ber")
    return float(value) if isinstance(value, int | float) else float("nan")


_warned_no_thumbnail = False


def _warn_no_thumbnail(seed: int) -> None:
    global _warned_no_thumbnail
    level = logging.DEBUG if _warned_no_thumbnail else logging.WARNING
    log.log(level, "no decodable thumbnail in the header (seed %d): using one made from the SCA output", seed)
    _warned_no_thumbnail = True


def make_sample(
    rgb: np.ndarray | bytes,
    corruptor: Any,
    seed: int,
    settings: PipelineSettings,
    timer: Any = _no_timer,
    gt: np.ndarray | None = None,
) -> dict[str, Any]:
    """Run the pipeline on one photo (uint8 (H, W, 3) RGB, any size) with corruption seed ``seed``.

    ``rgb`` may instead be the clean JPEG bytes of an earlier sample of the same photo
    (``CorruptionSample.clean_jpeg``, encoded at the corruption size): that skips loading and encoding;
    ``gt``, that sample's ``gt``, skips decoding and resizing the ground truth as well.

    Returns, at the output scale (H, W) (no crop, no flip):
      ``sca`` float32 (H, W, 3) in [0, 1]: the SCA image (network input);
      ``gt`` uint8 (H, W, 3): the decoded clean JPEG, downscaled;
      ``mask`` float32 (H, W) in [0, 1]: SCA trust (area-averaged);
      ``thumb`` uint8 (H, W, 3): the thumbnail upsampled (bicubic) to the output size;
      ``thumb_small`` uint8 (h, w, 3): the header thumbnail itself (only when ``thumb`` was made from it);
      ``corrupted`` uint8 (H, W, 3) (only with ``keep_corrupted``): the robust decode, clipped;
      ``ber`` float, ``seed`` int, ``thumb_found`` bool (the header held a decodable thumbnail),
      ``mcu`` int: the MCU width in pixels at the corruption scale, ``corruption_size`` (W, H),
      ``clean_jpeg`` bytes: the clean file (reusable as ``rgb`` for another corruption of this photo).
    """
    from src.jpeg import decode
    from src.sca import compensate

    if isinstance(rgb, bytes | bytearray):  # a clean JPEG made earlier from the prepared photo (cached)
        with timer("corrupt"):
            sample = corruptor.corrupt(bytes(rgb), seed)
    else:
        sample = corrupt_photo(corruptor, prepare_photo(rgb, settings.corruption_size), seed, timer)
    with timer("decode"):
        decoded = decode(sample.corrupted_jpeg, **dict(settings.decoder))
        thumb_small = decode_thumbnail(decoded.thumbnail)
        gt_full = decode_jpeg_rgb(sample.clean_jpeg) if gt is None else None
    with timer("sca"):
        comp = compensate(decoded, thumb_small, **dict(settings.sca))
    full = (decoded.width, decoded.height)
    out_size = scaled_size(full, settings.scale)
    with timer("resize"):
        # SCA returns 8-bit levels (float32 k/255): resizing them as uint8 is exact and much faster; most
        # methods hand over that uint8 image too (rgb8), which saves a float -> uint8 pass at full size
        rgb8 = getattr(comp, "rgb8", None)
        sca8 = rgb8 if rgb8 is not None else to_uint8(comp.rgb)
        sca = resize_uint8(sca8, out_size).astype(np.float32) / np.float32(255.0)
        gt = resize_uint8(gt_full, out_size) if gt_full is not None else gt
        mask = np.clip(resize_float(comp.trust, out_size, resample="box"), 0.0, 1.0)
        source = settings.thumb_source
        if source == "header" and thumb_small is None:
            _warn_no_thumbnail(seed)  # once per process, then at debug level
            source = "input"
        if source == "header":
            thumb = resize_uint8(thumb_small, out_size)
        elif source == "input":
            thumb = resize_uint8(thumbnail_of(to_uint8(sca), settings.thumb_long_side), out_size)
        else:
            thumb = np.zeros((out_size[1], out_size[0], 3), np.uint8)
        result: dict[str, Any] = {
            "sca": sca.astype(np.float32, copy=False),
            "gt": gt,
            "mask": mask.astype(np.float32, copy=False),
            "thumb": thumb,
            "ber": sample_ber(sample),
            "seed": int(seed),
            "thumb_found": thumb_small is not None,
            "mcu": int(getattr(decoded, "mcu_width", 16)),
            "corruption_size": full,
            "clean_jpeg": sample.clean_jpeg,
        }
        if source == "header":
            result["thumb_small"] = np.ascontiguousarray(thumb_small)
        if settings.keep_corrupted:
            result["corrupted"] = resize_uint8(decoded.to_rgb(clip=True), out_size)
    return result
