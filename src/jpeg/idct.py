"""Dequantisation + inverse DCT of every block into unclipped float32 sample planes (numba).

Two methods:
- ``islow`` (default): the accurate integer Loeffler-Ligtenberg-Moschytz IDCT with libjpeg's constants and
  rounding (13-bit fixed point, 2 extra bits between passes), so clean files give the same samples as
  libjpeg before its range limiting. Written from the algorithm (T.81 A.3.3 / LLM 1989), not from libjpeg's
  code. A block whose dequantised coefficients have an L1 norm <= ``L1_INT32`` (every block of a photo)
  runs in int32, with the 8 columns (pass 1) and the 8 rows (pass 2) as the lanes of one vector loop;
  other blocks (corruption: huge coefficients) run the scalar int64 transform, so nothing can overflow.
  Both give the same integers wherever int32 does not overflow.
- ``float``: the exact separable float IDCT (float64 inside), as the paper's ``cv2.idct`` computes it.

Blocks whose AC coefficients are all zero (``nzk == 0``, most blocks of a photo at <= 1 bpp) take a DC-only
shortcut; columns/rows with zero AC input are short-cut inside the full transform too. Output samples carry
the +128 level shift and are NOT clipped.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_CONST_BITS = 13
_PASS1_BITS = 2


def _fix(x: float) -> int:
    return int(x * (1 << _CONST_BITS) + 0.5)


F_0_298631336 = _fix(0.298631336)
F_0_390180644 = _fix(0.390180644)
F_0_541196100 = _fix(0.541196100)
F_0_765366865 = _fix(0.765366865)
F_0_899976223 = _fix(0.899976223)
F_1_175875602 = _fix(1.175875602)
F_1_501321110 = _fix(1.501321110)
F_1_847759065 = _fix(1.847759065)
F_1_961570560 = _fix(1.961570560)
F_2_053119869 = _fix(2.053119869)
F_2_562915447 = _fix(2.562915447)
F_3_072711026 = _fix(3.072711026)

IDCT_METHODS = ("islow", "float")
_DC_LIMIT = 1 << 20


@nb.njit(inline="always")
def _llm_1d(x0, x1, x2, x3, x4, x5, x6, x7):
    """One 8-point LLM IDCT on scaled inputs; returns the 8 outputs scaled by 2**CONST_BITS (not descaled)."""
    # even part
    z1 = (x2 + x6) * F_0_541196100
    t2 = z1 - x6 * F_1_847759065
    t3 = z1 + x2 * F_0_765366865
    t0 = (x0 + x4) << _CONST_BITS
    t1 = (x0 - x4) << _CONST_BITS
    t10 = t0 + t3
    t13 = t0 - t3
    t11 = t1 + t2
    t12 = t1 - t2
    # odd part
    o0 = x7
    o1 = x5
    o2 = x3
    o3 = x1
    z1 = o0 + o3
    z2 = o1 + o2
    z3 = o0 + o2
    z4 = o1 + o3
    z5 = (z3 + z4) * F_1_175875602
    o0 = o0 * F_0_298631336
    o1 = o1 * F_2_053119869
    o2 = o2 * F_3_072711026
    o3 = o3 * F_1_501321110
    z1 = -z1 * F_0_899976223
    z2 = -z2 * F_2_562915447
    z3 = -z3 * F_1_961570560 + z5
    z4 = -z4 * F_0_390180644 + z5
    o0 += z1 + z3
    o1 += z2 + z4
    o2 += z2 + z3
    o3 += z1 + z4
    return (t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3)


@nb.njit(inline="always")
def _llm_1d_4(x0, x1, x2, x3):
    """``_llm_1d`` for inputs whose last four entries are zero (the products with zero dropped: same
    integers, about half the work)."""
    z1 = x2 * F_0_541196100
    t3 = z1 + x2 * F_0_765366865
    t0 = x0 << _CONST_BITS
    t10 = t0 + t3
    t13 = t0 - t3
    t11 = t0 + z1
    t12 = t0 - z1
    z5 = (x3 + x1) * F_1_175875602
    z1 = -x1 * F_0_899976223
    z2 = -x3 * F_2_562915447
    z3 = -x3 * F_1_961570560 + z5
    z4 = -x1 * F_0_390180644 + z5
    o0 = z1 + z3
    o1 = z2 + z4
    o2 = x3 * F_3_072711026 + z2 + z3
    o3 = x1 * F_1_501321110 + z1 + z4
    return (t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3)


L1_INT32 = 14000
"""Largest L1 norm of a block's dequantised coefficients for the int32 path: the largest intermediate of
the two passes is at most 152197 * L1 + 2**17 + 61214 < 2**31 (bounds from the exact linear forms)."""


@nb.njit(inline="always")
def _llm_1d_i32(x0, x1, x2, x3, x4, x5, x6, x7):
    """``_llm_1d`` in int32 (every step truncated to int32 so the loop vectoriser keeps 32-bit lanes)."""
    i = np.int32
    z1 = i((x2 + x6) * i(F_0_541196100))
    t2 = i(z1 - x6 * i(F_1_847759065))
    t3 = i(z1 + x2 * i(F_0_765366865))
    t0 = i((x0 + x4) << 13)
    t1 = i((x0 - x4) << 13)
    t10 = i(t0 + t3)
    t13 = i(t0 - t3)
    t11 = i(t1 + t2)
    t12 = i(t1 - t2)
    z1 = i(x7 + x1)
    z2 = i(x5 + x3)
    z3 = i(x7 + x3)
    z4 = i(x5 + x1)
    z5 = i((z3 + z4) * i(F_1_175875602))
    o0 = i(x7 * i(F_0_298631336))
    o1 = i(x5 * i(F_2_053119869))
    o2 = i(x3 * i(F_3_072711026))
    o3 = i(x1 * i(F_1_501321110))
    z1 = i(z1 * -i(F_0_899976223))
    z2 = i(z2 * -i(F_2_562915447))
    z3 = i(z5 - z3 * i(F_1_961570560))
    z4 = i(z5 - z4 * i(F_0_390180644))
    o0 = i(o0 + z1 + z3)
    o1 = i(o1 + z2 + z4)
    o2 = i(o2 + z2 + z3)
    o3 = i(o3 + z1 + z4)
    return (i(t10 + o3), i(t11 + o2), i(t12 + o1), i(t13 + o0), i(t13 - o0), i(t12 - o1), i(t11 - o2),
            i(t10 - o3))  # fmt: skip


@nb.njit(inline="always")
def _llm_1d_4_i32(x0, x1, x2, x3):
    """``_llm_1d_4`` in int32."""
    i = np.int32
    z1 = i(x2 * i(F_0_541196100))
    t3 = i(z1 + x2 * i(F_0_765366865))
    t0 = i(x0 << 13)
    t10 = i(t0 + t3)
    t13 = i(t0 - t3)
    t11 = i(t0 + z1)
    t12 = i(t0 - z1)
    z5 = i((x3 + x1) * i(F_1_175875602))
    z1 = i(x1 * -i(F_0_899976223))
    z2 = i(x3 * -i(F_2_562915447))
    z3 = i(z5 - x3 * i(F_1_961570560))
    z4 = i(z5 - x1 * i(F_0_390180644))
    o0 = i(z1 + z3)
    o1 = i(z2 + z4)
    o2 = i(x3 * i(F_3_072711026) + z2 + z3)
    o3 = i(x1 * i(F_1_501321110) + z1 + z4)
    return (i(t10 + o3), i(t11 + o2), i(t12 + o1), i(t13 + o0), i(t13 - o0), i(t12 - o1), i(t11 - o2),
            i(t10 - o3))  # fmt: skip


@nb.njit(inline="always")
def _store1(ws, c, a0, a1, a2, a3, a4, a5, a6, a7):
    """Pass-1 outputs of column ``c``, descaled by CONST_BITS - PASS1_BITS, into ``ws`` (row-major)."""
    i = np.int32
    ws[c] = i(a0 + i(1024)) >> 11
    ws[8 + c] = i(a1 + i(1024)) >> 11
    ws[16 + c] = i(a2 + i(1024)) >> 11
    ws[24 + c] = i(a3 + i(1024)) >> 11
    ws[32 + c] = i(a4 + i(1024)) >> 11
    ws[40 + c] = i(a5 + i(1024)) >> 11
    ws[48 + c] = i(a6 + i(1024)) >> 11
    ws[56 + c] = i(a7 + i(1024)) >> 11


@nb.njit(inline="always")
def _store2(o, r, a0, a1, a2, a3, a4, a5, a6, a7):
    """Pass-2 outputs of row ``r``, descaled by CONST_BITS + PASS1_BITS + 3 and level-shifted, into ``o``."""
    i = np.int32
    w = r * 8
    o[w] = np.float32((i(a0 + i(131072)) >> 18) + 128)
    o[w + 1] = np.float32((i(a1 + i(131072)) >> 18) + 128)
    o[w + 2] = np.float32((i(a2 + i(131072)) >> 18) + 128)
    o[w + 3] = np.float32((i(a3 + i(131072)) >> 18) + 128)
    o[w + 4] = np.float32((i(a4 + i(131072)) >> 18) + 128)
    o[w + 5] = np.float32((i(a5 + i(131072)) >> 18) + 128)
    o[w + 6] = np.float32((i(a6 + i(131072)) >> 18) + 128)
    o[w + 7] = np.float32((i(a7 + i(131072)) >> 18) + 128)


@nb.njit(cache=True, nogil=True)
def idct_islow_plane(coef, nzk, dc, off, brows, bcols, q, out):
    """Blocks ``off .. off + brows*bcols`` (raster order) -> ``out`` float32 (brows*8, bcols*8).

    ``coef`` int16 (nblocks, 64) natural order (its DC entry is ignored: ``dc`` int32 holds the exact
    DPCM-reconstructed value), ``q`` int64 (64,) natural order, ``nzk`` uint8 (nblocks,): last nonzero
    zigzag index, bit 7 set when a coefficient lies outside the top-left 4x4 (else half transforms).
    Blocks above ``L1_INT32`` go to ``_idct_islow_wide`` (int64).
    """
    n8 = q.shape[0] >> 3  # 8, but unknown to the compiler: the lane loops stay loops (vectorised)
    qq = np.empty(64, dtype=np.int32)
    for k in range(64):
        qq[k] = q[k]
    x = np.empty(64, dtype=np.int32)
    ws = np.empty(64, dtype=np.int32)
    o = np.empty(64, dtype=np.float32)
    for by in range(brows):
        for bx in range(bcols):
            bi = off + by * bcols + bx
            y0 = by * 8
            x0 = bx * 8
            dq = max(-_DC_LIMIT, min(_DC_LIMIT, np.int64(dc[bi]))) * q[0]
            if nzk[bi] == 0:
                _flat_block(out, y0, x0, dq)
                continue
            l1 = np.int64(0)
            for k in range(64):
                t = np.int32(np.int32(coef[bi, k]) * qq[k])  # |int16 * uint16| < 2**31
                x[k] = t
                l1 += abs(t)
            l1 += abs(dq) - abs(np.int64(x[0]))
            if l1 > L1_INT32:
                _idct_islow_wide(coef, nzk, dc, bi, 1, 1, q, out[y0 : y0 + 8, x0 : x0 + 8])
                continue
            x[0] = dq
            if nzk[bi] < 128:  # rows and columns 4..7 zero
                for c in range(n8):
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_4_i32(x[c], x[8 + c], x[16 + c], x[24 + c])
                    _store1(ws, c, a0, a1, a2, a3, a4, a5, a6, a7)
                for r in range(n8):
                    w = r * 8
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_4_i32(ws[w], ws[w + 1], ws[w + 2], ws[w + 3])
                    _store2(o, r, a0, a1, a2, a3, a4, a5, a6, a7)
            else:
                for c in range(n8):
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_i32(
                        x[c], x[8 + c], x[16 + c], x[24 + c], x[32 + c], x[40 + c], x[48 + c], x[56 + c]
                    )
                    _store1(ws, c, a0, a1, a2, a3, a4, a5, a6, a7)
                for r in range(n8):
                    w = r * 8
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_i32(
                        ws[w], ws[w + 1], ws[w + 2], ws[w + 3], ws[w + 4], ws[w + 5], ws[w + 6], ws[w + 7]
                    )
                    _store2(o, r, a0, a1, a2, a3, a4, a5, a6, a7)
            for r in range(8):
                for c in range(8):
                    out[y0 + r, x0 + c] = o[r * 8 + c]


@nb.njit(cache=True, nogil=True, inline="always")
def _flat_block(out, y0, x0, dq):
    """A DC-only block (dequantised DC ``dq``) -> its flat 8x8 samples at (y0, x0) of ``out`` (float32)."""
    v = np.float32(((dq + 4) >> 3) + 128)
    for r in range(8):
        for c in range(8):
            out[y0 + r, x0 + c] = v


@nb.njit(cache=True, nogil=True)
def _idct_islow_wide(coef, nzk, dc, off, brows, bcols, q, out):
    """``idct_islow_plane`` in scalar int64 arithmetic (any coefficients; the reference the int32 path
    equals). Blocks ``off .. off + brows*bcols`` (raster order) -> ``out`` float32 (brows*8, bcols*8).

    ``coef`` int16 (nblocks, 64) natural order (its DC entry is ignored: ``dc`` int32 holds the exact
    DPCM-reconstructed value), ``q`` int64 (64,) natural order, ``nzk`` uint8 (nblocks,): last nonzero
    zigzag index, bit 7 set when a coefficient lies outside the top-left 4x4 (else half transforms).
    """
    ws = np.zeros(64, dtype=np.int64)
    d1 = _CONST_BITS - _PASS1_BITS
    r1 = np.int64(1) << (d1 - 1)
    d2 = _CONST_BITS + _PASS1_BITS + 3
    r2 = np.int64(1) << (d2 - 1)
    for by in range(brows):
        for bx in range(bcols):
            bi = off + by * bcols + bx
            y0 = by * 8
            x0 = bx * 8
            # DC clamped to +-2**20 quantiser steps (far beyond any 8-bit sample) so int64 cannot overflow
            dq = max(-_DC_LIMIT, min(_DC_LIMIT, np.int64(dc[bi]))) * q[0]
            if nzk[bi] == 0:
                _flat_block(out, y0, x0, dq)
                continue
            # pass 1: columns -> ws (scaled by 2**PASS1_BITS)
            small = nzk[bi] < 128  # all coefficients in the top-left 4x4: columns 4..7 and rows 4..7 zero
            for c in range(4 if small else 8):
                i0 = dq if c == 0 else np.int64(coef[bi, c]) * q[c]
                i1 = np.int64(coef[bi, 8 + c]) * q[8 + c]
                i2 = np.int64(coef[bi, 16 + c]) * q[16 + c]
                i3 = np.int64(coef[bi, 24 + c]) * q[24 + c]
                if small:
                    if i1 == 0 and i2 == 0 and i3 == 0:
                        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = i0 << _CONST_BITS
                    else:
                        a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_4(i0, i1, i2, i3)
                else:
                    i4 = np.int64(coef[bi, 32 + c]) * q[32 + c]
                    i5 = np.int64(coef[bi, 40 + c]) * q[40 + c]
                    i6 = np.int64(coef[bi, 48 + c]) * q[48 + c]
                    i7 = np.int64(coef[bi, 56 + c]) * q[56 + c]
                    if i1 == 0 and i2 == 0 and i3 == 0 and i4 == 0 and i5 == 0 and i6 == 0 and i7 == 0:
                        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = i0 << _CONST_BITS
                    else:
                        a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d(i0, i1, i2, i3, i4, i5, i6, i7)
                ws[c] = (a0 + r1) >> d1
                ws[8 + c] = (a1 + r1) >> d1
                ws[16 + c] = (a2 + r1) >> d1
                ws[24 + c] = (a3 + r1) >> d1
                ws[32 + c] = (a4 + r1) >> d1
                ws[40 + c] = (a5 + r1) >> d1
                ws[48 + c] = (a6 + r1) >> d1
                ws[56 + c] = (a7 + r1) >> d1
            if small:
                for r in range(8):
                    for c in range(4, 8):
                        ws[r * 8 + c] = 0
            # pass 2: rows -> samples
            for r in range(8):
                w = r * 8
                yy = y0 + r
                if small:
                    if ws[w + 1] == 0 and ws[w + 2] == 0 and ws[w + 3] == 0:
                        v = np.float32(((ws[w] + 16) >> 5) + 128)
                        for c in range(8):
                            out[yy, x0 + c] = v
                        continue
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d_4(ws[w], ws[w + 1], ws[w + 2], ws[w + 3])
                else:
                    if (ws[w + 1] == 0 and ws[w + 2] == 0 and ws[w + 3] == 0 and ws[w + 4] == 0
                            and ws[w + 5] == 0 and ws[w + 6] == 0 and ws[w + 7] == 0):  # fmt: skip
                        v = np.float32(((ws[w] + 16) >> 5) + 128)
                        for c in range(8):
                            out[yy, x0 + c] = v
                        continue
                    a0, a1, a2, a3, a4, a5, a6, a7 = _llm_1d(
                        ws[w], ws[w + 1], ws[w + 2], ws[w + 3], ws[w + 4], ws[w + 5], ws[w + 6], ws[w + 7]
                    )
                out[yy, x0] = np.float32(((a0 + r2) >> d2) + 128)
                out[yy, x0 + 1] = np.float32(((a1 + r2) >> d2) + 128)
                out[yy, x0 + 2] = np.float32(((a2 + r2) >> d2) + 128)
                out[yy, x0 + 3] = np.float32(((a3 + r2) >> d2) + 128)
                out[yy, x0 + 4] = np.float32(((a4 + r2) >> d2) + 128)
                out[yy, x0 + 5] = np.float32(((a5 + r2) >> d2) + 128)
                out[yy, x0 + 6] = np.float32(((a6 + r2) >> d2) + 128)
                out[yy, x0 + 7] = np.float32(((a7 + r2) >> d2) + 128)


def _cos_table() -> np.ndarray:
    """M[x, u] = C(u)/2 * cos((2x+1) u pi / 16), C(0) = 1/sqrt(2): samples = M @ F @ M.T (orthonormal)."""
    m = np.zeros((8, 8))
    for x in range(8):
        for u in range(8):
            cu = 1 / math.sqrt(2) if u == 0 else 1.0
            m[x, u] = cu / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
    return m


COS = _cos_table()


@nb.njit(cache=True, nogil=True)
def idct_float_plane(coef, nzk, dc, off, brows, bcols, q, cos, out):
    """As ``idct_islow_plane`` with the exact float IDCT (``cos`` = ``COS``); no rounding."""
    f = np.empty((8, 8), dtype=np.float64)
    t = np.empty((8, 8), dtype=np.float64)
    for by in range(brows):
        for bx in range(bcols):
            bi = off + by * bcols + bx
            y0 = by * 8
            x0 = bx * 8
            d = np.float64(dc[bi]) * q[0]
            if nzk[bi] == 0:
                v = np.float32(d / 8.0 + 128.0)
                for r in range(8):
                    for c in range(8):
                        out[y0 + r, x0 + c] = v
                continue
            for i in range(64):
                f[i // 8, i % 8] = np.float64(coef[bi, i]) * q[i]
            f[0, 0] = d
            # t = F @ M.T  (rows of F transformed), then out = M @ t
            for u in range(8):
                zero = True
                for v in range(8):
                    if f[u, v] != 0.0:
                        zero = False
                        break
                for x in range(8):
                    s = 0.0
                    if not zero:
                        for v in range(8):
                            s += f[u, v] * cos[x, v]
                    t[u, x] = s
            for y in range(8):
                for x in range(8):
                    s = 0.0
                    for u in range(8):
                        s += cos[y, u] * t[u, x]
                    out[y0 + y, x0 + x] = np.float32(s + 128.0)
