"""The one restoration path up to the model: decode -> thumbnail choice -> SCA -> model input.

Used by the DataModule's samples (``src.data.pipeline.make_sample``), by ``src.eval`` and by ``src.restore``,
so what the model is scored and run on is what it was trained on (``tests/test_restoration.py`` checks the
arrays are identical). The rules, once:

- **thumbnail choice** (:func:`sca_stage`, ``thumbnail_choice``): ``auto`` (the default) takes a thumbnail
  given by the caller (``src.restore thumbnail=``) over the one stored in the file's header; ``header`` /
  ``given`` use only that one, ``none`` neither. Each is checked against the image before use
  (:mod:`src.sca.thumb_check`: orientation, bars, crop/offset, mismatch) and used aligned, or refused (the
  next one is tried; the notes say why). A given thumbnail is expected in the image's stored orientation
  (the one the JPEG's pixels are in, before the EXIF Orientation tag is applied); one in display
  orientation is detected and turned back. An SCA method that needs a thumbnail (``dc_thumb``) falls back
  to ``fallback_method`` when none is usable.
- **model input** (:func:`model_input`) at any size: the SCA image resized as uint8 (bicubic) then divided by
  255, the trust mask by area average, and the guide thumbnail upsampled (bicubic) to that size.
- **missing thumbnail** (``thumb_source="header"`` without one): the guide is a thumbnail made from the
  full-size SCA image (:func:`src.utils.images.thumbnail_of`, 160 px on the long side).
  ``thumb_source="input"`` always makes it so (no side information), ``"none"`` feeds zeros.

numpy only (torch is reached through :func:`src.utils.images.resize_uint8`); no Lightning, no Hydra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.jpeg import Decoded, decode
from src.restoration.errors import RestoreError
from src.sca import Compensated, SCAError, compensate
from src.sca.thumb_check import as_thumbnail, check_against
from src.utils.images import (
    THUMBNAIL_LONG_SIDE,
    Size,
    decode_thumbnail,
    resize_mask,
    resize_uint8,
    thumbnail_of,
    to_float01,
    to_uint8,
)

log = logging.getLogger(__name__)

#: where the model's guide thumbnail comes from: the header's (else made from the SCA image), always made
#: from the SCA image (no side information), or zeros
THUMB_SOURCES = ("header", "input", "none")
#: SCA methods that need a thumbnail (they fall back to ``fallback_method`` without one)
THUMBNAIL_METHODS = ("dc_thumb",)
#: which thumbnail SCA may use: a given one over the header's (``auto``), only one of them, or none
THUMBNAIL_CHOICES = ("auto", "header", "given", "none")

#: ``timer(stage)`` -> a context manager timing that stage (``src.data.pipeline.StageTimer``); the default
#: times nothing
Timer = Callable[[str], AbstractContextManager[Any]]


@dataclass
class ScaResult:
    """Decode + thumbnail choice + SCA of one file, at its own size.

    decoded: the robust decode. compensated: SCA's output (``rgb`` float32 (H, W, 3), ``trust`` float32
    (H, W)). sca8: uint8 (H, W, 3), the SCA image (``to_uint8(compensated.rgb)``). thumbnail: uint8
    (h, w, 3), the thumbnail SCA used (header or given), aligned to the image in stored orientation; None
    when none was usable. thumbnail_source: ``header``, ``given`` or ``none``. method: the SCA method that
    ran (after a fallback, and ``dc`` when ``dc_thumb`` had no thumbnail). fell_back: the asked method needed
    a thumbnail and ``fallback_method`` ran instead. thumbnail_notes: one line per thumbnail considered
    (used as stored, aligned, or refused and why).
    """

    decoded: Decoded
    compensated: Compensated
    sca8: np.ndarray
    thumbnail: np.ndarray | None
    thumbnail_source: str
    method: str
    fell_back: bool = False
    thumbnail_notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> Size:
        """(width, height) of the decoded image."""
        return int(self.decoded.width), int(self.decoded.height)

    @property
    def filled(self) -> float:
        """Share of the pixels SCA filled (trust below 1)."""
        return float(np.mean(self.compensated.trust < 1.0))


@dataclass
class ModelInput:
    """What the GCA generator takes, at one size (H, W).

    sca: float32 (H, W, 3) in [0, 1], 8-bit levels ``k / 255``. thumb: uint8 (H, W, 3), the guide thumbnail
    upsampled. mask: float32 (H, W) in [0, 1], SCA trust. thumb_small: uint8 (h, w, 3), the guide before
    upsampling (None for ``thumb_source="none"``). thumb_source: ``header`` / ``given`` (the file's or the
    caller's thumbnail), ``sca`` (made from the SCA image) or ``none`` (zeros).
    """

    sca: np.ndarray
    thumb: np.ndarray
    mask: np.ndarray
    thumb_small: np.ndarray | None
    thumb_source: str


def check_thumb_source(source: str) -> str:
    """``source`` if it is one of :data:`THUMB_SOURCES`, else :class:`RestoreError`."""
    if source not in THUMB_SOURCES:
        raise RestoreError(f"unknown thumb_source {source!r}; allowed: {', '.join(THUMB_SOURCES)}")
    return source


def check_thumbnail_choice(choice: str) -> str:
    """``choice`` if it is one of :data:`THUMBNAIL_CHOICES`, else :class:`RestoreError`."""
    if choice not in THUMBNAIL_CHOICES:
        raise RestoreError(f"unknown thumbnail_source {choice!r}; allowed: {', '.join(THUMBNAIL_CHOICES)}")
    return choice


def thumbnail_candidates(
    decoded: Decoded, thumbnail: np.ndarray | None, choice: str = "auto"
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """([(source, uint8 (h, w, 3) thumbnail)] in the order to try, notes) by ``choice`` (module docstring)."""
    check_thumbnail_choice(choice)
    notes = []
    offered = {"given": thumbnail, "header": None}
    if choice in ("auto", "header"):
        offered["header"] = decode_thumbnail(decoded.thumbnail)
    order = {"auto": ["given", "header"], "header": ["header"], "given": ["given"], "none": []}[choice]
    if choice == "given" and thumbnail is None:
        notes.append("thumbnail_source=given but no thumbnail was given")
    if choice == "given" and decoded.thumbnail:
        notes.append("header thumbnail not used (thumbnail_source=given)")
    if choice == "header" and thumbnail is not None:
        notes.append("given thumbnail not used (thumbnail_source=header)")
    try:
        found = [(src, as_thumbnail(offered[src])) for src in order if offered[src] is not None]
    except SCAError as e:
        raise RestoreError(f"given thumbnail: {e}") from None
    return found, notes


def sca_stage(
    decoded: Decoded,
    sca_options: Mapping[str, Any],
    thumbnail: np.ndarray | None = None,
    fallback_method: str = "dc",
    timer: Timer = nullcontext,
    thumbnail_choice: str = "auto",
) -> ScaResult:
    """Thumbnail choice and SCA on a robust decode.

    ``sca_options``: keyword options of ``src.sca.compensate`` with ``method`` (default ``dc_thumb``).
    ``thumbnail``: uint8 (h, w, 3) given by the caller; ``thumbnail_choice``: which of it and the header's
    to use (:data:`THUMBNAIL_CHOICES`, see the module docstring). Each candidate is checked (and aligned)
    by SCA; a refused one gives way to the next. Without a usable one, a method of
    :data:`THUMBNAIL_METHODS` runs as ``fallback_method`` (with the other options unchanged)."""
    candidates, notes = thumbnail_candidates(decoded, thumbnail, thumbnail_choice)
    options = dict(sca_options)
    method = str(options.get("method", "dc_thumb"))
    thumb, source, comp = None, "none", None
    with timer("sca"):
        if method in THUMBNAIL_METHODS:
            for src, cand in candidates:
                result = compensate(decoded, cand, **options)
                fit = result.thumbnail_fit
                if fit is None or fit.ok:
                    thumb, source, comp = (cand if fit is None else fit.thumbnail), src, result
                    why = "not checked (check_thumbnail off, or no damage)" if fit is None else fit.reason
                    notes.append(f"{src} thumbnail: {why}")
                    break
                notes.append(f"{src} {fit.reason}")
                if fallback_method == result.method:
                    comp = result  # the refusal's own result is the fallback's: no second run
        else:  # the thumbnail is only the model's guide: check it against this method's result
            comp = compensate(decoded, None, **options)
            for src, cand in candidates:
                fit = check_against(cand, comp, decoded)
                notes.append(f"{src} {fit.reason}" if not fit.ok else f"{src} thumbnail: {fit.reason}")
                if fit.ok:
                    thumb, source = fit.thumbnail, src
                    break
        fell_back = thumb is None and method in THUMBNAIL_METHODS and fallback_method != method
        if fell_back:
            options["method"] = fallback_method
            if comp is None or comp.method != fallback_method:
                comp = compensate(decoded, None, **options)
        elif comp is None:
            comp = compensate(decoded, None, **options)
        sca8 = comp.rgb8 if comp.rgb8 is not None else to_uint8(comp.rgb)
    return ScaResult(decoded, comp, sca8, thumb, source, comp.method, fell_back, notes)


def prepare(
    data: bytes,
    decoder_options: Mapping[str, Any],
    sca_options: Mapping[str, Any],
    thumbnail: np.ndarray | None = None,
    fallback_method: str = "dc",
    timer: Timer = nullcontext,
    thumbnail_choice: str = "auto",
) -> ScaResult:
    """Robust decode (``src.jpeg.decode(data, **decoder_options)``), then :func:`sca_stage`."""
    with timer("decode"):
        decoded = decode(data, **dict(decoder_options))
    return sca_stage(decoded, sca_options, thumbnail, fallback_method, timer, thumbnail_choice)


def guide_thumbnail(
    result: ScaResult, thumb_source: str = "header", long_side: int = THUMBNAIL_LONG_SIDE
) -> tuple[np.ndarray | None, str]:
    """(uint8 (h, w, 3) guide thumbnail or None, its source) for the model, by the rule of the module
    docstring: the chosen thumbnail, else (or always, for ``input``) one made from the full-size SCA image;
    None for ``none``."""
    check_thumb_source(thumb_source)
    if thumb_source == "none":
        return None, "none"
    if thumb_source == "header" and result.thumbnail is not None:
        return result.thumbnail, result.thumbnail_source
    return thumbnail_of(result.sca8, long_side), "sca"


def model_input(
    result: ScaResult,
    size: Size | None = None,
    thumb_source: str = "header",
    long_side: int = THUMBNAIL_LONG_SIDE,
) -> ModelInput:
    """The model's input at ``size`` = (W, H) (None: the file's size) from one :func:`sca_stage` result."""
    size = result.size if size is None else (int(size[0]), int(size[1]))
    small, source = guide_thumbnail(result, thumb_source, long_side)
    if small is None:
        thumb = np.zeros((size[1], size[0], 3), np.uint8)
    else:
        thumb = resize_uint8(small, size)
    return ModelInput(
        sca=to_float01(resize_uint8(result.sca8, size)),
        thumb=thumb,
        mask=resize_mask(result.compensated.trust, size),
        thumb_small=None if small is None else np.ascontiguousarray(small),
        thumb_source=source,
    )
