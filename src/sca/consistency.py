"""2-D consistency of a segmentation on the corrected canvas: hidden offset-only changes inside a segment.

A hit can change a DC predictor without garbling a whole MCU or shifting the stream (a flipped bit in a DC
difference code): the content from decoded MCU p on carries a few more levels. Online, a change of a few
levels in textured content is invisible; left in, it biases every later offset (the joint refit chains
the segments through their borders) by the same few levels over the rest of the image.

On the corrected canvas it has a signature no content produces by itself: the vertical jump between each
MCU and the restored MCU above, taken as the median over the edge pixels (a DC offset moves the whole edge
uniformly; an image edge has structure), equals the change for exactly one MCU row's worth of positions
[p, p + cols) of the segment and is zero before and after (from p + cols on the MCU above carries the change
too; a change in a segment's last row shows as the part of the box before the segment's end, as the next
segment's offsets were fitted under it). A box filter of that length over the jump sequence finds it; it
is accepted when the box mean stands
out from the segment's own jump noise (robust sigma) by ``z_min`` standard errors, the boxes one row
before and after do not, and the change is at least one DC step. The segment is then split at p (same
shift, the offset changed by the box median); the refit that follows estimates the new pair exactly.
Cost: O(N) per pass (cumulative sums), bounded by ``max_splits`` per pass.
"""

from __future__ import annotations

import numba
import numpy as np

from src.sca.segment import comp_bounds, pairwise_sum, small_median
from src.sca.tiles import McuFeatures

DEBUG = False


@numba.njit(cache=True, nogil=True)
def _row_medians_kernel(x, bounds, out):
    scratch = np.empty(x.shape[1])
    for r in range(x.shape[0]):
        for c in range(bounds.size - 1):
            out[r, c] = small_median(x[r, bounds[c] : bounds[c + 1]], scratch)


def row_medians(x: np.ndarray, comp: np.ndarray, ncomp: int) -> np.ndarray:
    """float64 (K, ncomp): the median of each row of ``x`` (K, E) over the columns of each component
    (``comp``: int64 (E,) component of each column, grouped)."""
    out = np.empty((x.shape[0], ncomp))
    if x.shape[0]:
        _row_medians_kernel(np.ascontiguousarray(x, np.float64), comp_bounds(comp, ncomp), out)
    return out


def vertical_jumps(f: McuFeatures, src: np.ndarray, off_at: np.ndarray, cols: int) -> np.ndarray:
    """float64 (N, ncomp): median over the edge pixels of each output MCU's top edge minus the bottom edge
    of the output MCU above, both offset-corrected, minus the mean slope on both sides (NaN where either is
    not shown or in the first MCU row)."""
    n = src.size
    ncomp = off_at.shape[1]
    out = np.full((n, ncomp), np.nan)
    j = np.arange(cols, n)
    ok = (src[j] >= 0) & (src[j - cols] >= 0)
    j = j[ok]
    med = np.empty((j.size, ncomp))
    if j.size:
        _jump_medians_kernel(
            f.top, f.top2, f.bot, f.bot2, src[j - cols], src[j], comp_bounds(f.e_comp, ncomp), med
        )
    out[j] = med - (off_at[j] - off_at[j - cols])
    return out


@numba.njit(cache=True, nogil=True)
def _jump_medians_kernel(top, top2, bot, bot2, a, b, bounds, out):
    """out[k, c]: the median over component c's edge pixels of :func:`_raw_jumps` from decoded MCU a[k]
    down to b[k] (``row_medians(_raw_jumps(f, a, b))`` without the (K, E) temporaries)."""
    row = np.empty(top.shape[1])
    scratch = np.empty(top.shape[1])
    for k in range(a.shape[0]):
        _raw_jump_row(top, top2, bot, bot2, a[k], b[k], row)
        _comp_medians(row, bounds, scratch, out[k])


