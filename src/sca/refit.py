"""Second pass: place the segments, refit their offsets on their whole extent, and judge garbage MCUs.

Offsets are solved jointly for all segments (per component): every pair of segments that touch
(vertically or horizontally adjacent output MCUs) gives "o_b - o_a = robust mean of the edge jumps",
snapped to the DC lattice (offset differences are whole DC steps too, so a chain of segments stays
exact); the thumbnail (if any) gives "o_k = weighted median of block-mean differences"; the first
segment (before any error) is pinned to 0; without a thumbnail, offsets that push a segment outside
the legal sample range are clamped (not those of a segment whose block means span more than that range:
it holds MCUs of more than one offset, and its bound would override the exact border equations). A
small weighted least squares with iterative reweighting solves it; the results snap to the DC lattice
(multiples of q0 / 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from src.sca.segment import comp_bounds, comp_vector
from src.sca.tiles import McuFeatures


@dataclass(frozen=True)
class RefitParams:
    """Tunables of the refit and garbage passes."""

    anchor_weight: float = 0.5  # weight of one thumbnail MCU against one adjacent MCU pair (refit)
    prior_weight: float = 1e-3  # weak pull to the online estimate (keeps isolated segments defined)
    huber: float = 4.0  # IRLS scale of pair residuals, sample units
    legal_margin: float = 24.0  # tolerated excursion outside 0..255 of block means (no thumbnail)
    # mean thumbnail residual above which an MCU is garbage (with a thumbnail); None: only next to a
    # break (garbage_thumb_near): a small sharp detail (a star) is far from the 160-px thumbnail too
    garbage_thumb: float | None = None
    garbage_thumb_near: float = 2.0  # ... max over blocks, next to a break
    # continuity residual (best side, worst component) above which an MCU is garbage without a thumbnail;
    # None: only next to a break (garbage_cont_near), since a lone detail (a star, a highlight) is
    # discontinuous on all sides too and a clean decode must come back unchanged
    garbage_cont: float | None = None
    garbage_cont_near: float = 2.0  # ... next to a break
    min_segment: int = 6  # shorter segments between two breaks are dropped as garbage
    max_detour: int = 64  # a shorter segment between two with the same model is merged into them
    merge_steps: float = 2.0  # adjacent segments with one shift and offsets this close (DC steps) merge
    near_break: int = 2  # decoded MCUs on each side of a garbage run that count as "next to a break"
    fill_gain: float = 0.5  # share of the neighbours' correction carried into a thumbnail-filled hole
    fill_clamp: float = 16.0  # ... at most this much (sample units)
    max_extend: int | None = None  # garbage-run MCUs tentatively given back to each neighbouring
    # segment for judging; None: 8 with a thumbnail (its judge is reliable), 0 without
    tau_floor: tuple[float, ...] = (2.5, 1.5, 1.5)
    tau_k: tuple[float, ...] = (1.0, 2.0, 2.0)
    thumb_floor: tuple[float, ...] = (4.0, 3.0, 3.0)
    thumb_k: float = 0.5
    comp_weight: tuple[float, ...] = (1.0, 0.5, 0.5)
    truncate: float = 6.0


def place_segments(segments: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Output-position maps from segments (rows [start, end, shift]); later segments overwrite earlier ones.

    Returns (src int64 (N,) decoded MCU at each output position or -1, seg int64 (N,) segment index or -1).
    """
    src = np.full(n, -1, np.int64)
    seg = np.full(n, -1, np.int64)
    for k, (start, end, shift) in enumerate(segments):
        i = np.arange(start, end, dtype=np.int64)
        j = i - shift
        ok = (j >= 0) & (j < n)
        src[j[ok]] = i[ok]
        seg[j[ok]] = k
    return src, seg


