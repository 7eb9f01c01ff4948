"""Online raster-order segmentation of the decoded MCU stream by hypothesis testing.

A segment's model is (shift s, offsets o): decoded MCU i belongs at output MCU j = i - s and
carries the per-component DC offset o (sample units). A canvas of restored output MCUs (their
offset-corrected bottom rows and right columns, and the slopes there) is filled in raster order.
Per-MCU residuals are dimensionless and truncated (robust L1):

* continuity: mean |top row - o - (bottom row of the MCU above + the mean slope on both sides)|
  over ``tau_floor + tau_k * texture above`` (first MCU row: the left neighbour instead);
* thumbnail: mean |block means - o - thumbnail block means at j| over
  ``thumb_floor + thumb_k * sigma``.

While the current model explains the stream the residuals are cheap to screen. A search starts
where several MCUs in a row fail, at a decoder resync/error event, or where the running mean
offset of the new MCUs drifts (small offset-only changes). It scores every hypothesis "break at e,
garbage e..a, new model (s', o') from a" on a window against "no break" (in the first MCU row also
on look-ahead probes: the MCUs the new model puts under restored content) and accepts a break only
if it wins by a margin. Written in numba: the loop is sequential and branchy.

Each hypothesis is compared with "no break" on the MCUs whose reference (the restored MCU above) exists
under both: the window of shift s' ends at i + cols - max(0, s - s'). Scoring MCUs without a reference
as neutral would let a hypothesis that moves MCUs under unrestored rows win by default (what made
clean decodes of narrow images break: with 16 MCUs a row a 32-MCU window reaches two rows ahead).
Without a decoder event a break must also win on the MCUs after its garbage: by ``tail_margin`` in
sum and on clearly more MCUs than it loses (a sign test; self-only also passed by a few MCUs won by
far), a shift-only break (every offset kept, which real hits almost never do) on half of them. In
flat or noise-like content any shift fits, and a best-of-25-shifts search beats a fixed margin by
chance; the sum alone is also won by explaining a few outlier MCUs (stars, edges) as garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# MCU status flags (the values of src.jpeg's MCU_* constants).
_RESYNC, _LOST, _RESTART, _ERROR = 1, 2, 4, 8


@dataclass(frozen=True)
class SegmentParams:
    """Tunables of the online segmentation (residuals are ~0.5 on good continuity)."""

    max_shift: int = 12  # largest shift decrease per break (MCUs lost to resync), in MCUs
    max_shift_up: int = 12  # largest shift increase (more garbage MCUs than lost ones; rarer)
    max_garbage: int = 16  # longest garbage run per break, in decoded MCUs
    back: int = 6  # how far before the trigger a break may lie
    drift_back: int = 16  # ... for a drift trigger
    lookahead: int = 4  # screening window after a failing MCU
    need_bad: int = 2  # failing MCUs among `lookahead` that trigger a search
    window: int = 32  # decoded MCUs after the trigger scored per hypothesis
    probes: int = 48  # first-row look-ahead probes
    fit_skip: int = 10  # new offsets are fitted on window MCUs after trigger + fit_skip
    neg_lost: int = 3  # how many MCUs a new segment may overlap the previous one
    trigger: float = 2.0  # residual above which an MCU counts as failing
    drift: float = 2.0  # |running mean offset| (sample units) that triggers a search
    drift_rate: float = 0.125  # weight of the newest MCU in that running mean
    garbage_cost: float = 2.2  # cost per garbage MCU ...
    garbage_excess: float = 0.5  # ... before the trigger: at least its old-model residual plus this
    margin: float = 3.0  # a break must beat "no break" by this much
    event_margin: float = 1.0  # ... at a decoder resync/error event
    shift_prior: float = 0.15  # cost per MCU of shift change
    overlap_cost: float = 1.0  # cost per overlapped MCU
    clean_break_cost: float = 3.0  # extra cost of a break without any garbage MCU (a hit garbles some)
    screen: float = 3.0  # a new model whose mean residual on the window's end is above this is skipped
    tail_margin: float = 2.0  # without a decoder event, the new model must beat the old one on the MCUs
    # after the garbage by this much (a few outlier MCUs explained as garbage are no break) ...
    sign_eps: float = 0.5  # ... and on clearly more of them (residual lower by sign_eps) than it loses:
    sign_frac: float = 0.3  # wins - losses >= max(sign_min, sign_frac * tail MCUs (+ probes))
    sign_min: float = 3.0
    strong_eps: float = 1.5  # ... or on at least `n_strong` more MCUs by strong_eps than it loses by as much
    n_strong: float = 3.0  # (the few textured MCUs that reveal a shift in otherwise flat content)
    shift_frac: float = 0.5  # sign test share for a break that keeps every offset (shift only)
    min_tail: int = 6  # MCUs (+ probes) after the garbage a break needs without a decoder event
    retest_rows: int = 0  # MCU rows after a break in which a shift-only break is judged like any other
    probe_weight: float = 0.0  # weight of probes outside the first MCU row
    truncate: float = 6.0  # residual truncation
    neutral: float = 0.8  # residual of an MCU with no reference at all
    thumb_k: float = 0.5  # thumbnail noise: thumb_floor + thumb_k * sigma
    thumb_weight: float = 1.0  # weight of the thumbnail term against continuity
    tau_floor: tuple[float, ...] = (2.5, 1.5, 1.5)  # continuity noise: tau_floor + tau_k * texture above
    tau_k: tuple[float, ...] = (1.0, 2.0, 2.0)
    thumb_floor: tuple[float, ...] = (4.0, 3.0, 3.0)
    comp_weight: tuple[float, ...] = (1.0, 0.5, 0.5)


_F_NAMES = (
    "trigger",
    "garbage_cost",
    "margin",
    "event_margin",
    "shift_prior",
    "overlap_cost",
    "truncate",
    "neutral",
    "thumb_k",
    "thumb_weight",
    "probe_weight",
    "drift",
    "drift_rate",
    "garbage_excess",
    "clean_break_cost",
    "screen",
    "tail_margin",
    "sign_eps",
    "sign_frac",
    "sign_min",
    "strong_eps",
    "n_strong",
    "shift_frac",
)
_I_NAMES = (
    "max_shift",
    "max_garbage",
    "back",
    "lookahead",
    "need_bad",
    "window",
    "probes",
    "fit_skip",
    "neg_lost",
    "drift_back",
    "max_shift_up",
    "min_tail",
    "retest_rows",
)
(_TRIG, _GCOST, _MARGIN, _EMARGIN, _SPRIOR, _OVCOST, _TRUNC, _NEUTRAL, _THK, _THW, _PW, _DRIFT, _DRATE,
 _GEXC, _CLEAN, _SCREEN, _TAIL, _SEPS, _SFRAC, _SMIN, _STRONG,
 _NSTRONG, _SHFRAC) = range(len(_F_NAMES))  # fmt: skip
(_D, _GMAX, _BACK, _LOOK, _NEED, _WIN, _PROBES, _FITSKIP, _NEG, _DBACK, _DUP, _MINTAIL, _RETEST) = range(
    len(_I_NAMES)
)

# The kernel works on edge rows extrapolated by half the slope at the edge, so that a smooth gradient
# continues across the MCU border: xt = 1.5 top - 0.5 top2 (decoded MCU), and the canvas keeps
# cb = 1.5 bot - 0.5 bot2 - offset of the restored MCU above; their difference is the deviation.
# Arrays: xt, xl (N, E / Lc) extrapolated top row / left column of decoded MCUs; means (N, M);
# canvas cb, cr (N, E / Lc), ct, ctr (N, ncomp) textures, ok (N,) bool. B: int64 (3, ncomp + 1)
# column bounds of edges / sides / blocks; W: float64 (4, ncomp) comp weight, tau floor, thumb floor,
# tau_k.


@numba.njit(cache=True, nogil=True, inline="always")
def _reference(j, ok, cols):
    """(kind, index) of the restored MCU that output position j is compared with: 0 the one above, 1 the
    one two rows up (the MCU above is a hole: garbage of an earlier break), 2 the left one (first MCU
    row), -1 none. The same for every component, so found once per MCU."""
    a = j - cols
    if a >= 0 and ok[a]:
        return 0, a
    if a - cols >= 0 and ok[a - cols] and not ok[a]:
        return 1, a - cols
    if j % cols != 0 and ok[j - 1]:
        return 2, j - 1
    return -1, 0


# The edge loops below are written out in each caller: numba compiles a small helper that returns a
# tuple from several branches several times slower than the same loop in place (measured: this kernel
# spends most of its time here).


@numba.njit(cache=True, nogil=True, inline="always")
def _cont_scale(kind, a, c, ct, ctr, B, W):
    """(edge length, noise scale tau_floor + tau_k * texture of the reference) of component c."""
    if kind == 2:
        return B[1, c + 1] - B[1, c], W[1, c] + W[3, c] * ctr[a, c]
    if kind == 1:  # two rows up: more noise
        return B[0, c + 1] - B[0, c], W[1, c] + W[3, c] * (2.0 * ct[a, c] + 4.0)
    return B[0, c + 1] - B[0, c], W[1, c] + W[3, c] * ct[a, c]


@numba.njit(cache=True, nogil=True, inline="always")
def _resid(i, j, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t, cols, fp):
    """Residual of decoded MCU i placed at output j with offsets o (see module doc)."""
    ncomp = o.shape[0]
    trunc = fp[_TRUNC]
    num = 0.0
    den = 0.0
    kind, a = _reference(j, ok, cols)
    if kind >= 0:
        for c in range(ncomp):
            sa = 0.0
            if kind == 2:
                for x in range(B[1, c], B[1, c + 1]):
                    sa += abs(xl[i, x] - o[c] - cr[a, x])
            else:
                for x in range(B[0, c], B[0, c + 1]):
                    sa += abs(xt[i, x] - o[c] - cb[a, x])
            cnt, tau = _cont_scale(kind, a, c, ct, ctr, B, W)
            num += W[0, c] * min(sa / cnt / tau, trunc)
            den += W[0, c]
    if has_t:
        for c in range(ncomp):
            s = 0.0
            for b in range(B[2, c], B[2, c + 1]):
                s += abs(means[i, b] - o[c] - tmean[j, b])
            u = s / (B[2, c + 1] - B[2, c]) / (W[2, c] + fp[_THK] * tsig[j, c])
            w = fp[_THW] * W[0, c]
            num += w * min(u, trunc)
            den += w
    if den == 0.0:
        return fp[_NEUTRAL]
    return num / den


@numba.njit(cache=True, nogil=True, inline="always")
def _resid_drift(i, j, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t, cols, fp, dev):
    """``_resid`` plus, in dev (ncomp,), the mean signed deviation of each component from the model
    (continuity and thumbnail averaged); returns (residual, whether dev was written)."""
    ncomp = o.shape[0]
    trunc = fp[_TRUNC]
    num = 0.0
    den = 0.0
    kind, a = _reference(j, ok, cols)
    got = kind >= 0
    for c in range(ncomp):
        dev[c] = 0.0
        if not got:
            continue
        ss = 0.0
        sa = 0.0
        if kind == 2:
            for x in range(B[1, c], B[1, c + 1]):
                d = xl[i, x] - o[c] - cr[a, x]
                ss += d
                sa += abs(d)
        else:
            for x in range(B[0, c], B[0, c + 1]):
                d = xt[i, x] - o[c] - cb[a, x]
                ss += d
                sa += abs(d)
        cnt, tau = _cont_scale(kind, a, c, ct, ctr, B, W)
        num += W[0, c] * min(sa / cnt / tau, trunc)
        den += W[0, c]
        dev[c] = ss / cnt
    if has_t:
        for c in range(ncomp):
            s = 0.0
            sa = 0.0
            for b in range(B[2, c], B[2, c + 1]):
                d = means[i, b] - o[c] - tmean[j, b]
                s += d
                sa += abs(d)
            nb = B[2, c + 1] - B[2, c]
            u = sa / nb / (W[2, c] + fp[_THK] * tsig[j, c])
            w = fp[_THW] * W[0, c]
            num += w * min(u, trunc)
            den += w
            dev[c] = 0.5 * (dev[c] + s / nb) if got else s / nb
        got = True
    if den == 0.0:
        return fp[_NEUTRAL], got
    return num / den, got


@numba.njit(cache=True, nogil=True, inline="always")
def _add_obs(i, j, xt, xl, means, cb, cr, ok, B, tmean, has_t, cols, buf, cnt):
    """Append the offset observations of decoded i at output j (one row per reference) to buf."""
    ncomp = B.shape[1] - 1
    kind, a = _reference(j, ok, cols)
    if kind >= 0:
        for c in range(ncomp):
            ss = 0.0
            if kind == 2:
                for x in range(B[1, c], B[1, c + 1]):
                    ss += float(xl[i, x]) - cr[a, x]  # in float64, like the residuals
                buf[cnt, c] = ss / (B[1, c + 1] - B[1, c])
            else:
                for x in range(B[0, c], B[0, c + 1]):
                    ss += float(xt[i, x]) - cb[a, x]
                buf[cnt, c] = ss / (B[0, c + 1] - B[0, c])
        cnt += 1
    if has_t:
        for c in range(ncomp):
            s = 0.0
            for b in range(B[2, c], B[2, c + 1]):
                s += means[i, b] - tmean[j, b]
            buf[cnt, c] = s / (B[2, c + 1] - B[2, c])
        cnt += 1
    return cnt


@numba.njit(cache=True, nogil=True)
def small_median(values, scratch):
    """np.median(values) of a 1-D array (same value, mean of the middle two for even counts) by insertion
    sort into ``scratch`` (at least as long): for a few dozen values this beats numba's copying select."""
    cnt = values.shape[0]
    for k in range(cnt):
        v = values[k]
        m = k
        while m > 0 and scratch[m - 1] > v:
            scratch[m] = scratch[m - 1]
            m -= 1
        scratch[m] = v
    h = cnt >> 1
    if cnt & 1:
        return scratch[h]
    return (scratch[h - 1] + scratch[h]) / 2


