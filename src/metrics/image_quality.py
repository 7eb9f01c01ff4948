"""Full-reference image-quality metrics in the paper's protocol (numpy, float64 inside).

Inputs are RGB images ``(H, W, 3)``: uint8, or float in 0..255 (any float dtype; NaN/inf and values outside
0..255 are refused). A grey image ``(H, W)`` or ``(H, W, 1)`` is treated as R = G = B. Argument order is
``(pred, target)`` = (restored image, ground truth); only PSNR-B is asymmetric (its blocking term is measured
on ``pred``).

Protocol (Two-ACIR's ``test.py`` / BasicSR): Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 (BT.601
studio range, 16..235), **rounded to integers by default** as the paper's code does (``rgb2y`` rounds and
casts to uint8), peak 255, no border crop. For uint8 input the rounding is exact (integer arithmetic, ties to
even); the paper's ``np.dot`` float rounding decides 31 of the 2**24 colours one level differently (those
within 1e-13 of a .5 tie), a change far below 1e-4 dB on any real image.

- ``ssim_y``: the standard SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, population
  covariances, K1 0.01, K2 0.03, mean over the valid region (as BasicSR / MATLAB).
- ``ssim_y_paper``: what the paper's code computed: skimage
  ``structural_similarity(y, y2, multichannel=True)`` on the 2-D Y array, which takes the *width axis as
  channels*: the mean of 1-D SSIMs down each column, 7-tap uniform window, sample covariances. It reproduced
  the released ``test_200.txt`` exactly; it reads about 0.003 below the 2-D SSIM on those images. Use it only
  to compare with the paper's table.
- ``psnrb_y``: PSNR-B (Yim & Bovik, IEEE TIP 2011) on Y with 8x8 blocks.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from src.errors import BitstreamRestoreError

__all__ = [
    "Y_COEFFS",
    "MetricInputError",
    "all_metrics",
    "blocking_effect_factor",
    "psnr",
    "psnr_rgb",
    "psnr_y",
    "psnrb_y",
    "rgb_to_y_bt601",
    "ssim_rgb",
    "ssim_y",
    "ssim_y_paper",
]

#: BT.601 studio-range luma weights for R, G, B in 0..255 (MATLAB ``rgb2ycbcr`` / BasicSR / Two-ACIR).
Y_COEFFS = (65.481, 128.553, 24.966)
# The same weights x1000 as integers: Y = 16 + (65481 R + 128553 G + 24966 B) / 255000 exactly.
_Y_COEFFS_INT = (65481, 128553, 24966)
_Y_DENOM_INT = 255000
PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


class MetricInputError(BitstreamRestoreError):
    """An image handed to a metric has an unsupported dtype, shape or value range."""


def _as_rgb(img: np.ndarray, name: str) -> np.ndarray:
    """Validate ``img`` and return it as uint8 or float64 ``(H, W, 3)`` (grey replicated to 3 channels)."""
    img = np.asarray(img)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise MetricInputError(f"{name}: dtype {img.dtype} is not supported; pass uint8 or float in 0..255")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise MetricInputError(
            f"{name}: shape {img.shape} is not supported; pass (H, W, 3) RGB or (H, W) grey"
        )
    if img.dtype != np.uint8:
        img = img.astype(np.float64, copy=False)
        lo, hi = float(np.min(img)), float(np.max(img))
        if not (0.0 <= lo and hi <= PEAK):  # also false for NaN
            raise MetricInputError(f"{name}: float values span [{lo}, {hi}]; allowed is 0..255 (no NaN/inf)")
    return img


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_rgb(pred, "pred"), _as_rgb(target, "target")
    if pred.shape != target.shape:
        raise MetricInputError(f"pred has shape {pred.shape} but target has {target.shape}; they must match")
    return pred, target


def rgb_to_y_bt601(rgb: np.ndarray, rounded: bool = True) -> np.ndarray:
    """BT.601 studio-range luma of an RGB image.

    Args:
        rgb: uint8 ``(H, W, 3)`` RGB, or float in 0..255 (grey ``(H, W)`` is taken as R = G = B).
        rounded: round Y to integers (ties to even), as the paper's code does; integer-valued input (uint8 or
            float) is rounded exactly.

    Returns:
        float64 ``(H, W)`` Y in 16..235.
    """
    rgb = _as_rgb(rgb, "rgb")
    if rounded and (rgb.dtype == np.uint8 or np.array_equal(rgb, np.round(rgb))):
        # Integer levels: exact integer arithmetic, the same on every platform and in the torch twin.
        s = rgb.astype(np.int64) @ np.array(_Y_COEFFS_INT, dtype=np.int64)
        q, r = np.divmod(s, _Y_DENOM_INT)
        half = _Y_DENOM_INT // 2
        up = (r > half) | ((r == half) & (q % 2 == 1))
        return (q + up + 16).astype(np.float64)
    rgb = rgb.astype(np.float64, copy=False)
    y = (rgb[..., 0] * Y_COEFFS[0] + rgb[..., 1] * Y_COEFFS[1] + rgb[..., 2] * Y_COEFFS[2]) / 255.0 + 16.0
    return np.round(y) if rounded else y


def psnr(pred: np.ndarray, target: np.ndarray, peak: float = PEAK) -> float:
    """PSNR in dB of two same-shape arrays (any layout), float64; ``inf`` when they are identical."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def psnr_y(pred: np.ndarray, target: np.ndarray, rounded: bool = True) -> float:
    """Y-PSNR in dB (paper protocol: rounded BT.601 Y, peak 255, no crop); ``inf`` for identical Y."""
    pred, target = _pair(pred, target)
    return psnr(rgb_to_y_bt601(pred, rounded), rgb_to_y_bt601(target, rounded))