def extend_into_gaps(
    src: np.ndarray,
    seg: np.ndarray,
    segments: np.ndarray,
    garbage: np.ndarray,
    status: np.ndarray,
    max_extend: int,
) -> np.ndarray:
    """Tentatively give the MCUs of each garbage run to the neighbouring segments (the previous one
    forwards, the next one backwards, at most ``max_extend`` each, only onto free output positions),
    so that content the segmentation called garbage too eagerly can be judged MCU by MCU. Updates
    src/seg in place; returns bool (N,) marking the tentative positions."""
    n = src.size
    tentative = np.zeros(n, bool)
    by_end = {int(e): k for k, e in enumerate(segments[:, 1])}
    by_start = {int(a): k for k, a in enumerate(segments[:, 0])}
    for e, a in garbage:
        e, a = int(e), int(a)
        taken = e
        k = by_end.get(e)
        if k is not None:
            shift = int(segments[k, 2])
            for i in range(e, min(e + max_extend, a)):
                j = i - shift
                if not 0 <= j < n or src[j] >= 0 or status[i] & 2:
                    break
                src[j], seg[j], tentative[j] = i, k, True
                taken = i + 1
        k = by_start.get(a)
        if k is not None:
            shift = int(segments[k, 2])
            for i in range(a - 1, max(a - max_extend, taken) - 1, -1):
                j = i - shift
                if not 0 <= j < n or src[j] >= 0 or status[i] & 2:
                    break
                src[j], seg[j], tentative[j] = i, k, True
    return tentative


def _comp_mean(a: np.ndarray, comp: np.ndarray, ncomp: int) -> np.ndarray:
    """Mean over the columns of each component: (K, X) -> (K, ncomp)."""
    out = np.empty((a.shape[0], ncomp), np.float64)
    for c in range(ncomp):
        out[:, c] = a[:, comp == c].mean(axis=1)
    return out


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _trimmed_mean(values: np.ndarray, weights: np.ndarray, keep: float = 0.5) -> float:
    """Weighted mean of the central ``keep`` share of the weight: robust like a median, but not stuck on the
    few levels that quantised chroma jumps take."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cw = np.cumsum(w)
    lo, hi = 0.5 * (1.0 - keep) * cw[-1], 0.5 * (1.0 + keep) * cw[-1]
    # weight of each sample inside [lo, hi] of the cumulative weight
    inside = np.clip(np.minimum(cw, hi) - np.maximum(cw - w, lo), 0.0, None)
    return float((v * inside).sum() / max(inside.sum(), 1e-12))


def _groups(labels: np.ndarray, count: int) -> list[np.ndarray]:
    """Indices of each label 0..count-1 in int (K,) ``labels``, in increasing order (one sort instead of a
    mask per label)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(count)]


def _pair_diffs(f: McuFeatures, src: np.ndarray, seg: np.ndarray, cols: int, ncomp: int, tfl, tau_k):
    """Edge differences (lower/right minus upper/left, raw decoded values) across segment borders.

    Returns (k_a, k_b, diff (P, ncomp), weight (P, ncomp)) for every adjacent output MCU pair in two segments.
    """
    n = src.size
    ka, kb, dd, ww = [], [], [], []
    j = np.arange(n - cols)
    v = (src[j] >= 0) & (src[j + cols] >= 0) & (seg[j] != seg[j + cols])
    a, b = src[j[v]], src[j[v] + cols]
    if a.size:
        ka.append(seg[j[v]])
        kb.append(seg[j[v] + cols])
        # edge jump minus the mean slope on both sides (removes the bias of smooth gradients)
        jump = (f.top[b] - f.bot[a]) - 0.5 * ((f.bot[a] - f.bot2[a]) + (f.top2[b] - f.top[b]))
        dd.append(_comp_mean(jump, f.e_comp, ncomp))
        ww.append(1.0 / (tfl + tau_k * f.tex_bot[a]))
    j = np.arange(n - 1)
    v = (src[j] >= 0) & (src[j + 1] >= 0) & (seg[j] != seg[j + 1]) & ((j + 1) % cols != 0)
    a, b = src[j[v]], src[j[v] + 1]
    if a.size:
        ka.append(seg[j[v]])
        kb.append(seg[j[v] + 1])
        jump = (f.left[b] - f.right[a]) - 0.5 * ((f.right[a] - f.right2[a]) + (f.left2[b] - f.left[b]))
        dd.append(_comp_mean(jump, f.l_comp, ncomp))
        ww.append(1.0 / (tfl + tau_k * f.tex_right[a]))
    if not ka:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros((0, ncomp)), np.zeros((0, ncomp))
    return np.concatenate(ka), np.concatenate(kb), np.concatenate(dd), np.concatenate(ww)