@numba.njit(cache=True, nogil=True, inline="always")
def _comp_medians(row, bounds, scratch, out):
    """out[c]: the median of ``row`` over component c's columns (``bounds``)."""
    for c in range(bounds.shape[0] - 1):
        out[c] = small_median(row[bounds[c] : bounds[c + 1]], scratch)


@numba.njit(cache=True, nogil=True, inline="always")
def _row_cost(row, level, bounds, tex, w, tfl, tauk, trunc, wsum):
    """sum_c w[c] * min(mean over component c's columns of |row - level[c]| / (tfl[c] + tauk[c] * tex[c]),
    trunc) / wsum: one MCU edge's truncated, texture-normalised jump cost (summed in column order)."""
    num = 0.0
    for c in range(w.shape[0]):
        lo, hi = bounds[c], bounds[c + 1]
        acc = 0.0
        for x in range(lo, hi):
            acc += abs(row[x] - level[c])
        u = acc / (hi - lo) / (tfl[c] + tauk[c] * tex[c])
        num += w[c] * min(u, trunc)
    return num / wsum


def _box(values: np.ndarray, valid: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums and counts of ``values`` over every window [p, p + length) (0 where not ``valid``)."""
    cs = np.concatenate([[0.0], np.cumsum(np.where(valid, values, 0.0))])
    cn = np.concatenate([[0], np.cumsum(valid.astype(np.int64))])
    return cs[length:] - cs[:-length], cn[length:] - cn[:-length]


def find_offset_steps(
    f: McuFeatures,
    segs: np.ndarray,
    offs: np.ndarray,
    src: np.ndarray,
    seg_of: np.ndarray,
    cols: int,
    steps: np.ndarray,
    z_min: float = 8.0,
    max_splits: int = 64,
) -> list[tuple[int, int, np.ndarray]]:
    """Hidden offset-only changes: (segment index, decoded MCU where the change starts, change float64
    (ncomp,) in sample units, whole DC steps) for each segment that shows one (see the module doc).

    segs: int64 (S, 3) [start, end, shift] decoded; offs (S, ncomp); src/seg_of: the placement (N,)."""
    n = src.size
    ncomp = offs.shape[1]
    off_at = np.zeros((n, ncomp))
    shown = seg_of >= 0
    off_at[shown] = offs[seg_of[shown]]
    d = vertical_jumps(f, src, off_at, cols)
    found = []
    for k, (start, end, shift) in enumerate(segs):
        j0, j1 = max(int(start - shift), 0), min(int(end - shift), n)
        if j1 - j0 < 2 * cols:
            continue
        dk = d[j0:j1]
        valid_all = np.isfinite(dk) & (seg_of[j0:j1] == k)[:, None]
        best = None
        for c in range(ncomp):
            valid = valid_all[:, c]
            if valid.sum() < cols:
                continue
            v = dk[valid, c]
            med = np.median(v)
            sigma = max(1.4826 * np.median(np.abs(v - med)), 0.5 * steps[c])
            clipped = np.clip(np.where(valid, dk[:, c], 0.0), -4.0 * sigma, 4.0 * sigma)
            sums, cnt = _box(clipped, valid, cols)
            z = sums / (sigma * np.sqrt(np.maximum(cnt, 1)))
            z[cnt < cols // 4] = 0.0
            # p + cols must be past the segment's first row (whose references are other segments)
            p_lo = cols + 1
            if z.size <= p_lo:
                continue
            p = p_lo + int(np.argmax(np.abs(z[p_lo:])))
            zp = z[p]
            if abs(zp) < z_min:
                continue
            # a box, not a step or a band: the boxes one row before and after are quiet
            side = [z[q] for q in (p - cols, p + cols) if 0 <= q < z.size]
            if any(abs(s) > 0.5 * abs(zp) for s in side):
                continue
            if best is None or abs(zp) > best[0]:
                best = (abs(zp), p)
        if best is None:
            continue
        p = best[1]
        box = dk[p : p + cols]
        delta = np.zeros(ncomp)
        for c in range(ncomp):
            ok = np.isfinite(box[:, c])
            if ok.any():
                delta[c] = np.round(np.median(box[ok, c]) / steps[c]) * steps[c]
        if not delta.any():
            continue
        found.append((k, int(j0 + p + shift), delta))
        if len(found) >= max_splits:
            break
    return found


def split_segments(segs: np.ndarray, offs: np.ndarray, splits) -> tuple[np.ndarray, np.ndarray]:
    """Insert the splits of :func:`find_offset_steps` (segment k split at decoded MCU i, the tail's offsets
    changed by delta)."""
    by_seg = {k: (i, dl) for k, i, dl in splits}
    out_s, out_o = [], []
    for k in range(len(segs)):
        a, b, s = (int(v) for v in segs[k])
        if k in by_seg and a < by_seg[k][0] < b:
            i, dl = by_seg[k]
            out_s += [[a, i, s], [i, b, s]]
            out_o += [offs[k], offs[k] + dl]
        else:
            out_s.append([a, b, s])
            out_o.append(offs[k])
    return np.asarray(out_s, np.int64).reshape(-1, 3), np.asarray(out_o, offs.dtype).reshape(
        -1, offs.shape[1]
    )


def _row_junctions(f: McuFeatures, a: np.ndarray, b: np.ndarray, w, tfl, tauk, trunc) -> np.ndarray:
    """float64 (K,): truncated, texture-normalised mean |left column of decoded MCUs ``b`` - right column
    of decoded MCUs ``a``| (both extrapolated by half the slope at the edge, no offsets: the MCUs of one
    segment), weighted over components by ``w``."""
    num = np.zeros(a.size)
    for c in range(w.size):
        sel = f.l_comp == c
        xl = 1.5 * f.left[b][:, sel] - 0.5 * f.left2[b][:, sel]
        xr = 1.5 * f.right[a][:, sel] - 0.5 * f.right2[a][:, sel]
        u = np.abs(xl - xr).mean(axis=1) / (tfl[c] + tauk[c] * f.tex_right[a, c])
        num += w[c] * np.minimum(u, trunc)
    return num / w.sum()


def _vertical_cost(f: McuFeatures, a, oa, b, ob, w, tfl, tauk, trunc) -> np.ndarray:
    """float64 (K,): truncated, texture-normalised mean |jump| between the bottom edges of decoded MCUs
    ``a`` (offsets ``oa``, (K, ncomp)) and the top edges of decoded MCUs ``b`` below them (``ob``),
    weighted over components by ``w``."""
    ncomp = oa.shape[1]
    num = np.zeros(a.size)
    for c in range(ncomp):
        sel = f.e_comp == c
        top, top2 = f.top[b][:, sel], f.top2[b][:, sel]
        bot, bot2 = f.bot[a][:, sel], f.bot2[a][:, sel]
        jump = (top - ob[:, c : c + 1]) - (bot - oa[:, c : c + 1]) - 0.5 * ((bot - bot2) + (top2 - top))
        u = np.abs(jump).mean(axis=1) / (tfl[c] + tauk[c] * f.tex_bot[a, c])
        num += w[c] * np.minimum(u, trunc)
    return num / w.sum()


def _raw_jumps(f: McuFeatures, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 (K, E): slope-corrected jump per edge pixel from the bottom edge of decoded MCUs ``a`` to the
    top edge of decoded MCUs ``b`` (raw decoded values, no offsets)."""
    top, top2, bot, bot2 = f.top[b], f.top2[b], f.bot[a], f.bot2[a]
    return (top - bot) - 0.5 * ((bot - bot2) + (top2 - top)).astype(np.float64)


@numba.njit(cache=True, nogil=True)
def _jump_cost_kernel(jump, level, bounds, tex, w, tfl, tauk, trunc, out):
    """out[k] = sum_c w[c] * min(mean_x |jump[k, x] - level[k, c]| / (tfl[c] + tauk[c] * tex[k, c]), trunc)
    / sum(w), the mean over the columns x of component c (``bounds``) summed in order."""
    wsum = pairwise_sum(w)
    for k in range(jump.shape[0]):
        out[k] = _row_cost(jump[k], level[k], bounds, tex[k], w, tfl, tauk, trunc, wsum)


def _jump_cost(jump: np.ndarray, level: np.ndarray, f: McuFeatures, a, w, tfl, tauk, trunc) -> np.ndarray:
    """float64 (K,): truncated, texture-normalised mean |jump - level| (level (K, ncomp) or (ncomp,))
    over the edge pixels of each component, weighted over components by ``w`` (jump: (K, E), the
    components' columns grouped as in ``f.e_comp``; the texture is that of the bottom edge of ``a``)."""
    k = jump.shape[0]
    level = np.ascontiguousarray(np.broadcast_to(level, (k, w.size)), np.float64)
    out = np.empty(k)
    if k:
        tex = np.ascontiguousarray(f.tex_bot[a], np.float64)
        _jump_cost_kernel(
            np.ascontiguousarray(jump, np.float64), level, comp_bounds(f.e_comp, w.size), tex,
            np.asarray(w, np.float64), np.asarray(tfl, np.float64), np.asarray(tauk, np.float64),
            float(trunc), out,
        )  # fmt: skip
    return out


def refine_first_row(
    f: McuFeatures,
    segs: np.ndarray,
    offs: np.ndarray,
    garb: np.ndarray,
    src: np.ndarray,
    seg_of: np.ndarray,
    cols: int,
    steps: np.ndarray,
    w: np.ndarray,
    tfl: np.ndarray,
    tauk: np.ndarray,
    trunc: float,
    hole_cost: float,
    max_garbage: int,
):
    """Re-place the break of a hit in the first MCU row from below: where the vertical jump profile changes.

    Online, a first-row MCU can only be compared with its left neighbour and look-ahead probes, so a hit
    there lands wherever a spurious search fired, and the wrong band copies itself down. With the hit in
    row 0 at output e (h outputs lost or garbled) and the content after it shifted by s, row 1 is decoded
    MCUs j + cols + s. The jump from decoded MCU j (j < e, the first segment: offset 0) down to it is the
    new offset o plus content, the same for every such column; the jump from decoded j + s (j >= e + h)
    down to it is content only (both carry o). So for each candidate shift (those of the long segments that
    start in the first two rows, where the online pass put the hit) the break (e, h) minimising
    sum_{j<e} cost(jump_j - o(e)) + sum_{j>=e+h} cost(jump'_j) + hole_cost * h, with o(e) the median jump
    of the columns before e, is found; it replaces the current first row (segments before the candidate's
    are dropped, the candidate starts at decoded e + h + s with offsets o(e)) when it is cheaper than the
    current first row under the same measure (the current offsets). Nothing here uses the offsets the
    online pass estimated after the hit (they were fitted on the misplaced break). Returns (segs, offs,
    garb), unchanged when nothing is better.
    """
    n = src.size
    if len(segs) < 2 or n < 2 * cols or segs[0, 0] != 0 or segs[0, 2] != 0 or np.any(offs[0] != 0):
        return segs, offs, garb
    j = np.arange(cols)
    ncomp = offs.shape[1]
    # the current first row against what is shown under it
    b = src[j + cols]
    ref_ok = b >= 0
    b = np.maximum(b, 0)
    shown = src[j] >= 0
    a = np.maximum(src[j], 0)
    lvl = (offs[np.maximum(seg_of[j + cols], 0)] - offs[np.maximum(seg_of[j], 0)]).astype(np.float64)
    cost = _jump_cost(_raw_jumps(f, a, b), lvl, f, a, w, tfl, tauk, trunc)
    cur = np.where(shown, np.where(ref_ok, cost, 0.0), hole_cost)
    # ... and along the row, at half weight (a left/right term: noisier than the vertical profile), the
    # junctions between consecutive decoded MCUs of one segment: a hit inside a segment shows there even
    # where row 1 holds no reference (a garbage run a probe made), and a candidate pays its own
    inside = shown[1:] & shown[:-1] & (seg_of[j[1:]] == seg_of[j[:-1]]) & (src[j[1:]] == src[j[:-1]] + 1)
    h_cur = _row_junctions(f, a[:-1][inside], a[1:][inside], w, tfl, tauk, trunc).sum()
    h_old = np.concatenate([[0.0, 0.0], np.cumsum(_row_junctions(f, j[:-1], j[1:], w, tfl, tauk, trunc))])
    best = (float(cur.sum() + 0.5 * h_cur) - 1e-9, -1, -1, -1, None)
    tried = set()
    for k in range(1, len(segs)):
        if segs[k, 0] - segs[k, 2] >= 2 * cols:
            break
        s_k = int(segs[k, 2])
        if segs[k, 1] - segs[k, 0] < cols or s_k in tried:
            continue
        tried.add(s_k)
        b_k = j + cols + s_k
        rk_ok = (b_k >= 0) & (b_k < n)
        b_k = np.clip(b_k, 0, n - 1)
        jump_old = _raw_jumps(f, j, b_k)
        a_new = np.clip(j + s_k, 0, n - 1)
        r_new = _jump_cost(_raw_jumps(f, a_new, b_k), np.zeros(ncomp), f, a_new, w, tfl, tauk, trunc)
        r_new = np.where(rk_ok & (j + s_k >= 0), r_new, trunc)
        c_new = np.concatenate([[0.0], np.cumsum(r_new)])
        # junctions inside the new segment: outputs j - 1, j (decoded j - 1 + s_k, j + s_k), j >= 1
        d_lo = np.clip(j[:-1] + s_k, 0, n - 1)
        h_new = np.where(j[:-1] + s_k >= 0, _row_junctions(f, d_lo, d_lo + 1, w, tfl, tauk, trunc), 0.0)
        h_new = np.concatenate([[0.0, 0.0], np.cumsum(h_new)])  # h_new[q]: junctions of outputs 1 .. q - 1
        # per-column offset estimate of the old part: median jump per component
        med = row_medians(jump_old, f.e_comp, ncomp)
        for e in range(1, cols + 1):
            o_e = np.round(np.median(med[:e], axis=0) / steps) * steps
            c_old = float(_jump_cost(jump_old[:e], o_e, f, j[:e], w, tfl, tauk, trunc).sum())
            for h in range(max(0, -s_k), min(max_garbage, cols - e) + 1):
                if e + h + s_k < 1:
                    continue
                total = c_old + (c_new[cols] - c_new[e + h]) + hole_cost * h
                total += 0.5 * (h_old[e] + h_new[cols] - h_new[min(e + h + 1, cols)])
                if total < best[0]:
                    best = (total, e, h, k, o_e)
    if best[1] < 0:
        return segs, offs, garb
    _, e, h, k, o_e = best
    s_k = int(segs[k, 2])
    a0 = e + h + s_k  # decoded start of the new segment
    if a0 > segs[k, 1] - 1:
        return segs, offs, garb
    new_s = np.asarray([[0, e, 0], [a0, int(segs[k, 1]), s_k]], np.int64)
    new_o = np.asarray([offs[0], o_e], offs.dtype)
    segs2 = np.concatenate([new_s, segs[k + 1 :]])
    offs2 = np.concatenate([new_o, offs[k + 1 :]])
    g = garb.reshape(-1, 2)
    g = g[g[:, 0] >= segs[k, 1]]
    if a0 > e:
        g = np.concatenate([np.asarray([[e, a0]], np.int64), g])
    return segs2, offs2, g


@numba.njit(cache=True, nogil=True)
def _raw_jump_row(top, top2, bot, bot2, a, b, out):
    """One row of :func:`_raw_jumps` (the same float32 / float64 steps)."""
    for x in range(out.shape[0]):
        d1 = top[b, x] - bot[a, x]
        d2 = (bot[a, x] - bot2[a, x]) + (top2[b, x] - top[b, x])
        out[x] = np.float64(d1) - 0.5 * np.float64(d2)


@numba.njit(cache=True, nogil=True)
def _model_cost_kernel(top, top2, bot, bot2, tex_bot, bounds, i, s, k, src, seg_of, off_at, cols, steps, w,
                       tfl, tauk, trunc, o):  # fmt: skip
    """:func:`_model_cost`'s numbers in one pass (no temporaries per call): returns the mean cost (inf
    without neighbours) and writes the offsets to ``o``."""
    n = src.shape[0]
    ncomp = w.shape[0]
    m = i.shape[0]
    # the pairs (a above, b below) of the neighbours, above first then below, as in _model_cost
    pa = np.empty(2 * m, np.int64)
    pb = np.empty(2 * m, np.int64)
    pj = np.empty(2 * m, np.int64)  # output position of the neighbour
    nu = 0
    for t in range(m):
        j = i[t] - s
        ja = j - cols
        if 0 <= j < n and ja >= 0 and src[ja] >= 0 and seg_of[ja] != k:
            pa[nu] = src[ja]
            pb[nu] = i[t]
            pj[nu] = ja
            nu += 1
    nd = nu
    for t in range(m):
        j = i[t] - s
        jb = j + cols
        if 0 <= j < n and jb < n and src[jb] >= 0 and seg_of[jb] != k:
            pa[nd] = i[t]
            pb[nd] = src[jb]
            pj[nd] = jb
            nd += 1
    if nd == 0:
        return np.inf
    e = top.shape[1]
    jumps = np.empty((nd, e))
    obs = np.empty((ncomp, nd))
    scratch = np.empty(e)
    med = np.empty(ncomp)
    for r in range(nd):
        _raw_jump_row(top, top2, bot, bot2, pa[r], pb[r], jumps[r])
        _comp_medians(jumps[r], bounds, scratch, med)
        for c in range(ncomp):
            obs[c, r] = med[c] + off_at[pj[r], c] if r < nu else off_at[pj[r], c] - med[c]
    for c in range(ncomp):
        srt = np.sort(obs[c])
        h = nd >> 1
        mid = srt[h] if nd & 1 else (srt[h - 1] + srt[h]) / 2
        o[c] = np.rint(mid / steps[c]) * steps[c]
    wsum = pairwise_sum(w)
    cost = np.empty(nd)
    lvl = np.empty(ncomp)
    for r in range(nd):
        for c in range(ncomp):
            lvl[c] = o[c] - off_at[pj[r], c] if r < nu else off_at[pj[r], c] - o[c]
        cost[r] = _row_cost(jumps[r], lvl, bounds, tex_bot[pa[r]], w, tfl, tauk, trunc, wsum)
    return pairwise_sum(cost) / nd


def _model_cost(f: McuFeatures, i, s, k, src, seg_of, off_at, cols, steps, w, tfl, tauk, trunc):
    """(mean cost, offsets) of decoded MCUs ``i`` of segment k placed with shift ``s`` on the canvas: vertical
    continuity with the shown MCUs of other segments above and below them, the segment's offsets fitted as
    the median of those jumps (whole DC steps); (inf, None) without any such neighbour. One compiled pass
    (tests/test_sca.py checks it against the numpy formulation)."""
    ncomp = off_at.shape[1]
    o = np.empty(ncomp)
    cost = _model_cost_kernel(
        f.top, f.top2, f.bot, f.bot2, f.tex_bot, comp_bounds(f.e_comp, ncomp), np.asarray(i, np.int64),
        int(s), int(k), src, seg_of, np.ascontiguousarray(off_at, np.float64), int(cols),
        np.asarray(steps, np.float64), np.asarray(w, np.float64), np.asarray(tfl, np.float64),
        np.asarray(tauk, np.float64), float(trunc), o,
    )  # fmt: skip
    return (float(cost), o) if np.isfinite(cost) else (np.inf, None)


def revisit_shifts(
    f: McuFeatures,
    segs: np.ndarray,
    offs: np.ndarray,
    n: int,
    cols: int,
    steps: np.ndarray,
    w: np.ndarray,
    tfl: np.ndarray,
    tauk: np.ndarray,
    trunc: float,
    place,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """2-D check of every shift change on the finished canvas: a segment whose shift differs from its
    predecessor's is placed both ways (its own shift, the predecessor's), each scored by the vertical
    continuity with the other segments' MCUs above AND below it (the online pass only saw the rows above,
    so a wrong band could propagate down), on at most its first two MCU rows (bounded per segment). The
    predecessor's shift is kept unless the segment's own explains its neighbours better: in flat content
    any shift fits, and a change without evidence is no change. ``place(segs) -> (src, seg_of)`` is
    called once; each change re-places only the output positions it touches.
    Returns (segs, offs, changed)."""
    segs, offs = segs.copy(), offs.copy()
    src, seg_of = place(segs)
    changed = False
    off_at = np.zeros((n, offs.shape[1]))
    shown = seg_of >= 0
    off_at[shown] = offs[seg_of[shown]]
    for k in range(1, len(segs)):
        s_cur, s_prev = int(segs[k, 2]), int(segs[k - 1, 2])
        if s_cur == s_prev:
            continue
        a, b = int(segs[k, 0]), int(segs[k, 1])
        i = np.arange(a, min(b, a + 2 * cols))
        c_cur, _ = _model_cost(f, i, s_cur, k, src, seg_of, off_at, cols, steps, w, tfl, tauk, trunc)
        c_prev, o_prev = _model_cost(f, i, s_prev, k, src, seg_of, off_at, cols, steps, w, tfl, tauk, trunc)
        if o_prev is not None and c_prev <= c_cur:
            segs[k, 2] = s_prev
            offs[k] = o_prev
            # re-place the output positions the segment left or took (later segments win, as in place)
            lo = max(min(a - s_cur, a - s_prev), 0)
            hi = min(max(b - s_cur, b - s_prev), n)
            src[lo:hi] = -1
            seg_of[lo:hi] = -1
            o_lo, o_hi = segs[:, 0] - segs[:, 2], segs[:, 1] - segs[:, 2]
            for m in np.flatnonzero((o_lo < hi) & (o_hi > lo)):
                j0, j1 = max(int(o_lo[m]), lo), min(int(o_hi[m]), hi)
                src[j0:j1] = np.arange(j0, j1) + segs[m, 2]
                seg_of[j0:j1] = m
                off_at[j0:j1] = offs[m]
            changed = True
    return segs, offs, changed


def _tail_seam_cost(f: McuFeatures, segs, offs, seg_at, k, d, src, seg_of, off_at, cols, steps, w, tfl, tauk,
                   trunc) -> tuple[float, int]:  # fmt: skip
    """(mean cost, pairs) of the seam above the tail of segments k, k+1, ... moved by d MCUs: the decoded MCUs
    of one stream row from segment k's start (whichever tail segment holds each, at its shift + d) against
    the shown MCUs of earlier segments above them; the tail's offsets change by one common amount (the
    median of the pairs' jumps, whole DC steps). (inf, 0) without such pairs."""
    n = src.size
    a = int(segs[k, 0])
    i = np.arange(a, min(a + cols, n))
    m = seg_at[i]
    i, m = i[m >= k], m[m >= k]
    j_up = i - (segs[m, 2] + d) - cols
    ok = (j_up >= 0) & (j_up < n)
    i, m, j_up = i[ok], m[ok], j_up[ok]
    ok = (seg_of[j_up] >= 0) & (seg_of[j_up] < k)
    i, m, j_up = i[ok], m[ok], j_up[ok]
    if i.size == 0:
        return np.inf, 0
    up = src[j_up]
    jump = _raw_jumps(f, up, i)
    rel = offs[m].astype(np.float64) - off_at[j_up]  # expected jump before the common change
    ncomp = offs.shape[1]
    delta = np.median(row_medians(jump, f.e_comp, ncomp) - rel, axis=0)
    delta = np.round(delta / steps) * steps
    cost = _jump_cost(jump, rel + delta, f, up, w, tfl, tauk, trunc)
    return float(cost.mean()), int(i.size)


def repair_final_shift(
    f: McuFeatures,
    segs: np.ndarray,
    offs: np.ndarray,
    n: int,
    cols: int,
    steps: np.ndarray,
    w: np.ndarray,
    tfl: np.ndarray,
    tauk: np.ndarray,
    trunc: float,
    target: int,
    place,
    max_moves: int = 4,
    max_step: int = 8,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Bring the segmentation's final shift to the one the data's end shows (``target``: minus the MCUs
    the decoder found no data for), by moving a whole tail of segments.

    Online, each segment's shift is found against the restored rows above it, so a shift missed by d at
    one break (a hit at a row wrap, in periodic or flat content) is inherited by every later segment:
    the rest of the image is shown d MCUs off, each row consistent with the wrong one above. Such an
    error changes only one seam: moving segments k, k+1, ... by d together leaves every pair among them
    as it is and re-places the stream row after segment k's start under the earlier segments. When the
    final shift misses ``target``, every break k and every move d between 0 and the miss (at most
    ``max_step`` MCUs) is scored by the vertical continuity of that row with the shown MCUs of the earlier
    segments above it (:func:`_tail_seam_cost`: a row, whichever tail segments hold it, so that a short
    spurious segment at the seam does not decide alone), and the move that gains most in total (mean cost
    difference times the pairs scored) is applied, if it gains; up to ``max_moves`` moves while the miss
    remains. A miss the seams give no evidence for is left as it is.
    ``place(segs) -> (src, seg_of)``. Returns (segs, offs, changed); offsets are left to the refit."""
    segs, offs = segs.copy(), offs.copy()
    changed = False
    ncomp = offs.shape[1]
    for _ in range(max_moves):
        miss = int(target) - int(segs[-1, 2])
        if miss == 0 or len(segs) < 2:
            break
        sign = 1 if miss > 0 else -1
        moves = range(sign, sign * (min(abs(miss), max_step) + 1), sign)
        src, seg_of = place(segs)
        off_at = np.zeros((n, ncomp))
        shown = seg_of >= 0
        off_at[shown] = offs[seg_of[shown]]
        seg_at = np.full(n, -1, np.int64)  # segment of each decoded MCU
        for k in range(len(segs)):
            seg_at[int(segs[k, 0]) : int(segs[k, 1])] = k
        best_gain, best = 0.0, None
        args = (src, seg_of, off_at, cols, steps, w, tfl, tauk, trunc)
        for k in range(1, len(segs)):
            c0, k0 = _tail_seam_cost(f, segs, offs, seg_at, k, 0, *args)
            if k0 < 4:
                continue
            for d in moves:
                c1, k1 = _tail_seam_cost(f, segs, offs, seg_at, k, d, *args)
                gain = (c0 - c1) * min(k0, k1)
                if k1 >= 4 and gain > best_gain:
                    best_gain, best = gain, (k, d)
        if best is None:
            break
        k, d = best
        segs[k:, 2] += d
        changed = True
    return segs, offs, changed