def psnr_rgb(pred: np.ndarray, target: np.ndarray) -> float:
    """RGB PSNR in dB over all three channels (the paper's ``util/metric.psnr``), peak 255, no crop."""
    pred, target = _pair(pred, target)
    return psnr(pred, target)


def _ssim_gaussian(a: np.ndarray, b: np.ndarray, channel_axis: int | None) -> float:
    """Standard SSIM: 11x11 Gaussian (sigma 1.5, truncate 3.5 -> radius 5), population covariance."""
    min_side = min(a.shape[:2])
    if min_side < 11:
        raise MetricInputError(f"SSIM needs images of at least 11x11 pixels; got {a.shape[:2]}")
    return float(
        structural_similarity(
            a,
            b,
            data_range=PEAK,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            K1=SSIM_K1,
            K2=SSIM_K2,
            channel_axis=channel_axis,
        )
    )


def ssim_y(pred: np.ndarray, target: np.ndarray, rounded: bool = True) -> float:
    """Standard 2-D SSIM (Gaussian, sigma 1.5) on BT.601 Y, data range 255."""
    pred, target = _pair(pred, target)
    return _ssim_gaussian(rgb_to_y_bt601(pred, rounded), rgb_to_y_bt601(target, rounded), None)


def ssim_rgb(pred: np.ndarray, target: np.ndarray) -> float:
    """Standard SSIM (Gaussian, sigma 1.5) per RGB channel, averaged over the 3 channels; data range 255."""
    pred, target = _pair(pred, target)
    return _ssim_gaussian(pred.astype(np.float64), target.astype(np.float64), -1)


def ssim_y_paper(pred: np.ndarray, target: np.ndarray, rounded: bool = True) -> float:
    """The paper code's Y-SSIM: skimage's default SSIM with the *width axis as channels* (module docstring).

    That is the mean over image columns of 1-D SSIMs down each column (7-tap uniform window, sample
    covariance, data range 255). Not a standard SSIM: use ``ssim_y`` except to compare with the paper's table.
    """
    pred, target = _pair(pred, target)
    if pred.shape[0] < 7:
        raise MetricInputError(f"ssim_y_paper needs at least 7 image rows; got {pred.shape[0]}")
    y_pred, y_target = rgb_to_y_bt601(pred, rounded), rgb_to_y_bt601(target, rounded)
    # skimage's former ``multichannel=True`` is ``channel_axis=-1`` today.
    return float(structural_similarity(y_pred, y_target, data_range=PEAK, channel_axis=-1))


def blocking_effect_factor(y: np.ndarray, block_size: int = 8) -> float:
    """Blocking effect factor BEF (Yim & Bovik 2011) of a 2-D float image, in squared sample units.

    D_B (D_Bc) is the mean squared difference of horizontally and vertically adjacent pixel pairs that
    straddle (do not straddle) a ``block_size`` grid line; BEF = eta * (D_B - D_Bc) with
    eta = log2(B) / log2(min(H, W)) when D_B > D_Bc, else 0. Pair counts are the actual ones, so sizes that
    are not multiples of B are handled.
    """
    y = np.asarray(y, dtype=np.float64)
    h, w = y.shape
    if min(h, w) <= block_size:
        raise MetricInputError(f"PSNR-B needs both sides > block_size={block_size}; got {(h, w)}")
    dh = np.diff(y, axis=1) ** 2  # (H, W-1): pair (j, j+1) at index j
    dv = np.diff(y, axis=0) ** 2  # (H-1, W)
    hb = np.zeros(w - 1, dtype=bool)
    hb[block_size - 1 :: block_size] = True
    vb = np.zeros(h - 1, dtype=bool)
    vb[block_size - 1 :: block_size] = True
    d_b = (dh[:, hb].sum() + dv[vb, :].sum()) / (h * hb.sum() + w * vb.sum())
    d_bc = (dh[:, ~hb].sum() + dv[~vb, :].sum()) / (h * (~hb).sum() + w * (~vb).sum())
    if d_b <= d_bc:
        return 0.0
    return float(math.log2(block_size) / math.log2(min(h, w)) * (d_b - d_bc))


def psnrb_y(pred: np.ndarray, target: np.ndarray, block_size: int = 8, rounded: bool = True) -> float:
    """PSNR-B in dB on BT.601 Y: 10 log10(255^2 / (MSE + BEF(pred))); ``inf`` when that sum is zero.

    Written by hand: torchmetrics' version pools the blocking term over a batch and miscounts boundary pairs
    (``H * W / B - 1`` instead of ``H * (W / B - 1)``).
    """
    pred, target = _pair(pred, target)
    y_pred, y_target = rgb_to_y_bt601(pred, rounded), rgb_to_y_bt601(target, rounded)
    mse_b = float(np.mean((y_pred - y_target) ** 2)) + blocking_effect_factor(y_pred, block_size)
    return math.inf if mse_b == 0.0 else 10.0 * math.log10(PEAK * PEAK / mse_b)


def all_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All metrics of one image pair: psnr_y, ssim_y, ssim_y_paper, psnr_rgb, ssim_rgb, psnrb_y."""
    pred, target = _pair(pred, target)
    return {
        "psnr_y": psnr_y(pred, target),
        "ssim_y": ssim_y(pred, target),
        "ssim_y_paper": ssim_y_paper(pred, target),
        "psnr_rgb": psnr_rgb(pred, target),
        "ssim_rgb": ssim_rgb(pred, target),
        "psnrb_y": psnrb_y(pred, target),
    }