def refit_offsets(
    f: McuFeatures,
    segments: np.ndarray,
    init: np.ndarray,
    src: np.ndarray,
    seg: np.ndarray,
    cols: int,
    steps: np.ndarray,
    thumb=None,
    params: RefitParams | None = None,
    status: np.ndarray | None = None,
) -> np.ndarray:
    """Joint offsets float32 (S, ncomp) of all segments (see module doc); ``init``: the online
    estimates (S, ncomp); status: uint8 (N,) MCU flags (restart markers pin segments to 0)."""
    p = params or RefitParams()
    nseg, ncomp = init.shape
    if nseg == 0:
        return init.astype(np.float32)
    tfl = comp_vector(p.tau_floor, ncomp)
    ka, kb, dd, ww = _pair_diffs(f, src, seg, cols, ncomp, tfl, comp_vector(p.tau_k, ncomp))
    # one robust equation per segment pair: weighted median of the edge differences
    pairs: dict[tuple[int, int], np.ndarray] = {}
    if ka.size:
        key = ka * nseg + kb
        order = np.argsort(key, kind="stable")
        key_s = key[order]
        bounds = np.flatnonzero(np.diff(key_s)) + 1
        for grp in np.split(order, bounds):
            pairs[(int(ka[grp[0]]), int(kb[grp[0]]))] = grp
    thumb_eq = np.full((nseg, ncomp), np.nan)
    thumb_w = np.zeros((nseg, ncomp))
    if thumb is not None:
        pos = np.flatnonzero(src >= 0)
        diff = _comp_mean(f.means[src[pos]] - thumb.means[pos], f.m_comp, ncomp)
        wt = 1.0 / (comp_vector(p.thumb_floor, ncomp) + p.thumb_k * thumb.sigma[pos])
        for k, sel in enumerate(_groups(seg[pos], nseg)):
            if sel.size:
                for c in range(ncomp):
                    thumb_eq[k, c] = _weighted_median(diff[sel, c], wt[sel, c])
                    thumb_w[k, c] = p.anchor_weight * wt[sel, c].sum()
    # anchor: the first segment precedes every error when it starts the stream unshifted
    pinned = np.zeros(nseg, bool)
    # ... and so does every segment that starts unshifted at a restart marker (DC predictors reset)
    starts_known = None
    if status is not None:
        starts_known = (segments[:, 0] == 0) | ((status[segments[:, 0]] & 4) != 0)
    pinned[0] = segments[0, 0] == 0 and segments[0, 2] == 0
    if starts_known is not None:
        pinned |= starts_known & (segments[:, 2] == 0)
    lo = np.full((nseg, ncomp), -np.inf)
    hi = np.full((nseg, ncomp), np.inf)
    if thumb is None:
        pos = np.flatnonzero(src >= 0)
        mc = _comp_mean(f.means[src[pos]], f.m_comp, ncomp)
        for k, sel in enumerate(_groups(seg[pos], nseg)):
            if sel.size >= 4:
                q1, q99 = np.percentile(mc[sel], [1, 99], axis=0)
                # a range wider than the legal one holds more than one offset (garbage or a missed
                # break): no bound on the segment's own offset (clamped, it drags the whole chain)
                wide = q99 - q1 > 255.0 + 2.0 * p.legal_margin
                lo[k] = np.where(wide, -np.inf, q99 - 255.0 - p.legal_margin)
                hi[k] = np.where(wide, np.inf, q1 + p.legal_margin)
    out = np.zeros((nseg, ncomp), np.float64)
    for c in range(ncomp):
        d_c, w_c = (dd[:, c], ww[:, c]) if ka.size else (dd, ww)
        out[:, c] = _solve_component(
            nseg, pairs, d_c, w_c, thumb_eq[:, c], thumb_w[:, c], init[:, c].astype(np.float64), p, pinned,
            lo[:, c], hi[:, c], float(steps[c]),
        )  # fmt: skip
    out = np.round(out / steps[None, :ncomp]) * steps[None, :ncomp]
    return out.astype(np.float32)


