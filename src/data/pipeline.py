"""The per-sample pipeline: clean photo -> corrupted JPEG -> the model's input and ground truth.

Plain functions on numpy arrays (no torch at import): the DataModule calls :func:`make_sample` in its CPU
workers, the benchmark times it stage by stage.

Steps (the paper's protocol: its training images are made this way): resize / centre-crop the photo to the
corruption size (the paper: 2048x1024) -> JPEG with an EXIF thumbnail and sector-level corruption
(``Corruptor.corrupt``, seeded) -> decode, thumbnail choice and SCA (:func:`src.restoration.prepare`) -> the
model's input at the training scale (:func:`src.restoration.model_input`: the same arrays ``src.eval`` and
``src.restore`` give the model) and the ground truth (the decoded CLEAN JPEG, as the paper's GT,
bicubic-downscaled).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.data.errors import PipelineError
from src.data.transforms import scaled_size
from src.restoration.inputs import THUMB_SOURCES, Timer, model_input, prepare
from src.utils.images import THUMBNAIL_LONG_SIDE, Size, decode_jpeg_rgb, resize_cover, resize_uint8

log = logging.getLogger(__name__)

STAGES = ("load", "encode", "corrupt", "decode", "sca", "resize", "crop")


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


@dataclass(frozen=True)
class PipelineSettings:
    """What :func:`make_sample` does besides corrupting.

    corruption_size: (W, H) the photo is resized / centre-cropped to before encoding; None keeps its size.
    scale: output size (W, H), a factor in (0, 1] of the corruption size, or None (no downscale).
    decoder: keyword options of ``src.jpeg.decode`` (e.g. ``{"strategy": "paper"}``).
    sca: keyword options of ``src.sca.compensate`` (e.g. ``{"method": "dc_thumb"}``).
    thumb_source: the model's guide thumbnail (:func:`src.restoration.guide_thumbnail`): ``header`` (the one
        stored in the corrupted file; one made from the SCA image, with a warning, when the file has none),
        ``input`` (always made from the SCA image: no side information) or ``none`` (zeros).
    thumb_long_side: long side in pixels of a thumbnail made from the SCA image (the paper's 160).
    keep_corrupted: also return the robust decode, clipped (for image grids and the eval table).
    check_thumbnail: SCA checks the header thumbnail against the image before it trusts it, as restore does
        (``src.sca.compensate``'s ``check_thumbnail``). The simulator makes the thumbnail from the photo it
        encodes, so it always fits: training turns the check off (``data.check_thumbnail: false``, about
        40 ms less per 2K sample) and gets restore's input wherever restore's check keeps it as stored.
    """

    corruption_size: Size | None = (2048, 1024)
    scale: Size | float | None = (512, 256)
    decoder: Mapping[str, Any] = field(default_factory=dict)
    sca: Mapping[str, Any] = field(default_factory=lambda: {"method": "dc_thumb"})
    thumb_source: str = "header"
    thumb_long_side: int = THUMBNAIL_LONG_SIDE
    keep_corrupted: bool = False
    check_thumbnail: bool = True

    def __post_init__(self) -> None:
        if self.thumb_source not in THUMB_SOURCES:
            raise PipelineError(
                f"unknown thumb_source {self.thumb_source!r}; allowed: {', '.join(THUMB_SOURCES)}"
            )


def prepare_photo(rgb: np.ndarray, corruption_size: Size | None) -> np.ndarray:
    """The photo at the corruption size: uint8 (H, W, 3), resized to cover and centre-cropped (unchanged when
    ``corruption_size`` is None)."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if corruption_size is None:
        return np.ascontiguousarray(rgb)
    return resize_cover(np.ascontiguousarray(rgb), corruption_size)


def corrupt_photo(corruptor: Any, rgb: np.ndarray, seed: int, timer: Timer = nullcontext) -> Any:
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
    timer: Timer = nullcontext,
    gt: np.ndarray | None = None,
) -> dict[str, Any]:
    """Run the pipeline on one photo (uint8 (H, W, 3) RGB, any size) with corruption seed ``seed``.

    ``rgb`` may instead be the clean JPEG bytes of an earlier sample of the same photo
    (``CorruptionSample.clean_jpeg``, encoded at the corruption size): that skips loading and encoding;
    ``gt``, that sample's ``gt``, skips decoding and resizing the ground truth as well.

    Returns, at the output scale (H, W) (no crop, no flip):
      ``sca`` float32 (H, W, 3) in [0, 1], ``thumb`` uint8 (H, W, 3), ``mask`` float32 (H, W) in [0, 1]: the
      model's input (:class:`src.restoration.ModelInput`);
      ``gt`` uint8 (H, W, 3): the decoded clean JPEG, downscaled;
      ``thumb_small`` uint8 (h, w, 3): the guide thumbnail before upsampling (absent for ``thumb_source``
      none);
      ``corrupted`` uint8 (H, W, 3) (only with ``keep_corrupted``): the robust decode, clipped;
      ``ber`` float, ``seed`` int, ``thumb_found`` bool (the header held a decodable thumbnail),
      ``mcu`` int: the MCU width in pixels at the corruption scale, ``corruption_size`` (W, H),
      ``clean_jpeg`` bytes: the clean file (reusable as ``rgb`` for another corruption of this photo).
    """
    if isinstance(rgb, bytes | bytearray):  # a clean JPEG made earlier from the prepared photo (cached)
        with timer("corrupt"):
            sample = corruptor.corrupt(bytes(rgb), seed)
    else:
        sample = corrupt_photo(corruptor, prepare_photo(rgb, settings.corruption_size), seed, timer)
    sca = settings.sca if settings.check_thumbnail else {**settings.sca, "check_thumbnail": False}
    result = prepare(sample.corrupted_jpeg, settings.decoder, sca, timer=timer)
    with timer("decode"):
        gt_full = decode_jpeg_rgb(sample.clean_jpeg) if gt is None else None
    out_size = scaled_size(result.size, settings.scale)
    with timer("resize"):
        if settings.thumb_source == "header" and result.thumbnail is None:
            _warn_no_thumbnail(seed)  # once per process, then at debug level
        inputs = model_input(result, out_size, settings.thumb_source, settings.thumb_long_side)
        out: dict[str, Any] = {
            "sca": inputs.sca,
            "gt": resize_uint8(gt_full, out_size) if gt_full is not None else gt,
            "mask": inputs.mask,
            "thumb": inputs.thumb,
            "ber": sample_ber(sample),
            "seed": int(seed),
            "thumb_found": result.thumbnail is not None,
            "mcu": int(result.decoded.mcu_width),
            "corruption_size": result.size,
            "clean_jpeg": sample.clean_jpeg,
        }
        if inputs.thumb_small is not None:
            out["thumb_small"] = inputs.thumb_small
        if settings.keep_corrupted:
            out["corrupted"] = resize_uint8(result.decoded.to_rgb(clip=True), out_size)
    return out
