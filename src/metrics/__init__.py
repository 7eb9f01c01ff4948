"""Image-quality metrics: the paper's protocol (BT.601 Y PSNR / SSIM), RGB PSNR / SSIM and PSNR-B.

numpy functions (float64 inside, no torch import) live in :mod:`src.metrics.image_quality`; their torch
twins for validation (per-image values of ``(N, C, H, W)`` tensors in [0, 1]) and DDP-syncing torchmetrics
``Metric`` s live in :mod:`src.metrics.tensor` (imported lazily here, so numpy-only users never load torch).
"""

from __future__ import annotations

from typing import Any

from src.metrics.image_quality import (
    Y_COEFFS,
    MetricInputError,
    all_metrics,
    blocking_effect_factor,
    psnr,
    psnr_rgb,
    psnr_y,
    psnrb_y,
    rgb_to_y_bt601,
    ssim_rgb,
    ssim_y,
    ssim_y_paper,
)

__all__ = [
    "Y_COEFFS",
    "MetricInputError",
    "PerImageMean",
    "all_metrics",
    "blocking_effect_factor",
    "image_metric_collection",
    "psnr",
    "psnr_rgb",
    "psnr_y",
    "psnrb_y",
    "rgb_to_y_bt601",
    "ssim_rgb",
    "ssim_y",
    "ssim_y_paper",
]

_LAZY_TORCH = {"PerImageMean", "image_metric_collection"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_TORCH:
        from src.metrics import tensor

        return getattr(tensor, name)
    raise AttributeError(f"module 'src.metrics' has no attribute {name!r}")