def _solve_component(nseg, pairs, dd, ww, teq, tw, init, p: RefitParams, pinned, lo, hi, step) -> np.ndarray:
    rows_a, rows_b, rhs, wts = [], [], [], []
    for (a, b), grp in pairs.items():
        rows_a.append(a)
        rows_b.append(b)
        # offset differences are whole DC steps too: snapping each pair makes chains of segments exact
        rhs.append(np.round(_trimmed_mean(dd[grp], ww[grp]) / step) * step)
        wts.append(ww[grp].sum())
    ra, rb = np.asarray(rows_a, np.int64), np.asarray(rows_b, np.int64)
    rhs_a, w_pair = np.asarray(rhs, np.float64), np.asarray(wts, np.float64)
    fixed = np.full(nseg, np.nan)
    fixed[pinned] = 0.0
    x = init.copy()
    x[pinned] = 0.0
    robust = np.ones_like(w_pair)
    t_ok = np.flatnonzero(np.isfinite(teq))
    diag_idx = np.arange(nseg)
    prior = p.prior_weight * (1.0 + w_pair.sum() / max(nseg, 1))
    for _ in range(4):
        for _clamp in range(3):
            w = w_pair * robust
            # normal equations of the pair rows x_b - x_a = r: a weighted graph Laplacian, built in O(P)
            # (a dense incidence matrix costs O(P * S) and the dense solve O(S^3): minutes at 33 MP)
            rows = np.concatenate([ra, rb, ra, rb, t_ok, diag_idx])
            cols_ = np.concatenate([ra, rb, rb, ra, t_ok, diag_idx])
            vals = np.concatenate([w, w, -w, -w, tw[t_ok], np.full(nseg, prior)])
            b_vec = (np.bincount(rb, w * rhs_a, nseg) - np.bincount(ra, w * rhs_a, nseg)).astype(np.float64)
            b_vec[t_ok] += tw[t_ok] * teq[t_ok]
            b_vec += prior * init
            fx = np.isfinite(fixed)
            free = ~fx
            x = fixed.copy()
            if free.any():
                x[free] = _solve_laplacian(rows, cols_, vals, nseg, b_vec, fixed, fx, free)
            bad = free & ((x < lo) | (x > hi))
            if not bad.any():
                break
            fixed[bad] = np.clip(x[bad], lo[bad], hi[bad])
        if not rhs_a.size:
            break
        res = np.abs(x[rb] - x[ra] - rhs_a)
        robust = np.minimum(1.0, p.huber / np.maximum(res, 1e-6))
    return x


def _solve_laplacian(rows, cols, vals, nseg, b_vec, fixed, fx, free) -> np.ndarray:
    """Solve the (S, S) system given as summed (rows, cols, vals) triplets for the ``free`` unknowns, the
    ``fixed`` ones moved to the right-hand side: dense for a few hundred segments, sparse (SuperLU) above."""
    if nseg <= 256:
        a_mat = np.zeros((nseg, nseg))
        np.add.at(a_mat, (rows, cols), vals)
        b = b_vec - a_mat[:, fx] @ fixed[fx] if fx.any() else b_vec
        return np.linalg.solve(a_mat[np.ix_(free, free)], b[free])
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    a_mat = csc_matrix((vals, (rows, cols)), shape=(nseg, nseg))
    b = b_vec - a_mat[:, np.flatnonzero(fx)] @ fixed[fx] if fx.any() else b_vec
    idx = np.flatnonzero(free)
    return np.atleast_1d(spsolve(a_mat[idx][:, idx].tocsc(), b[idx]))


@numba.njit(cache=True, nogil=True)
def _side_kernel(src, off, trusted, top, bot, left, right, tex_top, tex_bot, tex_left, tex_right, eb, lb, tfl,
                 tauk, trunc, cols, todo, best):  # fmt: skip
    n = src.shape[0]
    ncomp = off.shape[1]
    for j in range(n):
        i = src[j]
        for c in range(ncomp):
            best[j, c] = np.inf
        if i < 0 or not todo[j]:
            continue
        r = j // cols
        col = j - r * cols
        for side in range(4):
            if side == 0:
                k = j - cols
                ok = r > 0
            elif side == 1:
                k = j + cols
                ok = k < n
            elif side == 2:
                k = j - 1
                ok = col > 0
            else:
                k = j + 1
                ok = col < cols - 1
            if not ok or not trusted[k] or src[k] < 0:
                continue
            m = src[k]
            for c in range(ncomp):
                acc = 0.0
                if side == 0:
                    for x in range(eb[c], eb[c + 1]):
                        acc += abs(top[i, x] - off[j, c] - bot[m, x] + off[k, c])
                    u = acc / (eb[c + 1] - eb[c]) / (tfl[c] + tauk[c] * tex_bot[m, c])
                elif side == 1:
                    for x in range(eb[c], eb[c + 1]):
                        acc += abs(bot[i, x] - off[j, c] - top[m, x] + off[k, c])
                    u = acc / (eb[c + 1] - eb[c]) / (tfl[c] + tauk[c] * tex_top[m, c])
                elif side == 2:
                    for x in range(lb[c], lb[c + 1]):
                        acc += abs(left[i, x] - off[j, c] - right[m, x] + off[k, c])
                    u = acc / (lb[c + 1] - lb[c]) / (tfl[c] + tauk[c] * tex_right[m, c])
                else:
                    for x in range(lb[c], lb[c + 1]):
                        acc += abs(right[i, x] - off[j, c] - left[m, x] + off[k, c])
                    u = acc / (lb[c + 1] - lb[c]) / (tfl[c] + tauk[c] * tex_left[m, c])
                u = min(u, trunc)
                if u < best[j, c]:
                    best[j, c] = u


