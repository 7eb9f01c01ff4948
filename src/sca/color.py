"""RGB -> YCbCr (JPEG/JFIF full-range BT.601) for the thumbnail, float32 in sample units (0..255)."""

from __future__ import annotations

import numpy as np

# JFIF (ITU-T T.871) matrices: Y in 0..255, Cb/Cr centred on 128.
_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]], np.float32
)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in 0..255 (any dtype) -> float32 (..., 3) Y, Cb, Cr in 0..255 units."""
    ycc = rgb.astype(np.float32) @ _RGB2YCC.T
    ycc[..., 1:] += 128.0
    return ycc
