"""Fill of untrusted MCUs: the upsampled thumbnail plus a smooth correction, or interpolation.

The correction lives on each component's 8x8-block grid: (restored - thumbnail) block means of the
trusted blocks are spread into the holes by push-pull (a multiresolution membrane fill; the grid has
~32k cells at 2K, so this is cheap), then interpolated bilinearly to the pixels of the hole tiles
only. A filled region so takes its detail from the thumbnail and its level from the trusted pixels
around it (a cheap Poisson-like blend). Without a thumbnail the restored block means themselves are
interpolated.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage

from src.sca.thumbnail import ThumbReference, sample_tiles
from src.sca.tiles import tile_shapes


@numba.njit(cache=True, nogil=True, inline="always")
def _box3_nearest(a, out, tmp):
    """out = 3x3 box mean of a (h, w) with edges repeated (scipy's uniform_filter(a, 3, mode="nearest"))."""
    h, w = a.shape
    for y in range(h):
        for x in range(w):
            tmp[y, x] = (a[max(y - 1, 0), x] + a[y, x] + a[min(y + 1, h - 1), x]) / 3.0
    for y in range(h):
        for x in range(w):
            out[y, x] = (tmp[y, max(x - 1, 0)] + tmp[y, x] + tmp[y, min(x + 1, w - 1)]) / 3.0


@numba.njit(cache=True, nogil=True)
def _push_pull_kernel(values, known):
    # pull: 2x2 sums of (value, weight) down to one cell (odd sizes padded with empty cells)
    v_levels = [np.where(known, values, 0.0)]
    w_levels = [known.astype(np.float64)]
    while max(v_levels[-1].shape[0], v_levels[-1].shape[1]) > 1:
        v, w = v_levels[-1], w_levels[-1]
        h2, w2 = (v.shape[0] + 1) // 2, (v.shape[1] + 1) // 2
        nv = np.zeros((h2, w2))
        nw = np.zeros((h2, w2))
        for y in range(v.shape[0]):
            for x in range(v.shape[1]):
                nv[y // 2, x // 2] += v[y, x]
                nw[y // 2, x // 2] += w[y, x]
        v_levels.append(nv)
        w_levels.append(nw)
    est = v_levels[-1] / np.maximum(w_levels[-1], 1e-12)
    # push: each level blends its own mean (by its weight, up to 1) with the smoothed coarser estimate
    for k in range(len(v_levels) - 2, -1, -1):
        v, w = v_levels[k], w_levels[k]
        h, wd = v.shape
        up = np.empty((h, wd))
        for y in range(h):
            for x in range(wd):
                up[y, x] = est[y // 2, x // 2]
        smooth = np.empty((h, wd))
        _box3_nearest(up, smooth, np.empty((h, wd)))
        est = np.empty((h, wd))
        for y in range(h):
            for x in range(wd):
                wc = min(w[y, x], 1.0)
                own = v[y, x] / max(w[y, x], 1e-12) if w[y, x] > 0 else 0.0
                est[y, x] = own * wc + (1.0 - wc) * smooth[y, x]
    return np.where(known, values, est)


def push_pull(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown cells of a float (h, w) grid smoothly from the known ones (push-pull).

    values: float64 (h, w); known: bool (h, w). Known cells are returned unchanged; all unknown ->
    zeros. In numba: a pyramid of a few small grids, whose numpy version spent its time in call
    overhead.
    """
    if known.all():
        return values.copy()
    if not known.any():
        return np.zeros_like(values)
    return _push_pull_kernel(np.ascontiguousarray(values, np.float64), np.ascontiguousarray(known, np.bool_))


@numba.njit(cache=True, nogil=True)
def _add_grid(plane, grid, tiles, cols, th, tw):
    """plane[tile] += bilinear(grid) over every listed tile; grid is the plane's 8x8-block grid."""
    gh, gw = grid.shape
    for t in range(tiles.shape[0]):
        j = tiles[t]
        r = j // cols
        c = j - r * cols
        for y in range(r * th, r * th + th):
            gy = (y + 0.5) / 8.0 - 0.5
            y0 = int(np.floor(gy))
            fy = gy - y0
            y1 = min(max(y0 + 1, 0), gh - 1)
            y0 = min(max(y0, 0), gh - 1)
            for x in range(c * tw, c * tw + tw):
                gx = (x + 0.5) / 8.0 - 0.5
                x0 = int(np.floor(gx))
                fx = gx - x0
                x1 = min(max(x0 + 1, 0), gw - 1)
                x0 = min(max(x0, 0), gw - 1)
                top = (1 - fx) * grid[y0, x0] + fx * grid[y0, x1]
                bottom = (1 - fx) * grid[y1, x0] + fx * grid[y1, x1]
                plane[y, x] += (1 - fy) * top + fy * bottom


def fill_holes(
    planes: list[np.ndarray],
    hole: np.ndarray,
    block_means: np.ndarray,
    m_comp: np.ndarray,
    mcu_rows: int,
    mcu_cols: int,
    thumb: ThumbReference | None = None,
    gain: float = 0.5,
    clamp: float = 16.0,
    thumb_tiles: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Fill the hole MCUs (bool (N,)) of the restored planes in place and return them.

    block_means: float (N, M) 8x8 block means of the restored planes at every output MCU (columns by
    component as given by m_comp); only the trusted ones are read. gain/clamp: the correction inside
    a hole is scaled and clipped (sample units): next to edges the neighbours' difference from the
    blurry thumbnail says little about the hole, so it is damped. thumb_tiles: bool (N,) the holes that
    take the thumbnail (default: every hole when a thumbnail is given); the other holes are interpolated
    (:func:`choose_fill` picks per hole which fits its neighbourhood).
    """
    if not hole.any():
        return planes
    with_thumb = np.zeros_like(hole) if thumb is None else hole.copy()
    if thumb is not None and thumb_tiles is not None:
        with_thumb &= thumb_tiles
    known_mcu = ~hole.reshape(mcu_rows, mcu_cols)
    for ci, (plane, (th, tw)) in enumerate(zip(planes, tile_shapes(planes, mcu_rows, mcu_cols), strict=True)):
        nby, nbx = th // 8, tw // 8
        known = np.repeat(np.repeat(known_mcu, nby, axis=0), nbx, axis=1)
        cols_c = m_comp == ci
        for use_thumb in (True, False):
            tiles = np.flatnonzero(hole & (with_thumb == use_thumb)).astype(np.int64)
            if not tiles.size:
                continue
            diff = block_means[:, cols_c].astype(np.float64)
            if use_thumb:
                diff = diff - thumb.means[:, cols_c]
                sample_tiles(thumb, ci, plane, tiles, mcu_rows, mcu_cols)
            else:
                for j in tiles:
                    r, c = divmod(int(j), mcu_cols)
                    plane[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = 0.0
            grid = diff.reshape(mcu_rows, mcu_cols, nby, nbx).transpose(0, 2, 1, 3)
            corr = push_pull(grid.reshape(mcu_rows * nby, -1), known)
            if use_thumb:  # damp the correction inside the holes (edges make it unreliable)
                corr = np.where(known, corr, np.clip(gain * corr, -clamp, clamp))
            _add_grid(plane, corr, tiles, mcu_cols, th, tw)
    return planes


def tile_sq_error(a: list[np.ndarray], b: list[np.ndarray], mcu_rows: int, mcu_cols: int) -> np.ndarray:
    """float64 (N,): the mean squared difference per sample (sample units squared) of every MCU tile of
    two plane lists of the same layout, over the samples of all components."""
    ssd = np.zeros(mcu_rows * mcu_cols)
    count = 0
    for pa, pb, (th, tw) in zip(a, b, tile_shapes(a, mcu_rows, mcu_cols), strict=True):
        d = np.asarray(pa, np.float64) - np.asarray(pb, np.float64)
        ssd += (d * d).reshape(mcu_rows, th, mcu_cols, tw).sum(axis=(1, 3)).reshape(-1)
        count += th * tw
    return ssd / count


def choose_fill(
    planes: list[np.ndarray],
    hole: np.ndarray,
    block_means: np.ndarray,
    m_comp: np.ndarray,
    mcu_rows: int,
    mcu_cols: int,
    thumb: ThumbReference | None = None,
    gain: float = 0.5,
    clamp: float = 16.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Which fill fits each hole, judged on its neighbourhood: (thumb_tiles bool (N,): the holes where the
    thumbnail fill predicts the trusted MCUs around them better than interpolation, for ``fill_holes``;
    expected float64 (N,): at every hole the chosen fill's error there, the mean squared difference per
    sample (sample units squared) on the ring MCUs next to it, else on its region's ring; 0 elsewhere).

    Cross-validation on a ring: the trusted MCUs touching a hole region (8-neighbours) are filled too,
    as if lost, by either fill from the MCUs beyond them, and compared with what they show. A camera
    thumbnail fits its image as a whole but not everywhere (its own tone curve, blur, a registration
    off by a pixel: on textured content a thumbnail fill can be 80 levels off where interpolation is 30),
    and interpolation fails across edges the thumbnail shows; the ring says which holds around this
    hole. Regions whose rings touch are judged together. planes: the restored planes (trusted MCUs
    as shown), not modified; the other arguments as :func:`fill_holes`. A region without a trusted
    MCU around it takes the thumbnail (expected error: inf)."""
    n = mcu_rows * mcu_cols
    expected = np.zeros(n)
    if not hole.any():
        return np.zeros(n, bool), expected
    grid = hole.reshape(mcu_rows, mcu_cols)
    ring = (ndimage.binary_dilation(grid, np.ones((3, 3), bool)) & ~grid).reshape(-1)
    test = hole | ring
    labels, count = ndimage.label(test.reshape(mcu_rows, mcu_cols), np.ones((3, 3), int))
    labels = labels.reshape(-1)
    on_ring = labels[ring]
    ring_n = np.bincount(on_ring, minlength=count + 1).astype(np.float64)

    def ring_error(with_thumb) -> np.ndarray:
        pred = fill_holes([p.copy() for p in planes], test, block_means, m_comp, mcu_rows, mcu_cols,
                          with_thumb, gain, clamp)  # fmt: skip
        return np.where(ring, tile_sq_error(pred, planes, mcu_rows, mcu_cols), 0.0)

    def region_mean(err: np.ndarray) -> np.ndarray:
        return np.bincount(on_ring, err[ring], minlength=count + 1) / np.maximum(ring_n, 1.0)

    e_i = ring_error(None)
    if thumb is None:
        pick, e_t = np.zeros(count + 1, bool), e_i
    else:
        e_t = ring_error(thumb)
        pick = (region_mean(e_t) <= region_mean(e_i)) | (ring_n == 0)
    chosen = np.where(pick[labels], e_t, e_i)

    # each hole's expected error: the mean over the ring MCUs next to it (the texture there), else
    # over its region's ring
    def box3(a: np.ndarray) -> np.ndarray:
        return ndimage.convolve(a.reshape(mcu_rows, mcu_cols), np.ones((3, 3)), mode="constant").reshape(-1)

    near_sum, near_n = box3(chosen), box3(ring.astype(np.float64))
    per = np.where(ring_n > 0, region_mean(chosen), np.inf)
    local = np.where(near_n > 0, near_sum / np.maximum(near_n, 1.0), per[labels])
    expected[hole] = local[hole]
    return hole & pick[labels] & (thumb is not None), expected
