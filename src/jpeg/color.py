"""Chroma upsampling and YCbCr -> RGB (numba), fused row by row.

Two paths:
- exact (``clip=True``, uint8 out): libjpeg's arithmetic. Samples are rounded and range-limited to 0..255
  first, then upsampled with libjpeg's integer "fancy" triangle filter (h2v1, h1v2, h2v2 with its
  alternating rounding biases; replication for other ratios or narrow planes) and converted with its
  16-bit fixed-point tables. Clean files give Pillow's (libjpeg-turbo's) pixels.
- float (``clip=False``): the same filters without rounding or range limiting, float32 out; keeps the
  large DC offsets of corrupted files.

Edge handling follows libjpeg: the filters see the component's real extent ceil(W*h/hmax) x ceil(H*v/vmax)
(not the MCU padding) and replicate its border samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np

from src.jpeg.idct import idct_islow_plane

UPSAMPLE_MODES = ("fancy", "nearest")

_SCALE = 16
_HALF = 1 << (_SCALE - 1)


def _fix16(x: float) -> int:
    return int(x * (1 << _SCALE) + 0.5)


_CR_R = _fix16(1.40200)
_CB_B = _fix16(1.77200)
_CR_G = _fix16(0.71414)
_CB_G = _fix16(0.34414)


@nb.njit(inline="always")
def _s8(v):
    """A float sample rounded to the nearest integer and range-limited to 0..255 (int32)."""
    return np.int32(min(max(v + np.float32(0.5), np.float32(0.0)), np.float32(255.0)))  # branch-free


@nb.njit(inline="always")
def _vertical(p, y, g, width, col):
    """Vertical stage of the row-``y`` filter into ``col`` (float samples): 3 * nearer row + further row
    for the 2x vertical kinds (2, 3), the sample row itself for h2v1 (1)."""
    cw, ch, kind = g[0], g[1], g[4]
    if kind == 1:
        for i in range(cw):
            col[i] = p[y, i]
        return
    cy = y >> 1
    ny = max(0, min(ch - 1, cy - 1 if (y & 1) == 0 else cy + 1))
    n = width if kind == 2 else cw
    for i in range(n):
        v = p[cy, i]
        col[i] = v + v + v + p[ny, i]  # (not 3 * v: an int literal would promote float32 to float64)


@nb.njit(inline="always")
def _src_rows(y, g):
    """Plane rows output row ``y`` of a component reads: (the row, its vertical neighbour or -1)."""
    ch, rv, kind = g[1], g[3], g[4]
    if kind == 0:
        return y // rv, -1
    if kind == 1:
        return y, -1
    cy = y >> 1
    return cy, max(0, min(ch - 1, cy - 1 if (y & 1) == 0 else cy + 1))


@nb.njit(inline="always")
def _vertical_int(pc, pn, g, width, col):
    """Vertical stage on samples rounded and range-limited first (libjpeg filters 8-bit samples): the row
    ``pc`` itself for h2v1 (kind 1), 3 * ``pc`` + neighbour row ``pn`` for the 2x vertical kinds."""
    cw, kind = g[0], g[4]
    if kind == 1:
        for i in range(cw):
            col[i] = _s8(pc[i])
        return
    n = width if kind == 2 else cw
    for i in range(n):
        col[i] = 3 * _s8(pc[i]) + _s8(pn[i])


@nb.njit(inline="always")
def _row_int(pc, pn, y, g, width, col, out):
    """Output row ``y`` of one component with libjpeg's integer filters into ``out`` int32 (>= 2*cw + 2).

    ``pc``, ``pn``: float32 plane rows ``_src_rows`` names (rounded and range-limited on reading); ``g`` =
    (cw, ch, rh, rv, kind) with kind 1 h2v1, 2 h1v2, 3 h2v2 triangle filter (libjpeg's "fancy"),
    0 replication; ``col`` int32 scratch. The triangle: the nearer sample weighs 3/4, the further 1/4, border
    samples replicated; the rounding biases alternate like libjpeg's. (Even and odd outputs are written in
    the same loop iteration: one interleaved store group the loop vectoriser handles; int32 arithmetic
    throughout, values <= 4 * 1020.)
    """
    cw, rh, kind = g[0], g[2], g[4]
    if kind == 0:
        if rh == 1:
            for x in range(width):
                out[x] = _s8(pc[x])
        elif rh == 2:
            for i in range(cw):
                v = _s8(pc[i])
                out[2 * i] = v
                out[2 * i + 1] = v
        else:
            for x in range(width):
                out[x] = _s8(pc[x // rh])
        return
    _vertical_int(pc, pn, g, width, col)
    if kind == 2:
        bias = np.int32(1 if (y & 1) == 0 else 2)
        for x in range(width):
            out[x] = (col[x] + bias) >> 2
        return
    last = cw - 1  # cw > 2 for the horizontal kinds
    if kind == 1:
        out[0] = col[0]
        out[1] = (3 * col[0] + col[1] + 2) >> 2
        out[2 * last] = (3 * col[last] + col[last - 1] + 1) >> 2
        out[2 * last + 1] = col[last]
        for cx in range(1, last):
            c3 = np.int32(3) * col[cx]
            out[2 * cx] = np.int32(c3 + col[cx - 1] + np.int32(1)) >> 2
            out[2 * cx + 1] = np.int32(c3 + col[cx + 1] + np.int32(2)) >> 2
    else:
        out[0] = (4 * col[0] + 8) >> 4
        out[1] = (3 * col[0] + col[1] + 7) >> 4
        out[2 * last] = (3 * col[last] + col[last - 1] + 8) >> 4
        out[2 * last + 1] = (4 * col[last] + 7) >> 4
        for cx in range(1, last):
            c3 = np.int32(3) * col[cx]
            out[2 * cx] = np.int32(c3 + col[cx - 1] + np.int32(8)) >> 4
            out[2 * cx + 1] = np.int32(c3 + col[cx + 1] + np.int32(7)) >> 4


@nb.njit(cache=True, nogil=True)
def _row_float(p, y, g, width, col, out):
    """Float twin of ``_row_int`` (float32 samples, no rounding); ``out`` float32 (>= 2*cw + 2)."""
    cw, rh, rv, kind = g[0], g[2], g[3], g[4]
    if kind == 0:
        sy = y // rv
        if rh == 1:
            for x in range(width):
                out[x] = p[sy, x]
        elif rh == 2:
            for i in range(cw):
                v = p[sy, i]
                out[2 * i] = v
                out[2 * i + 1] = v
        else:
            for x in range(width):
                out[x] = p[sy, x // rh]
        return
    _vertical(p, y, g, width, col)
    if kind == 2:
        for x in range(width):
            out[x] = col[x] * np.float32(0.25)
        return
    s = np.float32(0.25) if kind == 1 else np.float32(0.0625)
    s3 = s * np.float32(3.0)
    last = cw - 1
    out[0] = col[0] * (s3 + s)
    out[1] = col[0] * s3 + col[1] * s
    out[2 * last] = col[last] * s3 + col[last - 1] * s
    out[2 * last + 1] = col[last] * (s3 + s)
    for cx in range(1, last):
        c3 = col[cx] * s3
        out[2 * cx] = c3 + col[cx - 1] * s
        out[2 * cx + 1] = c3 + col[cx + 1] * s


@nb.njit(inline="always")
def _pack_row(t0, t1, t2, width, o, o32, wbase):
    """Interleave the planar uint8 rows into output row ``o`` (uint8 (width, 3)). When ``wbase`` >= 0 the
    row starts at uint32 word ``wbase`` of ``o32`` (the same memory) and 4 pixels go out as 3 words (12
    stores instead of 4 per pixel group: the byte-wise interleave was the slowest step); else byte-wise."""
    if wbase >= 0:
        for k in range(width >> 2):
            x = 4 * k
            w = wbase + 3 * k
            o32[w] = (np.uint32(t0[x]) | (np.uint32(t1[x]) << 8) | (np.uint32(t2[x]) << 16)
                      | (np.uint32(t0[x + 1]) << 24))  # fmt: skip
            o32[w + 1] = (np.uint32(t1[x + 1]) | (np.uint32(t2[x + 1]) << 8) | (np.uint32(t0[x + 2]) << 16)
                          | (np.uint32(t1[x + 2]) << 24))  # fmt: skip
            o32[w + 2] = (np.uint32(t2[x + 2]) | (np.uint32(t0[x + 3]) << 8) | (np.uint32(t1[x + 3]) << 16)
                          | (np.uint32(t2[x + 3]) << 24))  # fmt: skip
        return
    for x in range(width):
        o[x, 0] = t0[x]
        o[x, 1] = t1[x]
        o[x, 2] = t2[x]


@nb.njit(inline="always")
def _convert_row(r0, r1, r2, t0, t1, t2, width, mode):
    """Upsampled int32 rows -> planar uint8 RGB rows (libjpeg's 16-bit fixed point, in int32: the products
    stay below 2**24 for 8-bit samples)."""
    if mode == 0:
        kr = np.int32(_CR_R)
        kbg = np.int32(-_CB_G)
        krg = np.int32(_CR_G)
        kb = np.int32(_CB_B)
        half = np.int32(_HALF)
        c128 = np.int32(128)
        for x in range(width):
            yy = r0[x]
            cb = np.int32(r1[x] - c128)
            cr = np.int32(r2[x] - c128)
            t0[x] = max(0, min(255, yy + (np.int32(kr * cr + half) >> 16)))
            t1[x] = max(0, min(255, yy + (np.int32(kbg * cb - krg * cr + half) >> 16)))
            t2[x] = max(0, min(255, yy + (np.int32(kb * cb + half) >> 16)))
    else:
        for x in range(width):
            t0[x] = r0[x]
        src1 = r0 if mode == 2 else r1
        src2 = r0 if mode == 2 else r2
        for x in range(width):
            t1[x] = src1[x]
            t2[x] = src2[x]


@nb.njit(cache=True, nogil=True)
def _to_rgb_exact(p0, p1, p2, geom, width, height, mode, out, out32):
    """mode: 0 YCbCr, 1 RGB components, 2 gray (p0 only). ``geom`` int64 (3, 5) = cw, ch, rh, rv, kind;
    planes float32; ``out`` uint8 (height, width, 3); ``out32``: the same buffer as uint32 words when
    ``width % 4 == 0`` (rows then start on word boundaries), else an empty array.

    Each row is converted into planar scratch rows first and interleaved afterwards: that keeps the
    arithmetic loops vectorisable.
    """
    n = 2 * width + 4
    rows = np.empty((3, n), dtype=np.int32)
    rgb = np.empty((3, n), dtype=np.uint8)
    col = np.empty(n, dtype=np.int32)
    r0, r1, r2 = rows[0], rows[1], rows[2]
    t0, t1, t2 = rgb[0], rgb[1], rgb[2]
    words = out32.shape[0] > 0
    wpr = (3 * width) >> 2
    for y in range(height):
        a, b = _src_rows(y, geom[0])
        _row_int(p0[a], p0[max(b, 0)], y, geom[0], width, col, r0)
        if mode != 2:
            a, b = _src_rows(y, geom[1])
            _row_int(p1[a], p1[max(b, 0)], y, geom[1], width, col, r1)
            a, b = _src_rows(y, geom[2])
            _row_int(p2[a], p2[max(b, 0)], y, geom[2], width, col, r2)
        _convert_row(r0, r1, r2, t0, t1, t2, width, mode)
        _pack_row(t0, t1, t2, width, out[y], out32, y * wpr if words else -1)


@nb.njit(inline="always")
def _ring_row(ring, rows, r):
    """Plane row ``r`` of a component held in a ring of 3 MCU-row bands of ``rows`` rows each."""
    return ring[((r // rows) % 3) * rows + r % rows]


@nb.njit(cache=True, nogil=True)
def decode_rgb_exact(coef, nzk, dc, comp, qt, geom, width, height, mode, mcu_rows, band, ring0, ring1, ring2,
                     out, out32):  # fmt: skip
    """Fused islow IDCT + ``_to_rgb_exact``, one MCU row at a time: the same pixels without the
    full-size float32 planes (their writes and reads were a third of the decode's time).

    ``coef``/``nzk``/``dc``: the entropy decoder's block arrays; ``comp`` int64 (3, 4) = first block,
    block rows per MCU row (v), block columns, plane rows per MCU row (8 v); ``qt`` int64 (3, 64);
    ``band`` = output rows per MCU row (8 vmax); ``ring*`` float32 (3 * 8 v, 8 * block columns): three
    MCU-row bands per component (row k+1 is transformed before the output rows of row k, which read one
    plane row of rows k-1 and k+1 at most). Gray: ``ring1``/``ring2`` are unused.
    """
    ncomp = 1 if mode == 2 else 3
    n = 2 * width + 4
    rows = np.empty((3, n), dtype=np.int32)
    rgb = np.empty((3, n), dtype=np.uint8)
    col = np.empty(n, dtype=np.int32)
    r0, r1, r2 = rows[0], rows[1], rows[2]
    t0, t1, t2 = rgb[0], rgb[1], rgb[2]
    words = out32.shape[0] > 0
    wpr = (3 * width) >> 2
    for k in range(-1, mcu_rows):
        kk = k + 1
        if kk < mcu_rows:  # transform MCU row k + 1 into its ring slots
            for c in range(ncomp):
                off, v, bc, pr = comp[c, 0], comp[c, 1], comp[c, 2], comp[c, 3]
                ring = ring0 if c == 0 else (ring1 if c == 1 else ring2)
                s0 = (kk % 3) * pr
                idct_islow_plane(coef, nzk, dc, off + kk * v * bc, v, bc, qt[c], ring[s0 : s0 + pr])
        if k < 0:
            continue
        for y in range(k * band, min((k + 1) * band, height)):
            a, b = _src_rows(y, geom[0])
            pr = comp[0, 3]
            _row_int(_ring_row(ring0, pr, a), _ring_row(ring0, pr, max(b, 0)), y, geom[0], width, col, r0)
            if mode != 2:
                a, b = _src_rows(y, geom[1])
                pr = comp[1, 3]
                _row_int(_ring_row(ring1, pr, a), _ring_row(ring1, pr, max(b, 0)), y, geom[1], width, col, r1)
                a, b = _src_rows(y, geom[2])
                pr = comp[2, 3]
                _row_int(_ring_row(ring2, pr, a), _ring_row(ring2, pr, max(b, 0)), y, geom[2], width, col, r2)
            _convert_row(r0, r1, r2, t0, t1, t2, width, mode)
            _pack_row(t0, t1, t2, width, out[y], out32, y * wpr if words else -1)


@nb.njit(cache=True, nogil=True)
def _to_rgb_float(p0, p1, p2, geom, width, height, mode, out):
    """Float twin of ``_to_rgb_exact`` on float32 planes (no rounding, no clipping)."""
    n = 2 * width + 4
    rows = np.empty((3, n), dtype=np.float32)
    rgb = np.empty((3, n), dtype=np.float32)
    col = np.empty(n, dtype=np.float32)
    r0, r1, r2 = rows[0], rows[1], rows[2]
    t0, t1, t2 = rgb[0], rgb[1], rgb[2]
    kr = np.float32(1.402)
    kbg = np.float32(0.34414)
    krg = np.float32(0.71414)
    kb = np.float32(1.772)
    c128 = np.float32(128.0)
    for y in range(height):
        _row_float(p0, y, geom[0], width, col, r0)
        if mode != 2:
            _row_float(p1, y, geom[1], width, col, r1)
            _row_float(p2, y, geom[2], width, col, r2)
        if mode == 0:
            for x in range(width):
                yy = r0[x]
                cb = r1[x] - c128
                cr = r2[x] - c128
                t0[x] = yy + kr * cr
                t1[x] = yy - kbg * cb - krg * cr
                t2[x] = yy + kb * cb
        else:
            src1 = r0 if mode == 2 else r1
            src2 = r0 if mode == 2 else r2
            for x in range(width):
                t0[x] = r0[x]
                t1[x] = src1[x]
                t2[x] = src2[x]
        o = out[y]
        for x in range(width):
            o[x, 0] = t0[x]
            o[x, 1] = t1[x]
            o[x, 2] = t2[x]


def _mode(color: str | None, n: int) -> int:
    if color is None:
        color = "gray" if n == 1 else "ycbcr"
    return {"ycbcr": 0, "rgb": 1, "gray": 2}[color]


def geometry(components: Sequence, width: int, height: int, upsample: str = "fancy") -> np.ndarray:
    """int64 (3, 5): per component (cw, ch, rh, rv, kind): its real extent, the replication factors and the
    filter kind (0 replication, 1 h2v1, 2 h1v2, 3 h2v2 fancy); unused rows zero."""
    hmax = max(c.h for c in components)
    vmax = max(c.v for c in components)
    geom = np.zeros((3, 5), dtype=np.int64)
    for i, c in enumerate(components):
        rh, rv = hmax // c.h, vmax // c.v
        cw = -(-width * c.h // hmax)
        chh = -(-height * c.v // vmax)
        kind = 0
        if upsample == "fancy":
            if rh == 2 and rv == 1 and cw > 2:
                kind = 1
            elif rh == 1 and rv == 2:
                kind = 2
            elif rh == 2 and rv == 2 and cw > 2:
                kind = 3
        geom[i] = (cw, chh, rh, rv, kind)
    return geom


def _rgb_out(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty((height, width, 3), dtype=np.uint8)
    words = out.reshape(-1).view(np.uint32) if width % 4 == 0 else np.empty(0, dtype=np.uint32)
    return out, words


def blocks_to_rgb(coef, nzk, dc, comp_off, comp_bcols, qtables, components, width, height, mcu_rows,
                  upsample="fancy", color=None) -> np.ndarray:  # fmt: skip
    """uint8 (height, width, 3): ``planes_to_rgb(islow planes, ..., clip=True)`` straight from the entropy
    decoder's blocks (``decode_rgb_exact``: one MCU row at a time, no full-size planes). ``comp_off`` /
    ``comp_bcols``: first block and block columns per component; ``qtables`` int64 (ncomp, 64)."""
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample={upsample!r}; allowed: {', '.join(UPSAMPLE_MODES)}")
    n = len(components)
    mode = _mode(color, n)
    geom = geometry(components, width, height, upsample)
    vmax = max(c.v for c in components)
    comp = np.zeros((3, 4), dtype=np.int64)
    rings = []
    for i, c in enumerate(components):
        comp[i] = (comp_off[i], c.v, comp_bcols[i], 8 * c.v)
        rings.append(np.empty((3 * 8 * c.v, 8 * int(comp_bcols[i])), dtype=np.float32))
    while len(rings) < 3:
        rings.append(rings[0])
    qt = np.zeros((3, 64), dtype=np.int64)
    qt[:n] = qtables
    out, words = _rgb_out(width, height)
    r0, r1, r2 = rings
    decode_rgb_exact(
        coef, nzk, dc, comp, qt, geom, width, height, mode, mcu_rows, 8 * vmax, r0, r1, r2, out, words
    )
    return out


def planes_to_rgb(
    planes: Sequence[np.ndarray],
    components: Sequence,
    width: int,
    height: int,
    upsample: str = "fancy",
    clip: bool = False,
    color: str | None = None,
) -> np.ndarray:
    """Upsample the component planes and convert to RGB.

    ``planes``: float32 (rows, cols) per component at component resolution (MCU padding allowed), sample
    units with the level shift applied. ``components``: objects with ``h`` and ``v`` sampling factors.
    ``color``: "ycbcr" (default for 3 planes), "rgb" (no conversion) or "gray" (default for 1 plane).
    Returns float32 (height, width, 3) RGB in 0..255 units, unclipped; with ``clip=True`` uint8 computed
    with libjpeg's integer arithmetic.
    """
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample={upsample!r}; allowed: {', '.join(UPSAMPLE_MODES)}")
    n = len(planes)
    if n not in (1, 3) or len(components) != n:
        raise ValueError(
            f"need 1 or 3 planes with as many components, got {n} planes, {len(components)} components"
        )
    mode = _mode(color, n)
    geom = geometry(components, width, height, upsample)
    ps = []
    for i, p in enumerate(planes):
        if p.shape[0] < geom[i, 1] or p.shape[1] < geom[i, 0]:
            raise ValueError(
                f"plane {i} has shape {p.shape}; component needs at least {tuple(geom[i, 1::-1])}"
            )
        ps.append(np.ascontiguousarray(p, dtype=np.float32))
    while len(ps) < 3:
        ps.append(ps[0])
    if clip:
        out, words = _rgb_out(width, height)
        _to_rgb_exact(ps[0], ps[1], ps[2], geom, width, height, mode, out, words)
    else:
        out = np.empty((height, width, 3), dtype=np.float32)
        _to_rgb_float(ps[0], ps[1], ps[2], geom, width, height, mode, out)
    return out
