"""The restoration path, written once: decode -> thumbnail choice -> SCA -> model input -> model -> output.

- :mod:`src.restoration.inputs`: :func:`prepare` / :func:`sca_stage` (decode, thumbnail, SCA) and
  :func:`model_input` (the arrays the model takes, at any size): numpy only. The DataModule's samples,
  ``src.eval`` and ``src.restore`` all make the model's input here.
- :mod:`src.restoration.model`: :class:`Restorer` (the model behind one call) and :func:`load_restorer`
  (torch; imported on first use from this package).
- :mod:`src.restoration.restore`: :func:`restore_bytes` (one corrupted file to a restored image) and the
  input-file helpers of ``src.restore``.
- :mod:`src.restoration.scoring`: ``src.eval``'s per-file scoring and its table.
- :mod:`src.restoration.pictures`: side-by-side pictures and the demo's contact sheet.
"""

from __future__ import annotations

from src.restoration.errors import RestoreError
from src.restoration.inputs import (
    THUMB_SOURCES,
    ModelInput,
    ScaResult,
    guide_thumbnail,
    model_input,
    prepare,
    sca_stage,
)
from src.utils.lazy import lazy_getattr

__all__ = [
    "THUMB_SOURCES",
    "ModelInput",
    "RestoreError",
    "RestoreResult",
    "Restorer",
    "ScaResult",
    "guide_thumbnail",
    "inference_options",
    "load_restorer",
    "model_input",
    "model_options",
    "prepare",
    "restore_bytes",
    "sca_stage",
]

_LAZY = {  # torch-backed: imported when first asked for
    "Restorer": "src.restoration.model",
    "load_restorer": "src.restoration.model",
    "inference_options": "src.restoration.model",
    "RestoreResult": "src.restoration.restore",
    "model_options": "src.restoration.restore",
    "restore_bytes": "src.restoration.restore",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
