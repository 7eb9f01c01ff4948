"""Torch twins of :mod:`src.metrics.image_quality` for validation inside Lightning, plus DDP-syncing Metrics.

Functions take ``pred, target``: float ``(N, 3, H, W)`` RGB in [0, 1] (``(N, 1, H, W)`` grey is taken as
R = G = B) on any device, and return float64 ``(N,)`` per-image values. By default the images are first
quantised as the saved PNGs are (:func:`src.utils.images.to_uint8`: ``x * 255`` rounded half up), so
validation numbers equal those of the saved PNGs and of the numpy functions on them (tested to 1e-9).
Everything after quantisation runs in float64.

SSIM is computed here by hand (a separable Gaussian ``conv2d`` over the valid region): torchmetrics' SSIM also
averages the border band computed on reflect-padded images, which skimage, BasicSR and MATLAB leave out (0.002
apart on a noisy 512x512 photo). PSNR-B is by hand too (see ``image_quality.psnrb_y``).

:class:`PerImageMean` is a torchmetrics ``Metric`` holding a sum and a count, so its mean over images is exact
under DDP (``dist_reduce_fx="sum"``) whatever the per-rank batch sizes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from src.metrics.image_quality import (
    _Y_COEFFS_INT,
    _Y_DENOM_INT,
    PEAK,
    SSIM_K1,
    SSIM_K2,
    SSIM_SIGMA,
    Y_COEFFS,
    MetricInputError,
)

__all__ = [
    "METRIC_FUNCTIONS",
    "PerImageMean",
    "image_metric_collection",
    "psnr_rgb",
    "psnr_y",
    "psnrb_y",
    "rgb_to_y_bt601",
    "ssim_rgb",
    "ssim_y",
    "ssim_y_paper",
    "to_levels",
]


def _check(x: Tensor, name: str) -> Tensor:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise MetricInputError(
            f"{name}: shape {tuple(x.shape)} is not supported; pass (N, 3, H, W) or (N, 1, H, W)"
        )
    if not x.is_floating_point():
        raise MetricInputError(f"{name}: dtype {x.dtype} is not supported; pass float in [0, 1]")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def to_levels(x: Tensor, quantize: bool = True) -> Tensor:
    """float ``(N, C, H, W)`` in [0, 1] -> float64 0..255; with ``quantize`` the integer levels a saved PNG
    holds: the project's one rounding rule (:func:`src.utils.images.to_uint8`: ``x * 255`` in float32,
    half up, clipped), so the values equal those of the uint8 images eval and restore write."""
    if not quantize:
        return x.detach().to(torch.float64) * PEAK
    scaled = x.detach().to(torch.float32) * torch.tensor(PEAK, dtype=torch.float32)
    return torch.floor(scaled + 0.5).clamp_(0.0, PEAK).to(torch.float64)


def rgb_to_y_bt601(levels: Tensor, rounded: bool = True) -> Tensor:
    """BT.601 studio Y of float64 RGB levels ``(N, 3, H, W)`` 0..255 -> float64 ``(N, 1, H, W)`` 16..235.

    Integer-valued input with ``rounded`` uses the same exact integer arithmetic as the numpy version.
    """
    if rounded and bool(torch.all(levels == torch.round(levels))):
        s = (
            levels[:, 0:1].long() * _Y_COEFFS_INT[0]
            + levels[:, 1:2].long() * _Y_COEFFS_INT[1]
            + levels[:, 2:3].long() * _Y_COEFFS_INT[2]
        )
        q, r = torch.div(s, _Y_DENOM_INT, rounding_mode="floor"), torch.remainder(s, _Y_DENOM_INT)
        half = _Y_DENOM_INT // 2
        up = (r > half) | ((r == half) & (torch.remainder(q, 2) == 1))
        return (q + up.long() + 16).to(torch.float64)
    r, g, b = levels[:, 0:1], levels[:, 1:2], levels[:, 2:3]
    y = (r * Y_COEFFS[0] + g * Y_COEFFS[1] + b * Y_COEFFS[2]) / 255.0 + 16.0
    return torch.round(y) if rounded else y


def _levels_pair(pred: Tensor, target: Tensor, quantize: bool) -> tuple[Tensor, Tensor]:
    pred, target = _check(pred, "pred"), _check(target, "target")
    if pred.shape != target.shape:
        raise MetricInputError(
            f"pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)}; they must match"
        )
    return to_levels(pred, quantize), to_levels(target, quantize)


def _psnr(a: Tensor, b: Tensor) -> Tensor:
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(PEAK * PEAK / mse)  # inf where mse == 0


def psnr_y(pred: Tensor, target: Tensor, quantize: bool = True) -> Tensor:
    """Per-image Y-PSNR in dB (paper protocol), float64 ``(N,)``."""
    a, b = _levels_pair(pred, target, quantize)
    return _psnr(rgb_to_y_bt601(a), rgb_to_y_bt601(b))


def psnr_rgb(pred: Tensor, target: Tensor, quantize: bool = True) -> Tensor:
    """Per-image RGB PSNR in dB, peak 255, float64 ``(N,)``."""
    a, b = _levels_pair(pred, target, quantize)
    return _psnr(a, b)


def _gaussian_1d(sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    radius = int(3.5 * sigma + 0.5)  # scipy/skimage truncate=3.5 -> 11 taps for sigma 1.5
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _ssim_maps_mean(a: Tensor, b: Tensor, filt: Callable[[Tensor], Tensor], cov_norm: float) -> Tensor:
    """Mean SSIM per image from float64 ``(N, C, H, W)`` levels; ``filt`` is a valid-region local mean."""
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    n = a.shape[0]
    mu = filt(torch.cat([a, b, a * a, b * b, a * b]))
    ua, ub, uaa, ubb, uab = mu.split(n)
    va, vb, vab = cov_norm * (uaa - ua * ua), cov_norm * (ubb - ub * ub), cov_norm * (uab - ua * ub)
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
    return s.flatten(1).mean(1)


def _ssim_gaussian(a: Tensor, b: Tensor) -> Tensor:
    c = a.shape[1]
    if min(a.shape[-2:]) < 11:
        raise MetricInputError(f"SSIM needs images of at least 11x11 pixels; got {tuple(a.shape[-2:])}")
    k = _gaussian_1d(SSIM_SIGMA, a.dtype, a.device)
    kh = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def filt(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)

    return _ssim_maps_mean(a, b, filt, 1.0)


def ssim_y(pred: Tensor, target: Tensor, quantize: bool = True) -> Tensor:
    """Per-image standard SSIM (Gaussian sigma 1.5, valid region) on BT.601 Y, float64 ``(N,)``."""
    a, b = _levels_pair(pred, target, quantize)
    return _ssim_gaussian(rgb_to_y_bt601(a), rgb_to_y_bt601(b))


def ssim_rgb(pred: Tensor, target: Tensor, quantize: bool = True) -> Tensor:
    """Per-image standard SSIM averaged over the RGB channels, float64 ``(N,)``."""
    a, b = _levels_pair(pred, target, quantize)
    return _ssim_gaussian(a, b)


def ssim_y_paper(pred: Tensor, target: Tensor, quantize: bool = True) -> Tensor:
    """Per-image paper-code Y-SSIM: mean of 1-D column SSIMs, 7-tap uniform window, sample covariance."""
    a, b = _levels_pair(pred, target, quantize)
    if a.shape[-2] < 7:
        raise MetricInputError(f"ssim_y_paper needs at least 7 image rows; got {a.shape[-2]}")

    def filt(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, kernel_size=(7, 1), stride=1)

    return _ssim_maps_mean(rgb_to_y_bt601(a), rgb_to_y_bt601(b), filt, 7.0 / 6.0)


def _blocking_effect_factor(y: Tensor, block_size: int) -> Tensor:
    """Per-image BEF of float64 ``(N, 1, H, W)`` (see ``image_quality.blocking_effect_factor``)."""
    h, w = y.shape[-2:]
    if min(h, w) <= block_size:
        raise MetricInputError(f"PSNR-B needs both sides > block_size={block_size}; got {(h, w)}")
    dh = (y[..., :, 1:] - y[..., :, :-1]).pow(2)
    dv = (y[..., 1:, :] - y[..., :-1, :]).pow(2)
    hb = torch.zeros(w - 1, dtype=torch.bool, device=y.device)
    hb[block_size - 1 :: block_size] = True
    vb = torch.zeros(h - 1, dtype=torch.bool, device=y.device)
    vb[block_size - 1 :: block_size] = True
    n_hb, n_vb = int(hb.sum()), int(vb.sum())
    d_b = (dh[..., hb].flatten(1).sum(1) + dv[..., vb, :].flatten(1).sum(1)) / (h * n_hb + w * n_vb)
    d_bc = (dh[..., ~hb].flatten(1).sum(1) + dv[..., ~vb, :].flatten(1).sum(1)) / (
        h * (w - 1 - n_hb) + w * (h - 1 - n_vb)
    )
    eta = math.log2(block_size) / math.log2(min(h, w))
    return torch.where(d_b > d_bc, eta * (d_b - d_bc), torch.zeros_like(d_b))


def psnrb_y(pred: Tensor, target: Tensor, quantize: bool = True, block_size: int = 8) -> Tensor:
    """Per-image PSNR-B in dB on BT.601 Y (8x8 blocks), float64 ``(N,)``."""
    a, b = _levels_pair(pred, target, quantize)
    ya, yb = rgb_to_y_bt601(a), rgb_to_y_bt601(b)
    mse_b = (ya - yb).pow(2).flatten(1).mean(1) + _blocking_effect_factor(ya, block_size)
    return 10.0 * torch.log10(PEAK * PEAK / mse_b)


#: Name -> per-image function; the names are the ``val/<name>`` keys the LightningModules log.
METRIC_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "psnr_y": psnr_y,
    "ssim_y": ssim_y,
    "ssim_y_paper": ssim_y_paper,
    "psnr_rgb": psnr_rgb,
    "ssim_rgb": ssim_rgb,
    "psnrb_y": psnrb_y,
}


class PerImageMean(Metric):
    """Mean over images of a per-image metric (one of :data:`METRIC_FUNCTIONS`), exact under DDP.

    ``update(pred, target)`` takes float ``(N, 3, H, W)`` in [0, 1]; ``compute()`` returns a float64 scalar.
    PSNR values are capped at ``psnr_cap_db`` (100 dB) before averaging, so an identical pair (inf dB, e.g. a
    sample that drew no bit error) cannot turn the mean into inf (None disables the cap). 100 dB is what a
    single one-level error scores on a 390x390 image: anything near it is practically perfect.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, name: str, quantize: bool = True, psnr_cap_db: float | None = 100.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if name not in METRIC_FUNCTIONS:
            raise MetricInputError(f"unknown metric {name!r}; known: {sorted(METRIC_FUNCTIONS)}")
        self.name = name
        self.quantize = quantize
        self.psnr_cap_db = psnr_cap_db if name.startswith("psnr") else None
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        values = METRIC_FUNCTIONS[self.name](pred, target, quantize=self.quantize)
        if self.psnr_cap_db is not None:
            values = values.clamp(max=self.psnr_cap_db)
        self.total += values.sum().to(self.total.device)
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


def image_metric_collection(
    names: Sequence[str] = ("psnr_y", "ssim_y", "psnr_rgb"),
    prefix: str | None = None,
    suffix: str | None = None,
) -> MetricCollection:
    """A ``MetricCollection`` of :class:`PerImageMean`; keys e.g. ``val/psnr_y`` with ``prefix="val/"``."""
    return MetricCollection(
        {name: PerImageMean(name) for name in names}, prefix=prefix, postfix=suffix, compute_groups=False
    )