@numba.njit(cache=True, nogil=True)
def pairwise_sum(values):
    """np.sum of a contiguous 1-D float64 array, bit for bit: numpy's pairwise summation (8 running
    partial sums combined as a tree, the rest added in order; plain order below 8 values; halves of a
    multiple of 8 above numpy's 128-value block)."""
    n = values.shape[0]
    if n > 128:
        half = n // 2
        half -= half % 8
        return pairwise_sum(values[:half]) + pairwise_sum(values[half:])
    if n < 8:
        res = -0.0
        for k in range(n):
            res += values[k]
        return res
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    k = 8
    end = n - n % 8
    while k < end:
        r0 += values[k]
        r1 += values[k + 1]
        r2 += values[k + 2]
        r3 += values[k + 3]
        r4 += values[k + 4]
        r5 += values[k + 5]
        r6 += values[k + 6]
        r7 += values[k + 7]
        k += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while k < n:
        res += values[k]
        k += 1
    return res


@numba.njit(cache=True, nogil=True)
def _column_median(buf, cnt, c, scratch):
    """np.median(buf[:cnt, c]) (see :func:`small_median`)."""
    return small_median(buf[:cnt, c], scratch)


@numba.njit(cache=True, nogil=True, inline="always")
def _write_canvas(i, j, o, xb, xr, tex_bot, tex_right, cb, cr, ct, ctr, ok, B):
    for c in range(o.shape[0]):
        for x in range(B[0, c], B[0, c + 1]):
            cb[j, x] = xb[i, x] - o[c]
        for x in range(B[1, c], B[1, c + 1]):
            cr[j, x] = xr[i, x] - o[c]
        ct[j, c] = tex_bot[i, c]
        ctr[j, c] = tex_right[i, c]
    ok[j] = True