def _side_scores(f: McuFeatures, src, offsets_at, cols, trusted, p: RefitParams, todo=None):
    """Per output MCU and component: the best (smallest) continuity residual over its sides with a
    trusted neighbour, float64 (N, ncomp) (inf where no side is available, or outside the bool (N,)
    ``todo`` mask). In numba: a per-MCU loop over four sides with early exits, which numpy would have to
    materialise for every MCU."""
    ncomp = offsets_at.shape[1]
    best = np.empty((src.size, ncomp))
    todo = np.ones(src.size, np.bool_) if todo is None else np.ascontiguousarray(todo, np.bool_)
    _side_kernel(
        src, np.ascontiguousarray(offsets_at, np.float64), trusted, f.top, f.bot, f.left, f.right, f.tex_top,
        f.tex_bot, f.tex_left, f.tex_right, comp_bounds(f.e_comp, ncomp), comp_bounds(f.l_comp, ncomp),
        comp_vector(p.tau_floor, ncomp), comp_vector(p.tau_k, ncomp), float(p.truncate), int(cols), todo,
        best,
    )  # fmt: skip
    return best


def _thumb_scores(f: McuFeatures, src, offsets_at, thumb, p: RefitParams):
    """Per output MCU: (mean, max) over blocks of the normalised thumbnail residual, float (N,) each."""
    ncomp = offsets_at.shape[1]
    s = np.where(src >= 0, src, 0)
    u = np.abs(f.means[s] - offsets_at[:, f.m_comp] - thumb.means)
    sig = comp_vector(p.thumb_floor, ncomp)[f.m_comp][None, :] + p.thumb_k * thumb.sigma[:, f.m_comp]
    r = np.minimum(u / sig, p.truncate)
    wc = comp_vector(p.comp_weight, ncomp)[f.m_comp]
    mean = (r * wc).sum(axis=1) / wc.sum()
    return mean, r.max(axis=1)


def judge_garbage(
    f: McuFeatures,
    src: np.ndarray,
    offsets_at: np.ndarray,
    cols: int,
    thumb=None,
    params: RefitParams | None = None,
    near: np.ndarray | None = None,
) -> np.ndarray:
    """bool (N,) output MCUs whose content is judged garbage (src == -1 counts as garbage too).

    offsets_at: float (N, ncomp) offset of each output position. near: bool (N,) positions next to a
    break (where garbage lives: the partly hit MCU before a garbage run, the resync MCU after it) get
    the low thresholds. With a thumbnail: block means far from the thumbnail's. Without: a component
    discontinuous on all sides that have a trusted neighbour. Both next to a break only, unless
    ``garbage_thumb`` / ``garbage_cont`` are set.
    """
    p = params or RefitParams()
    has = src >= 0
    near = np.zeros(src.size, bool) if near is None else near
    if thumb is not None:
        t_mean, t_max = _thumb_scores(f, src, offsets_at, thumb, p)
        thumb_bad = near & (t_max > p.garbage_thumb_near)
        if p.garbage_thumb is not None:
            thumb_bad |= t_mean > p.garbage_thumb
    garbage = ~has
    # continuity scores are only read next to a break unless garbage_cont is set: score only those
    todo = None if p.garbage_cont is not None else near
    for _ in range(3):
        best = _side_scores(f, src, offsets_at, cols, ~garbage, p, todo)
        worst_comp = np.where(np.isfinite(best), best, 0.0).max(axis=1)
        cont_bad = near & (worst_comp > p.garbage_cont_near)
        if p.garbage_cont is not None:
            cont_bad |= worst_comp > p.garbage_cont
        if thumb is not None:
            new = thumb_bad | (near & cont_bad)
        else:
            new = cont_bad
        new = (new & has) | ~has
        if np.array_equal(new, garbage):
            break
        garbage = new
    return garbage
