"""The header thumbnail as an absolute reference: per-MCU block statistics and pixels on demand.

The thumbnail (RGB, covering the whole image) is converted to YCbCr and brought to each component's
8x8-block grid by a bicubic resize (Pillow), giving the expected block mean at every output MCU.
Full-resolution thumbnail pixels are only needed where MCUs are filled, so they are interpolated on
demand (``sample_tiles``: bicubic, a = -0.5 like Pillow) instead of upsampling whole planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from PIL import Image
from scipy import ndimage

from src.jpeg.thumbnail import decode_thumbnail  # noqa: F401  (re-exported; the one home)
from src.sca.color import rgb_to_ycbcr
from src.sca.errors import SCAError
from src.sca.tiles import tile_shapes


@dataclass
class ThumbReference:
    """The thumbnail brought to the decoded layout.

    ycc: float32 (h, w, ncomp) the thumbnail in YCbCr (sample units). comp_size: (width, height) of each
    component's unpadded plane. means: float32 (N, M) expected 8x8 block means at every OUTPUT MCU
    (columns as in McuFeatures.means). sigma: float32 (N, ncomp) local variation of the thumbnail
    around each MCU (std of block means over 3x3 blocks, maximum inside the MCU): how far a correct
    block mean may stray from the thumbnail's.
    """

    ycc: np.ndarray
    comp_size: list[tuple[int, int]]
    means: np.ndarray
    sigma: np.ndarray


def _resize(channel: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize of a float32 (h, w) channel (Pillow does this in C)."""
    im = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(im.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def thumbnail_reference(
    thumb_rgb: np.ndarray, planes: list[np.ndarray], width: int, height: int, mcu_rows: int, mcu_cols: int
) -> ThumbReference:
    """Bring the thumbnail (uint8 (h, w, 3) RGB of the whole image) to the decoded plane layout."""
    if thumb_rgb.ndim != 3 or thumb_rgb.shape[2] != 3 or min(thumb_rgb.shape[:2]) < 1:
        raise SCAError(f"thumbnail must be (h, w, 3) RGB; got shape {thumb_rgb.shape}")
    if len(planes) not in (1, 3):
        raise SCAError(f"thumbnail reference supports 1 or 3 components; got {len(planes)}")
    shapes = tile_shapes(planes, mcu_rows, mcu_cols)
    ycc = rgb_to_ycbcr(thumb_rgb)[..., : len(planes)]
    mcu_h = max(th for th, _ in shapes)
    mcu_w = max(tw for _, tw in shapes)
    n = mcu_rows * mcu_cols
    means, sigma, sizes = [], np.empty((n, len(planes)), np.float32), []
    for ci, (th, tw) in enumerate(shapes):
        wc, hc = -(-width * tw // mcu_w), -(-height * th // mcu_h)
        sizes.append((wc, hc))
        nby, nbx = th // 8, tw // 8
        grid = _resize(ycc[..., ci], -(-wc // 8), -(-hc // 8))
        grid = np.pad(
            grid, ((0, mcu_rows * nby - grid.shape[0]), (0, mcu_cols * nbx - grid.shape[1])), "edge"
        )
        m = grid.reshape(mcu_rows, nby, mcu_cols, nbx).transpose(0, 2, 1, 3).reshape(n, nby * nbx)
        means.append(m)
        g = grid.astype(np.float64)
        m1 = ndimage.uniform_filter(g, 3, mode="nearest")
        m2 = ndimage.uniform_filter(g * g, 3, mode="nearest")
        sd = np.sqrt(np.maximum(m2 - m1 * m1, 0.0)).reshape(mcu_rows, nby, mcu_cols, nbx).max(axis=(1, 3))
        sigma[:, ci] = sd.reshape(-1)
    return ThumbReference(
        np.ascontiguousarray(ycc), sizes, np.ascontiguousarray(np.concatenate(means, 1)), sigma
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _cubic(t):
    """Keys' cubic convolution kernel with a = -0.5 (Pillow's bicubic)."""
    t = abs(t)
    if t < 1.0:
        return (1.5 * t - 2.5) * t * t + 1.0
    if t < 2.0:
        return ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0
    return 0.0


@numba.njit(cache=True, nogil=True)
def _sample_tiles(small, out, tiles, cols, th, tw, wc, hc):
    """out[tile pixels] = bicubic upsample of ``small`` (h, w) to (hc, wc) at every pixel of the listed
    tiles (raster MCU indices); pixels past the unpadded size repeat the last row/column."""
    h, w = small.shape
    sx = w / wc
    sy = h / hc
    wy = np.empty(4)
    wx = np.empty(4)
    for t in range(tiles.shape[0]):
        j = tiles[t]
        r = j // cols
        c = j - r * cols
        for y in range(r * th, r * th + th):
            fy = (min(y, hc - 1) + 0.5) * sy - 0.5
            y0 = int(np.floor(fy)) - 1
            for k in range(4):
                wy[k] = _cubic(fy - (y0 + k))
            sw = wy.sum()
            for x in range(c * tw, c * tw + tw):
                fx = (min(x, wc - 1) + 0.5) * sx - 0.5
                x0 = int(np.floor(fx)) - 1
                for k in range(4):
                    wx[k] = _cubic(fx - (x0 + k))
                acc = 0.0
                for a in range(4):
                    yy = min(max(y0 + a, 0), h - 1)
                    row = 0.0
                    for b in range(4):
                        xx = min(max(x0 + b, 0), w - 1)
                        row += wx[b] * small[yy, xx]
                    acc += wy[a] * row
                out[y, x] = acc / (sw * wx.sum())


def sample_tiles(
    ref: ThumbReference, comp: int, out: np.ndarray, tiles: np.ndarray, mcu_rows: int, mcu_cols: int
) -> None:
    """Write the upsampled thumbnail of component ``comp`` into the listed tiles (int64 raster MCU
    indices) of ``out``, a float32 plane of that component."""
    th, tw = out.shape[0] // mcu_rows, out.shape[1] // mcu_cols
    wc, hc = ref.comp_size[comp]
    small = np.ascontiguousarray(ref.ycc[..., comp], dtype=np.float64)
    _sample_tiles(small, out, np.ascontiguousarray(tiles, np.int64), mcu_cols, th, tw, wc, hc)
