"""Restore one corrupted JPEG (:func:`restore_bytes`) and find the files to restore.

Per file: :func:`src.restoration.inputs.prepare` (decode, thumbnail choice, SCA) -> when a model is given and
may run, :func:`src.restoration.inputs.model_input` at the file's size -> :class:`Restorer` -> the restored
image. The rules for when the model does not run are :func:`gca_skip_reason`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.jpeg import Decoded
from src.restoration.errors import RestoreError
from src.restoration.inputs import ScaResult, model_input, prepare
from src.restoration.model import Restorer
from src.restoration.report import describe_decode, describe_sca
from src.sca import Compensated
from src.utils.images import IMAGE_SUFFIXES, load_rgb

log = logging.getLogger(__name__)

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")


@dataclass
class RestoreResult:
    """What :func:`restore_bytes` made of one file.

    restored: uint8 (H, W, 3), the model's output, else the SCA image. sca: uint8 (H, W, 3), the SCA image.
    decoded / compensated: the decoder's and SCA's objects. method: the SCA method that ran.
    thumbnail_source: ``header``, ``given`` or ``none`` (the thumbnail SCA used). gca: whether the model ran.
    report: text lines (decoder, thumbnail, SCA, model).
    """

    restored: np.ndarray
    sca: np.ndarray
    decoded: Decoded
    compensated: Compensated
    method: str
    thumbnail_source: str
    gca: bool
    report: list[str] = field(default_factory=list)


def model_options(
    restorer: Restorer | None, decoder_options: Mapping[str, Any], sca_options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(decoder options, SCA options) to make a model's input with: those it was trained with when its run
    config is known (``Restorer.decoder_options`` / ``sca_options``), else the given ones."""
    decoder, sca = dict(decoder_options), dict(sca_options)
    if restorer is not None and restorer.decoder_options and restorer.decoder_options != decoder:
        log.info("using the decoder options the model was trained with: %s", restorer.decoder_options)
        decoder = dict(restorer.decoder_options)
    if restorer is not None and restorer.sca_options and restorer.sca_options != sca:
        log.info("using the SCA options the model was trained with: %s", restorer.sca_options)
        sca = dict(restorer.sca_options)
    return decoder, sca


def gca_skip_reason(
    result: ScaResult, restorer: Restorer, gca_input_thumbnail: bool, gca_max_filled: float | None
) -> str | None:
    """Why the model must not run on this file (a report line), or None: SCA filled more than
    ``gca_max_filled`` of the pixels (heavier damage than the model was trained on), or there is no
    thumbnail, the model takes one and ``gca_input_thumbnail`` (guide it with one made from the SCA image)
    is off."""
    if gca_max_filled is not None and result.filled > gca_max_filled:
        return (
            f"GCA skipped: SCA filled {100 * result.filled:.1f} % of the pixels, above gca_max_filled="
            f"{gca_max_filled} (heavier damage than the model was trained on; raise it to run GCA anyway)"
        )
    if result.thumbnail is None and restorer.needs_thumbnail and not gca_input_thumbnail:
        return "GCA skipped: the model needs a thumbnail (give thumbnail=IMAGE, or gca_input_thumbnail=true)"
    return None


def restore_bytes(
    data: bytes,
    decoder_options: Mapping[str, Any],
    sca_options: Mapping[str, Any],
    thumbnail: np.ndarray | None = None,
    restorer: Restorer | None = None,
    fallback_method: str = "dc",
    gca_input_thumbnail: bool = False,
    gca_max_filled: float | None = None,
    thumbnail_choice: str = "auto",
) -> RestoreResult:
    """Restore one corrupted JPEG with ``decoder_options`` / ``sca_options`` (pass them through
    :func:`model_options` when a model is used). ``thumbnail``: uint8 (h, w, 3) given by the user, in the
    image's stored orientation (one in display orientation is detected); ``thumbnail_choice`` (``auto``: the
    given one over the header's; ``header``, ``given``, ``none``) picks which SCA may use, each checked
    against the image and used aligned or refused (the report says which and why). Without any usable
    thumbnail a method that needs one runs as ``fallback_method`` (with a warning), and a model that takes
    one is skipped unless ``gca_input_thumbnail`` (then it is guided by a thumbnail made from the SCA
    image); with ``gca_max_filled`` the model is also skipped when SCA filled more than that
    share of the pixels. A skipped model leaves the SCA image as ``restored``."""
    result = prepare(
        data, decoder_options, sca_options, thumbnail, fallback_method, thumbnail_choice=thumbnail_choice
    )
    report = [describe_decode(result.decoded)]
    if result.fell_back:
        asked = sca_options.get("method", "dc_thumb")
        why = "none usable" if result.thumbnail_notes else "the file has none and no thumbnail= was given"
        log.warning("SCA method %r needs a thumbnail (%s): using %r", asked, why, fallback_method)
        report.append(f"no usable thumbnail: SCA method {asked} -> {fallback_method}")
    thumb = result.thumbnail
    report.append(
        "thumbnail: "
        + (f"{thumb.shape[1]}x{thumb.shape[0]} ({result.thumbnail_source})" if thumb is not None else "none")
    )
    report.extend(result.thumbnail_notes)
    report.append(describe_sca(result.compensated))
    restored, gca = result.sca8, False
    if restorer is not None:
        reason = gca_skip_reason(result, restorer, gca_input_thumbnail, gca_max_filled)
        if reason is not None:
            log.warning("%s", reason)
            report.append(reason)
        else:
            inputs = model_input(result)
            restored, gca = restorer.run(inputs), True
            made = " (guided by a thumbnail made from the SCA image)" if inputs.thumb_source == "sca" else ""
            report.append(f"GCA: {restorer.source}{made}")
    return RestoreResult(
        restored,
        result.sca8,
        result.decoded,
        result.compensated,
        result.method,
        result.thumbnail_source,
        gca,
        report,
    )


# ---------------------------------------------------------------------------------------------- files
def find_inputs(path: str | Path) -> list[Path]:
    """The JPEG files to restore: ``path`` itself, or every JPEG under a folder (recursive, sorted)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RestoreError(f"input {str(path)!r} does not exist")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in JPEG_SUFFIXES)
    if not files:
        raise RestoreError(f"input folder {str(path)!r} holds no JPEG file ({', '.join(JPEG_SUFFIXES)})")
    return files


def read_jpeg(path: Path) -> bytes:
    """The bytes of ``path``; :class:`RestoreError` unless they start with a JPEG SOI marker (FF D8)."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise RestoreError(
            f"{str(path)!r} is not a JPEG file (it starts with {data[:4].hex(' ') or 'nothing'})"
        )
    return data


def given_thumbnail(path: Path, thumbnail: str | None, input_root: Path) -> np.ndarray | None:
    """A user-supplied thumbnail for ``path``: ``thumbnail`` is an image file (used for every input) or a
    folder holding an image with the same relative path and stem. None when not given or not found."""
    if not thumbnail:
        return None
    t = Path(thumbnail).expanduser()
    if t.is_file():
        return load_rgb(t)
    if t.is_dir():
        rel = path.relative_to(input_root) if input_root.is_dir() else Path(path.name)
        for suffix in IMAGE_SUFFIXES:
            cand = t / rel.parent / f"{rel.stem}{suffix}"
            if cand.is_file():
                return load_rgb(cand)
        return None
    raise RestoreError(f"thumbnail {str(thumbnail)!r} does not exist")
