"""MCU tiles of padded planes: per-MCU edge/mean features and the raster re-layout.

Every component plane is float32 (mcu_rows * th, mcu_cols * tw), padded to whole MCUs, in sample
units (0..255 scale, unclipped); (th, tw) is the component's tile inside one MCU (e.g. Y 16x16 and
Cb/Cr 8x8 for 4:2:0). MCU index i = row * mcu_cols + col (raster order). Features of all components
are concatenated along the last axis, with ``*_comp`` arrays telling which component each column
belongs to. Written in numba because the gathers are per tile and no library offers a tile-wise
gather with per-tile offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from src.sca.errors import SCAError


@dataclass
class McuFeatures:
    """Per-MCU features of the DECODED planes (raw values, offsets not removed).

    top/bot: float32 (N, E) first/last pixel row of each tile, E = sum of tile widths.
    top2/bot2: float32 (N, E) second / second-to-last row (for the slope at the edge).
    left/right, left2/right2: float32 (N, L) the same for columns, L = sum of tile heights.
    means: float32 (N, M) 8x8 block means, M = number of blocks per MCU (row-major inside each tile).
    tex_top/tex_bot: float32 (N, ncomp) mean |row0 - row1| and |row[-1] - row[-2]| (offset-free texture).
    tex_left/tex_right: float32 (N, ncomp) the same for the outer two columns.
    e_comp (E,), l_comp (L,), m_comp (M,): int64 component index of each column.
    """

    top: np.ndarray
    bot: np.ndarray
    top2: np.ndarray
    bot2: np.ndarray
    left: np.ndarray
    right: np.ndarray
    left2: np.ndarray
    right2: np.ndarray
    means: np.ndarray
    tex_top: np.ndarray
    tex_bot: np.ndarray
    tex_left: np.ndarray
    tex_right: np.ndarray
    e_comp: np.ndarray
    l_comp: np.ndarray
    m_comp: np.ndarray


def dc_steps(decoded, ncomp: int) -> np.ndarray:
    """float64 (ncomp,): the DC quantisation step of each component in sample units (its table's DC entry
    q0 / 8: one step of a block's mean), from ``decoded.qtables`` (one table per component)."""
    return np.array([float(np.asarray(q).reshape(-1)[0]) / 8.0 for q in decoded.qtables[:ncomp]], np.float64)


def tile_shapes(planes: list[np.ndarray], mcu_rows: int, mcu_cols: int) -> list[tuple[int, int]]:
    """(th, tw) tile of each component inside one MCU; both must be positive multiples of 8."""
    shapes = []
    for k, p in enumerate(planes):
        if p.ndim != 2 or p.shape[0] % mcu_rows or p.shape[1] % mcu_cols:
            raise SCAError(
                f"plane {k} has shape {p.shape}: not whole tiles of a {mcu_rows}x{mcu_cols} MCU grid"
            )
        th, tw = p.shape[0] // mcu_rows, p.shape[1] // mcu_cols
        if th % 8 or tw % 8:
            raise SCAError(f"plane {k} tile is {th}x{tw} pixels; tiles must be whole 8x8 blocks")
        shapes.append((th, tw))
    return shapes


@numba.njit(cache=True, nogil=True)
def _features_kernel(plane, rows, cols, th, tw, eo, lo, mo, ci, top, bot, top2, bot2, left, right, left2,
                     right2, means, tt, tb, tl, tr, with_means):  # fmt: skip
    nbx = tw // 8
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            y0 = r * th
            x0 = c * tw
            st = 0.0
            sb = 0.0
            for x in range(tw):
                a0 = plane[y0, x0 + x]
                a1 = plane[y0 + 1, x0 + x]
                b0 = plane[y0 + th - 1, x0 + x]
                b1 = plane[y0 + th - 2, x0 + x]
                top[i, eo + x] = a0
                bot[i, eo + x] = b0
                top2[i, eo + x] = a1
                bot2[i, eo + x] = b1
                st += abs(a0 - a1)
                sb += abs(b0 - b1)
            tt[i, ci] = st / tw
            tb[i, ci] = sb / tw
            sl = 0.0
            sr = 0.0
            for y in range(th):
                a0 = plane[y0 + y, x0]
                a1 = plane[y0 + y, x0 + 1]
                b0 = plane[y0 + y, x0 + tw - 1]
                b1 = plane[y0 + y, x0 + tw - 2]
                left[i, lo + y] = a0
                right[i, lo + y] = b0
                left2[i, lo + y] = a1
                right2[i, lo + y] = b1
                sl += abs(a0 - a1)
                sr += abs(b0 - b1)
            tl[i, ci] = sl / th
            tr[i, ci] = sr / th
            if not with_means:
                continue
            for by in range(th // 8):
                for bx in range(nbx):
                    s = 0.0
                    for yy in range(8):
                        for xx in range(8):
                            s += plane[y0 + by * 8 + yy, x0 + bx * 8 + xx]
                    means[i, mo + by * nbx + bx] = s / 64.0


def _dc_means(dc: list[np.ndarray], steps, shapes, rows: int, cols: int) -> np.ndarray | None:
    """Block means from the quantised DC maps (mean = dc * q0 / 8 + 128), or None if they do not fit."""
    out = []
    for d, step, (th, tw) in zip(dc, steps, shapes, strict=True):
        d = np.asarray(d)
        nby, nbx = th // 8, tw // 8
        if d.shape != (rows * nby, cols * nbx):
            return None
        m = d.reshape(rows, nby, cols, nbx).transpose(0, 2, 1, 3).reshape(rows * cols, nby * nbx)
        out.append(m.astype(np.float32) * np.float32(step) + np.float32(128.0))
    return np.ascontiguousarray(np.concatenate(out, axis=1))


def mcu_features(
    planes: list[np.ndarray],
    mcu_rows: int,
    mcu_cols: int,
    dc: list[np.ndarray] | None = None,
    steps: np.ndarray | None = None,
) -> McuFeatures:
    """Edge rows/columns, block means and edge texture of every MCU of the decoded planes.

    dc/steps: the decoder's quantised DC maps and DC steps (q0 / 8): the block means then come from
    them (the DC domain; exact up to the IDCT's rounding) instead of summing every pixel.
    """
    shapes = tile_shapes(planes, mcu_rows, mcu_cols)
    n = mcu_rows * mcu_cols
    ncomp = len(planes)
    e_tot = sum(tw for _, tw in shapes)
    l_tot = sum(th for th, _ in shapes)
    m_tot = sum((th // 8) * (tw // 8) for th, tw in shapes)
    f32 = np.float32
    top, bot, top2, bot2 = (np.empty((n, e_tot), f32) for _ in range(4))
    left, right, left2, right2 = (np.empty((n, l_tot), f32) for _ in range(4))
    means = None
    if dc is not None and steps is not None and len(dc) >= len(planes):
        means = _dc_means(list(dc)[: len(planes)], steps, shapes, mcu_rows, mcu_cols)
    with_means = means is None
    if with_means:
        means = np.empty((n, m_tot), f32)
    tt, tb, tl, tr = (np.empty((n, ncomp), f32) for _ in range(4))
    e_comp, l_comp, m_comp = (np.empty(k, np.int64) for k in (e_tot, l_tot, m_tot))
    eo = lo = mo = 0
    for ci, (plane, (th, tw)) in enumerate(zip(planes, shapes, strict=True)):
        p = np.ascontiguousarray(plane, dtype=f32)
        _features_kernel(p, mcu_rows, mcu_cols, th, tw, eo, lo, mo, ci, top, bot, top2, bot2, left, right,
                         left2, right2, means, tt, tb, tl, tr, with_means)  # fmt: skip
        nb = (th // 8) * (tw // 8)
        e_comp[eo : eo + tw], l_comp[lo : lo + th], m_comp[mo : mo + nb] = ci, ci, ci
        eo, lo, mo = eo + tw, lo + th, mo + nb
    return McuFeatures(
        top, bot, top2, bot2, left, right, left2, right2, means, tt, tb, tl, tr, e_comp, l_comp, m_comp
    )


@numba.njit(cache=True, nogil=True)
def _relayout_kernel(plane, out, src, off, rows, cols, th, tw, fill):
    # output pixel rows in order (sequential writes), each as one tile-wide run per MCU
    for r in range(rows):
        for y in range(th):
            oy = r * th + y
            for c in range(cols):
                j = r * cols + c
                i = src[j]
                x0 = c * tw
                if i < 0:
                    for x in range(tw):
                        out[oy, x0 + x] = fill
                else:
                    ri = i // cols
                    sy = ri * th + y
                    sx = (i - ri * cols) * tw
                    o = off[j]
                    for x in range(tw):
                        out[oy, x0 + x] = plane[sy, sx + x] - o


def relayout(
    planes: list[np.ndarray],
    src: np.ndarray,
    offsets: np.ndarray,
    mcu_rows: int,
    mcu_cols: int,
    fill: float = 0.0,
) -> list[np.ndarray]:
    """Move whole MCUs along the raster order and remove per-component offsets.

    src: int64 (N,) decoded MCU index shown at each output MCU position (-1: none, tile set to ``fill``).
    offsets: float32 (N, ncomp) offset subtracted from the tile at each OUTPUT position (sample units).
    Returns new float32 planes of the same shapes.
    """
    shapes = tile_shapes(planes, mcu_rows, mcu_cols)
    src = np.ascontiguousarray(src, dtype=np.int64)
    out = []
    for ci, (plane, (th, tw)) in enumerate(zip(planes, shapes, strict=True)):
        p = np.ascontiguousarray(plane, dtype=np.float32)
        o = np.empty_like(p)
        off = np.ascontiguousarray(offsets[:, ci], dtype=np.float32)
        _relayout_kernel(p, o, src, off, mcu_rows, mcu_cols, th, tw, np.float32(fill))
        out.append(o)
    return out