@numba.njit(cache=True, nogil=True)
def _segment_kernel(xt, xb, xl, xr, means, tex_bot, tex_right, B, W, tmean, tsig, has_t, status, cols, steps,
                    fp, ip):  # fmt: skip
    n = xt.shape[0]
    ncomp = B.shape[1] - 1
    D = ip[_D]
    GMAX = ip[_GMAX]
    LOOK = ip[_LOOK]
    WIN = ip[_WIN]
    NEG = ip[_NEG]
    trig = fp[_TRIG]
    # Probes must lie a full row before the new segment: fewer on narrow images.
    nprobe = max(0, min(ip[_PROBES], cols - ip[_DBACK] - LOOK - GMAX - D))

    cb = np.zeros(xb.shape, np.float32)
    cr = np.zeros(xr.shape, np.float32)
    ct = np.zeros((n, ncomp), np.float32)
    ctr = np.zeros((n, ncomp), np.float32)
    ok = np.zeros(n, np.bool_)

    seg = np.zeros((n + 1, 3), np.int64)  # start, end, shift
    seg_off = np.zeros((n + 1, ncomp), np.float32)
    garb = np.zeros((n + 1, 2), np.int64)
    nseg = 0
    ngarb = 0

    o = np.zeros(ncomp, np.float64)
    drift = np.zeros(ncomp, np.float64)
    stats = np.zeros(4, np.int64)  # searches: all, accepted, drift-only, MCU residuals evaluated
    s = 0
    seg_start = 0
    cool = 0
    i = 0

    span = max(ip[_BACK], ip[_DBACK], cols + ip[_BACK] + 2) + WIN + 2
    r_old = np.zeros(span + 1)
    r_new = np.zeros(span + 1)
    g_cum = np.zeros(span + 1)
    n_win = np.zeros(span + 1, np.int64)
    n_loss = np.zeros(span + 1, np.int64)
    n_strong = np.zeros(span + 1, np.int64)
    pr_old = np.zeros(nprobe + 1)
    buf = np.zeros((2 * (WIN + nprobe) + 4, ncomp))
    o2 = np.zeros(ncomp)
    scratch = np.zeros(buf.shape[0])
    best_o = np.zeros(ncomp)
    dev = np.zeros(ncomp)

    while i < n:
        if i > seg_start and (status[i] & _RESTART) != 0:
            # a restart marker reset the DC predictors, and the decoder starts the interval at its
            # nominal MCU: the model is known again (shift 0, offsets 0)
            seg[nseg, 0] = seg_start
            seg[nseg, 1] = i
            seg[nseg, 2] = s
            seg_off[nseg, :] = o
            nseg += 1
            s = 0
            for c in range(ncomp):
                o[c] = 0.0
                drift[c] = 0.0
            seg_start = i
            cool = i
        j = i - s
        if j >= n:
            break
        if (status[i] & _LOST) != 0 or j < 0:
            # No data (or content before the image start): garbage, model unchanged.
            i0 = i
            while i < n and ((status[i] & _LOST) != 0 or i - s < 0):
                i += 1
            if i0 > seg_start:
                seg[nseg, 0] = seg_start
                seg[nseg, 1] = i0
                seg[nseg, 2] = s
                seg_off[nseg, :] = o
                nseg += 1
            garb[ngarb, 0] = i0
            garb[ngarb, 1] = i
            ngarb += 1
            seg_start = i
            continue

        r, got = _resid_drift(
            i, j, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t, cols, fp, dev
        )  # fmt: skip
        if got and r < trig:  # running mean of the MCUs' deviation from the current offsets
            for c in range(ncomp):
                drift[c] += fp[_DRATE] * (dev[c] - drift[c])
        event = (status[i] & (_RESYNC | _ERROR)) != 0
        trigger = False
        back = ip[_BACK]
        d_lo = s - D
        d_hi = s + ip[_DUP]
        if i >= cool:
            col = j % cols
            if event:
                trigger = True
            elif r > trig and (col == 0 or col == cols - 1) and j >= cols:
                # Row wrap: with a wrong shift the stream's row ends land on the other image edge, so a
                # single failing edge MCU is evidence. Right after a break, re-test the whole new
                # segment (its shift may have been ambiguous in flat content).
                trigger = True
                if i - seg_start <= cols + ip[_BACK] + 2:
                    back = i - seg_start
            elif r > trig:
                # MCUs with nothing to compare with (first MCU row: the left neighbour is not restored
                # yet) are no evidence either way: there a single failing MCU starts a search
                nbad = 1
                nref = 1
                for k in range(i + 1, min(i + LOOK, n)):
                    jk = k - s
                    if jk >= n or (status[k] & _LOST) != 0:
                        break
                    if not has_t and _reference(jk, ok, cols)[0] < 0:
                        continue
                    nref += 1
                    if _resid(k, jk, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t, cols,
                              fp) > trig:  # fmt: skip
                        nbad += 1
                trigger = nbad >= min(ip[_NEED], nref)
            if not trigger:
                for c in range(ncomp):
                    if abs(drift[c]) > fp[_DRIFT]:
                        # the current model still fits the content: an offset-only change
                        trigger = True
                        back = ip[_DBACK]
                        d_lo = s
                        d_hi = s
        if trigger:
            # ---- hypothesis search on the decoded window [lo, hi) ----
            stats[0] += 1
            lo = max(seg_start, i - back)
            hi = min(i + WIN, n, i + cols)  # the old model's references are restored up to i + cols
            for k in range(i + 1, hi):  # a window never crosses a restart
                if (status[k] & _RESTART) != 0:
                    hi = k
                    break
            while hi > i + 1 and (status[hi - 1] & _LOST) != 0:
                hi -= 1
            e_hi = min(i + LOOK, hi)  # last allowed break start
            r_old[0] = 0.0
            for k in range(lo, hi):
                jk = k - s
                v = fp[_NEUTRAL]
                if 0 <= jk < n:
                    v = _resid(
                        k, jk, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t, cols, fp
                    )
                r_old[k - lo + 1] = r_old[k - lo] + v
            pw = 1.0 if i - s < cols else fp[_PW]
            p_hi = lo - s  # probes: restored output positions [p_lo, p_hi)
            p_lo = max(0, p_hi - nprobe) if pw > 0.0 else p_hi
            probe_old = 0.0
            for p in range(p_lo, p_hi):
                ii = p + cols + s
                v = fp[_NEUTRAL]
                if ok[p] and 0 <= ii < n and p + cols < n:
                    v = _resid(ii, p + cols, o, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t,
                               cols, fp)  # fmt: skip
                pr_old[p - p_lo] = v
                probe_old += v
            if d_lo == d_hi:
                # a drift trigger searches offsets only, unless the window also holds failing MCUs
                nfail = 0
                for k in range(i, hi):
                    if r_old[k - lo + 1] - r_old[k - lo] > trig:
                        nfail += 1
                if nfail >= ip[_NEED]:
                    d_lo = s - D
                    d_hi = s + ip[_DUP]
            # garbage cost: MCUs before the trigger were accepted, so calling one garbage costs more than
            # the old model's explanation of it (keeps breaks from swallowing good content)
            g_cum[0] = 0.0
            for k in range(lo, hi):
                g = fp[_GCOST]
                if k < i:
                    g = max(g, min(r_old[k - lo + 1] - r_old[k - lo] + fp[_GEXC], fp[_TRUNC] - 0.5))
                g_cum[k - lo + 1] = g_cum[k - lo] + g
            best_gain = -1e30
            best_e = -1
            best_a = -1
            best_s = s
            for s2 in range(d_lo, d_hi + 1):
                # Each hypothesis is scored against "no break" on its own window [lo, h2): the MCUs whose
                # reference above is restored under both models (a shift decrease moves MCUs down).
                h2 = min(hi, i + cols - max(0, s - s2))
                if h2 - i < 2:
                    continue
                # offsets of the new model: median of observations on the late window MCUs
                late_lo = max(lo, min(i + ip[_FITSKIP], h2 - 4))
                cnt = 0
                for k in range(late_lo, h2):
                    jk = k - s2
                    if 0 <= jk < n:
                        cnt = _add_obs(k, jk, xt, xl, means, cb, cr, ok, B, tmean, has_t, cols, buf, cnt)
                if cnt < 6:  # too little in the window (first row): the probes' lower neighbours
                    for p in range(p_lo, p_hi):
                        ii = p + cols + s2
                        if ok[p] and 0 <= ii < n and p + cols < n and (status[ii] & _LOST) == 0:
                            cnt = _add_obs(
                                ii, p + cols, xt, xl, means, cb, cr, ok, B, tmean, has_t, cols, buf, cnt
                            )
                if cnt == 0:
                    for c in range(ncomp):
                        o2[c] = o[c]
                else:
                    for c in range(ncomp):
                        o2[c] = np.round(_column_median(buf, cnt, c, scratch) / steps[c]) * steps[c]
                # screen: a new model must explain the end of the window (cheap; most shifts fail here)
                if pw == 0.0 and h2 - late_lo >= 4:
                    late = 0.0
                    limit = fp[_SCREEN] * (h2 - late_lo)
                    for k in range(late_lo, h2):
                        jk = k - s2
                        v = fp[_TRUNC]
                        if 0 <= jk < n:
                            v = _resid(k, jk, o2, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig,
                                       has_t, cols, fp)  # fmt: skip
                        late += v
                        if late > limit:  # residuals are >= 0: the sum only grows
                            break
                    if late > limit:
                        continue
                # a break that only moves the content (every offset kept) has no DC evidence: in flat or
                # noisy content any shift fits, so it must win on a larger share of the tail
                # (within retest_rows MCU rows after a break, where the new segment's shift may have been
                # decided in flat content, a shift-only break can be judged like any other: off by default,
                # it cost more than it gained on the tuning photos)
                pure_shift = s2 != s and (seg_start == 0 or i - seg_start >= ip[_RETEST] * cols)
                tol_pure = 1.5 if pw > 0.0 and not has_t else 0.5
                for c in range(ncomp):
                    if abs(o2[c] - o[c]) > tol_pure * steps[c]:
                        pure_shift = False
                r_new[0] = 0.0
                n_win[0] = 0
                n_loss[0] = 0
                n_strong[0] = 0
                for k in range(lo, h2):
                    jk = k - s2
                    v = fp[_TRUNC]
                    if 0 <= jk < n:
                        v = _resid(k, jk, o2, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig, has_t,
                                   cols, fp)  # fmt: skip
                    r_new[k - lo + 1] = r_new[k - lo] + v
                    # sign test counts: MCUs the new model explains clearly better / worse than the old
                    vo = r_old[k - lo + 1] - r_old[k - lo]
                    n_win[k - lo + 1] = n_win[k - lo] + (1 if v < vo - fp[_SEPS] else 0)
                    n_loss[k - lo + 1] = n_loss[k - lo] + (1 if v > vo + fp[_SEPS] else 0)
                    d_strong = 0
                    if v < vo - fp[_STRONG]:
                        d_strong = 1
                    elif v > vo + fp[_STRONG]:
                        d_strong = -1
                    n_strong[k - lo + 1] = n_strong[k - lo] + d_strong
                probe_new = 0.0
                p_win = 0
                p_strong = 0
                for p in range(p_lo, p_hi):
                    ii = p + cols + s2
                    v = fp[_NEUTRAL]
                    if ok[p] and 0 <= ii < n and p + cols < n:
                        v = _resid(ii, p + cols, o2, xt, xl, means, cb, cr, ct, ctr, ok, B, W, tmean, tsig,
                                   has_t, cols, fp)  # fmt: skip
                    probe_new += v
                    if v < pr_old[p - p_lo] - fp[_SEPS]:
                        p_win += 1
                    elif v > pr_old[p - p_lo] + fp[_SEPS]:
                        p_win -= 1
                    if v < pr_old[p - p_lo] - fp[_STRONG]:
                        p_strong += 1
                    elif v > pr_old[p - p_lo] + fp[_STRONG]:
                        p_strong -= 1
                nobreak = r_old[h2 - lo] + pw * probe_old
                base = pw * probe_new + fp[_SPRIOR] * abs(s2 - s)
                for a in range(lo, min(h2, e_hi + GMAX + 1)):
                    tail = r_new[h2 - lo] - r_new[a - lo]
                    if not event:
                        # a hit changes every later MCU: the new model must win on most of the tail, not
                        # by a few outliers called garbage (flat or noisy content: any shift fits)
                        t_len = h2 - a
                        net = n_win[h2 - lo] - n_win[a - lo] - (n_loss[h2 - lo] - n_loss[a - lo])
                        strong = n_strong[h2 - lo] - n_strong[a - lo]
                        if pw > 0.0:
                            net += p_win
                            strong += p_strong
                            t_len += p_hi - p_lo
                        gain = r_old[h2 - lo] - r_old[a - lo] + pw * probe_old - tail - pw * probe_new
                        if t_len < ip[_MINTAIL] or gain < fp[_TAIL]:
                            continue
                        if pure_shift:
                            if net < max(fp[_SMIN], fp[_SHFRAC] * t_len):
                                continue
                        elif not has_t and net < max(fp[_SMIN], fp[_SFRAC] * t_len) and strong < fp[_NSTRONG]:
                            continue
                    for e in range(max(lo, a - GMAX), min(a, e_hi) + 1):
                        lost = s + (a - e) - s2  # output MCUs lost between the segments
                        if lost < -NEG:
                            continue
                        c_h = r_old[e - lo] + (g_cum[a - lo] - g_cum[e - lo]) + tail + base
                        if lost < 0:
                            c_h += fp[_OVCOST] * (-lost)
                        if a == e and not event:
                            c_h += fp[_CLEAN]
                        if nobreak - c_h > best_gain:
                            best_gain = nobreak - c_h
                            best_e = e
                            best_a = a
                            best_s = s2
                            for c in range(ncomp):
                                best_o[c] = o2[c]
            margin = fp[_EMARGIN] if event else fp[_MARGIN]
            stats[3] += (hi - lo) * (d_hi - d_lo + 2)
            if d_lo == d_hi:
                stats[2] += 1
            # a bit error feeds garbage to every DC predictor: a "break" that keeps the shift and all
            # offsets is content the model explains poorly, not a hit
            same = best_s == s
            for c in range(ncomp):
                if abs(best_o[c] - o[c]) > 1.5 * steps[c]:
                    same = False
            if best_e >= 0 and not same and best_gain > margin:
                stats[1] += 1
                for k in range(best_e, i):  # what the old model wrote from best_e on is void
                    jk = k - s
                    if 0 <= jk < n:
                        ok[jk] = False
                if best_e > seg_start:
                    seg[nseg, 0] = seg_start
                    seg[nseg, 1] = best_e
                    seg[nseg, 2] = s
                    seg_off[nseg, :] = o
                    nseg += 1
                if best_a > best_e:
                    garb[ngarb, 0] = best_e
                    garb[ngarb, 1] = best_a
                    ngarb += 1
                s = best_s
                for c in range(ncomp):
                    o[c] = best_o[c]
                    drift[c] = 0.0
                seg_start = best_a
                cool = i + 1
                i = best_a
                continue
            cool = i + LOOK
            for c in range(ncomp):
                drift[c] = 0.0
        _write_canvas(i, j, o, xb, xr, tex_bot, tex_right, cb, cr, ct, ctr, ok, B)
        i += 1
    end = min(i, n)
    if end > seg_start:
        seg[nseg, 0] = seg_start
        seg[nseg, 1] = end
        seg[nseg, 2] = s
        seg_off[nseg, :] = o
        nseg += 1
    return seg[:nseg].copy(), seg_off[:nseg].copy(), garb[:ngarb].copy(), stats


def comp_vector(values: tuple[float, ...], ncomp: int) -> np.ndarray:
    """A per-component tunable as float64 (ncomp,): the last value repeats for missing components."""
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size < ncomp:
        v = np.concatenate([v, np.full(ncomp - v.size, v[-1])])
    return v[:ncomp].copy()


def comp_bounds(comp: np.ndarray, ncomp: int) -> np.ndarray:
    """Column start of each component in a concatenated feature, plus the end: int64 (ncomp + 1,)."""
    return np.searchsorted(comp, np.arange(ncomp + 1)).astype(np.int64)


def segment_stream(
    feats,
    status: np.ndarray,
    mcu_cols: int,
    steps: np.ndarray,
    thumb=None,
    params: SegmentParams | None = None,
    stats: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segment the decoded MCU stream.

    feats: McuFeatures of the decoded planes; status: uint8 (N,) MCU flags in raster order; steps:
    float64 (ncomp,) DC step per component in sample units (q0 / 8); thumb: ThumbReference or None.
    Returns (segments int64 (S, 3) rows [start, end, shift] in decoded MCUs, offsets float32
    (S, ncomp), garbage int64 (G, 2) decoded ranges [start, end)). stats: optional int64 (4,) array
    that receives counters (searches, accepted breaks, offset-only searches, MCU-hypotheses scored).
    """
    p = params or SegmentParams()
    ncomp = feats.tex_bot.shape[1]
    fp = np.array([getattr(p, k) for k in _F_NAMES], np.float64)
    ip = np.array([getattr(p, k) for k in _I_NAMES], np.int64)
    if thumb is None:
        tmean = np.zeros((1, feats.means.shape[1]), np.float32)
        tsig = np.zeros((1, ncomp), np.float32)
    else:
        tmean, tsig = thumb.means, thumb.sigma
    f = feats
    xt = 1.5 * f.top - 0.5 * f.top2
    xb = 1.5 * f.bot - 0.5 * f.bot2
    xl = 1.5 * f.left - 0.5 * f.left2
    xr = 1.5 * f.right - 0.5 * f.right2
    B = np.stack([comp_bounds(f.e_comp, ncomp), comp_bounds(f.l_comp, ncomp), comp_bounds(f.m_comp, ncomp)])
    W = np.stack([comp_vector(v, ncomp) for v in (p.comp_weight, p.tau_floor, p.thumb_floor, p.tau_k)])
    flags = np.ascontiguousarray(status.reshape(-1)[: f.top.shape[0]], dtype=np.uint8)
    steps = np.asarray(steps, np.float64)
    segs, offs, garb, counters = _segment_kernel(
        xt, xb, xl, xr, f.means, f.tex_bot, f.tex_right, B, W, tmean, tsig, thumb is not None, flags,
        int(mcu_cols), steps, fp, ip,
    )  # fmt: skip
    if stats is not None:
        stats[:] = counters
    return segs, offs, garb
