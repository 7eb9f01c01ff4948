"""SCA for files with restart markers (DRI): every restart interval is its own segment.

An RST marker resets the DC predictors and tells the decoder where interval j starts (MCU j * DRI), so a
bit error cannot shift or offset anything past the end of its interval. Inside a damaged interval the
decoded MCUs are right up to the hit, then garbage, then (when the garbage decoded to fewer MCUs than
the data held) the rest of the interval's content shifted and offset, and the decoder fills what it ran
out of data for (``MCU_LOST``). So:

- an interval without any decoder event is trusted as decoded (offset 0, no shift);
- in a damaged interval (an MCU with ``MCU_RESYNC``, ``MCU_ERROR`` or ``MCU_LOST``, skipped bits, or a
  damage event such as a spurious marker: :func:`event_mcus`), the
  MCUs from the first event to the end of the interval are untrusted and filled; the :data:`BACK` MCUs
  before it (the damage window: the hit precedes the first error the decoder notices by a few MCUs,
  Huffman codes decode garbage silently for 3-5 MCUs) are filled from the cut of least expected error
  (:func:`window_holes`: the fill's error estimated on the trusted ring around the holes against each
  MCU's distance from it); with a thumbnail, the MCUs of damaged intervals before the window are also
  judged against it (``src.sca.refit.judge_garbage``), and the tail of any interval that sits at a DC
  offset from the thumbnail is filled too (:func:`silent_hits`: a hit the decoder did not notice);
- an interval without decoder events where the segment path found a DC offset from inside it to its
  end (a silent hit in a DC magnitude) shows the decode minus that offset when the thumbnail agrees
  (:func:`take_offset_tails`);
- the fill (:func:`src.sca.fill.fill_holes`: the thumbnail, or interpolation, with the level of the
  trusted neighbours spread in by push-pull; per hole the one that predicts the trusted ring around
  it better, :func:`src.sca.fill.choose_fill`) blends the end of each damaged interval into what follows.

numpy only (the fill and garbage judgement are SCA's own).
"""

from __future__ import annotations

import numpy as np

from src.sca.fill import choose_fill, fill_holes, tile_sq_error
from src.sca.refit import RefitParams, judge_garbage
from src.sca.segment import comp_vector
from src.sca.tiles import dc_steps, relayout

MCU_RESYNC, MCU_LOST, MCU_ERROR = 1, 2, 8  # src.jpeg's MCU status flags (src.jpeg.entropy)
#: decoder event kinds that are no damage inside the scan (see :func:`event_mcus`)
_NOT_DAMAGE = ("restart", "extraneous_bytes", "no_eoi", "events_dropped")
#: MCUs before the first decoder event of an interval that are untrusted too (where the hit may lie)
BACK = 4
#: a silent hit's offset tail: at least this many MCUs, this share of them off the thumbnail, and in an
#: interval without decoder events this factor on the threshold (see :func:`silent_hits`; real camera
#: thumbnails disagree with their image by several robust sigmas in places, while a hit's DC offset is
#: tens of them: at 1.5 twelve camera files lost up to 10 dB to false tails, at 5 none)
MIN_TAIL = 2
TAIL_SHARE = 0.8
QUIET_FACTOR = 5.0


def uses_restarts(decoded) -> bool:
    """The scan has restart markers (DRI > 0) that the decoder resynchronised on."""
    return int(getattr(decoded, "restart_interval", 0) or 0) > 0


def damaged_intervals(decoded) -> list[tuple[int, int, int]]:
    """[(start, end, first_event)] raster MCU ranges [start, end) of the restart intervals holding a decoder
    event (resync, error, lost MCU or skipped bits), with the first such MCU."""
    ri = int(decoded.restart_interval)
    status = np.asarray(decoded.mcu_status, np.uint8).reshape(-1)
    skipped = np.asarray(getattr(decoded, "mcu_skipped_bits", np.zeros_like(status))).reshape(-1)
    bad = ((status & (MCU_RESYNC | MCU_LOST | MCU_ERROR)) != 0) | (skipped > 0)
    n = status.size
    bad[event_mcus(decoded, n)] = True
    out = []
    for m0 in np.unique(np.flatnonzero(bad) // ri * ri):
        m0 = int(m0)
        m1 = min(m0 + ri, n)
        out.append((m0, m1, m0 + int(np.argmax(bad[m0:m1]))))
    return out


def event_mcus(decoded, n: int) -> np.ndarray:
    """int64 raster MCU indices of the decoder events that mark damage inside the scan, flagged or not: a
    ``spurious_marker`` (a non-RST marker the decoder removed and decoded on: the MCUs after it are
    garbage although none is flagged; libjpeg stops there), resynchronisations, fills, restart markers
    out of sequence. Not: restart markers, header events (``extraneous_bytes``), ``no_eoi`` and
    ``events_dropped``, nor markers after the start of the last MCU (trailing bytes, as in
    ``src.sca.evidence``)."""
    bitpos = np.asarray(getattr(decoded, "mcu_bitpos", np.zeros(0, np.int64))).reshape(-1)
    last = int(bitpos.max()) if bitpos.size else -1
    out = []
    for e in getattr(decoded, "events", None) or []:
        if e.kind in _NOT_DAMAGE or not 0 <= e.mcu < n:
            continue
        if e.kind == "spurious_marker" and not 0 <= e.bitpos < last:
            continue
        out.append(int(e.mcu))
    return np.asarray(out, np.int64)


def restart_layout(
    decoded, feats, thumb=None, params: RefitParams | None = None, segment_layout=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, off_at, hole) for :func:`src.sca.compensate.render_uint8`: every output MCU shows its own decoded
    MCU with no offset (int64 (N,), float32 (N, ncomp)); ``hole`` bool (N,): the MCUs to fill (see the
    module docstring). feats: ``McuFeatures`` of the decoded planes; thumb: a ``ThumbReference`` or None.
    segment_layout: None or (source int64 (N,), -1 for a hole; offsets float32 (N, ncomp)) of the segment
    path on the same decode (``compensate(..., restarts=False)``): an interval with holes takes it where
    it realigned the interval's own content (:func:`take_segment_layout`)."""
    status = np.asarray(decoded.mcu_status, np.uint8).reshape(-1)
    n = status.size
    src = np.arange(n, dtype=np.int64)
    off_at = np.zeros((n, len(decoded.planes)), np.float32)
    hole = (status & MCU_LOST) != 0
    near = np.zeros(n, bool)
    window = np.zeros(n, bool)  # the MCUs before an interval's first event where the hit may lie
    for m0, m1, first in damaged_intervals(decoded):
        hole[first:m1] = True
        window[max(m0, first - BACK) : first] = True
        near[m0:m1] = True
    evidence = hole | window  # lost MCUs and the decoder's damage windows
    p = params or RefitParams()
    if thumb is not None:
        # the rest of the damaged intervals judged against the thumbnail and the neighbours; the window
        # is decided below on how well its decode fits the fill
        if near.any():
            hole |= judge_garbage(feats, src, off_at, int(decoded.mcu_cols), thumb, p, near) & near & ~window
        hole |= silent_hits(feats, thumb, int(decoded.restart_interval), near, p) & ~window
    # the window before the first event (the decoder often notices a hit only at the interval's last
    # MCU: the MCUs before it are mostly intact, and a fill costs more than they do)
    hole |= window_holes(decoded, feats, hole, window, thumb, p)
    if segment_layout is not None:
        was_hole, src0, off0 = hole, src, off_at
        tol = dc_tolerance(decoded, off_at.shape[1])
        src, off_at, hole = take_segment_layout(
            src, off_at, hole, *segment_layout, int(decoded.restart_interval), (status & MCU_LOST) != 0, tol
        )
        # the MCUs shown here keep this layout: the decode before an interval's hit is right as it is (the
        # restart marker resets the DC predictors) and was judged against the thumbnail here
        keep = ~was_hole
        src, off_at, hole = np.where(keep, src0, src), np.where(keep[:, None], off0, off_at), hole & ~keep
        same = (src == src0) & (np.abs(off_at - off0) <= tol).all(axis=1)
        hole = hole | (was_hole & same)  # the same content as judged here: that judgement stands
        # content the segment path shows where the decoder's evidence said damage: judged again here with
        # the thresholds next to a break (elsewhere the segment path's own judgement holds)
        new = was_hole & ~hole & evidence
        p = params or RefitParams()
        if new.any():
            cols = int(decoded.mcu_cols)
            hole = hole | (judge_garbage(feats, np.where(hole, -1, src), off_at, cols, thumb, p, new) & new)
        new = was_hole & ~hole
        if new.any():
            # every MCU shown where this path filled: shown where that costs less than its fill
            show, fill = show_costs(decoded, feats, src, off_at, hole, new, thumb, p)
            hole = hole | (new & (show > fill))
        # intervals without decoder events where the segment path found a DC offset tail: a silent hit,
        # taken where the offsets bring the tail nearer the thumbnail
        ri = int(decoded.restart_interval)
        src1, off1, hole1 = take_offset_tails(src, off_at, hole, *segment_layout, ri, near, tol)
        changed = (src1 != src) | (off1 != off_at).any(axis=1) | (hole1 != hole)
        if changed.any() and thumb is not None:
            before = _interval_sums(np.square(thumb_z(feats, thumb, p, src, off_at)).sum(axis=1), changed, ri)
            after = _interval_sums(np.square(thumb_z(feats, thumb, p, src1, off1)).sum(axis=1), changed, ri)
            take = np.repeat(after < before, ri)[: src.size]
            src, off_at, hole = (
                np.where(take, src1, src),
                np.where(take[:, None], off1, off_at),
                np.where(take, hole1, hole),
            )
    return src, off_at, hole


def _interval_sums(values: np.ndarray, mask: np.ndarray, ri: int) -> np.ndarray:
    """float64 (intervals,): the sum of float (N,) ``values`` over the ``mask`` MCUs of each restart interval
    of ``ri`` MCUs."""
    n = values.size
    return np.bincount(np.arange(n) // ri, np.where(mask, values, 0.0), minlength=-(-n // ri))


def take_offset_tails(
    src: np.ndarray,
    off_at: np.ndarray,
    hole: np.ndarray,
    seg_src: np.ndarray,
    seg_off: np.ndarray,
    ri: int,
    damaged: np.ndarray,
    tol: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per restart interval without decoder events (bool (N,) ``damaged`` false there), the segment path's
    DC offsets where they are a silent hit's signature: a bit error in a DC magnitude keeps every code
    length, so the decoder notices nothing, and the offset runs from the hit to the interval's end (the
    restart marker resets the predictors). Taken when the segment path shows every MCU of the interval it
    shows in place (no shift), its offsets beyond ``tol`` (refit noise, :func:`dc_tolerance`) form a tail
    [k, end) of the shown MCUs, not one carried over the restart marker from the interval before, and its
    holes (its garbage judgement: the hit's own MCUs) lie from :data:`BACK` MCUs before k on: the MCUs
    from k show the decode minus those offsets and are trusted (this path's thumbnail judgement,
    :func:`silent_hits`, could only fill them), those before k the decode as it is, the holes are
    filled. An offset that does not last to the interval's end, holes far from it or a move are no hit
    this path can explain: left alone. :func:`restart_layout` keeps an interval taken here only where
    its squared thumbnail residual (:func:`thumb_z`) over the changed MCUs drops. Arguments as
    :func:`take_segment_layout`; returns the merged layout."""
    src, off_at, hole = src.copy(), off_at.copy(), hole.copy()
    seg_src = np.asarray(seg_src, np.int64).reshape(-1)
    seg_off = np.asarray(seg_off, np.float32).reshape(src.size, -1)
    n = src.size
    for m0 in range(0, n, ri):
        m1 = min(m0 + ri, n)
        s = seg_src[m0:m1]
        shown = s >= 0
        if damaged[m0:m1].any() or (s[shown] != np.arange(m0, m1)[shown]).any():
            continue
        o = seg_off[m0:m1]
        big = shown & (np.abs(o) > tol).any(axis=1)
        if not big.any():
            continue
        k = int(np.argmax(big))
        if (shown[k:] & ~big[k:]).any() or (~shown[: max(k - BACK, 0)]).any():
            continue
        # an offset from the interval's first MCU on that the interval before ends with too is the segment
        # path's offset carried over a restart marker, which no hit makes
        if k == 0 and m0 > 0 and seg_src[m0 - 1] >= 0 and (np.abs(seg_off[m0 - 1] - o[0]) <= tol).all():
            continue
        src[m0:m1] = np.where(shown, np.arange(m0, m1), -1)
        off_at[m0:m1] = np.where(big[:, None], o, 0.0)
        hole[m0:m1] = ~shown
    return src, off_at, hole


def window_holes(decoded, feats, hole: np.ndarray, window: np.ndarray, thumb, p: RefitParams) -> np.ndarray:
    """bool (N,): the MCUs of the damage windows (bool (N,) ``window``: from :data:`BACK` MCUs before an
    interval's first decoder event up to it) to fill, given the other holes (bool (N,) ``hole``).

    A hit makes garbage from its MCU to the interval's end (the DC predictors run on, wrong, to the next
    restart marker), so the holes of a window are a suffix of it: the cut k of each window [w0, w1) is
    the one of least expected error, sum of show(j) for j < k plus fill(j) for j >= k. fill(j): the
    error of the fill there, estimated on the trusted MCUs around the holes (``src.sca.fill.choose_fill``,
    which also picks thumbnail or interpolation); show(j) = max(d(j) - fill(j), 0), with d(j) the mean
    squared difference of the decoded MCU from that fill: an intact MCU differs from the fill by the
    fill's own error, garbage independently of it by its error on top (squares add). All errors are
    mean squares per sample over every component (sample units squared). thumb: ``ThumbReference`` or
    None (interpolation only)."""
    out = np.zeros_like(window)
    if not window.any():
        return out
    n = window.size
    show, fill = show_costs(
        decoded, feats, np.arange(n), np.zeros((n, feats.m_comp.max() + 1)), hole, window, thumb, p
    )
    edges = np.flatnonzero(np.diff(np.concatenate([[0], window.astype(np.int8), [0]])))
    for w0, w1 in zip(edges[0::2], edges[1::2], strict=True):
        # cost of cut k = w0 + i: show [w0, k), fill [k, w1)
        cost = np.concatenate([[0.0], np.cumsum(show[w0:w1])]) + np.concatenate(
            [np.cumsum(fill[w0:w1][::-1])[::-1], [0.0]]
        )
        k = w0 + int(np.argmin(cost))
        out[k:w1] = True
    return out


def show_costs(
    decoded, feats, src, off_at, hole, cand, thumb, p: RefitParams
) -> tuple[np.ndarray, np.ndarray]:
    """(show, fill) float64 (N,) each: the expected error of showing / filling each candidate MCU (bool
    (N,) ``cand``) of a layout (output MCU j shows decoded MCU src[j] minus off_at[j]; bool (N,) ``hole``:
    the MCUs filled anyway), mean squares per sample over every component (sample units squared).

    The candidates and holes are filled together (``src.sca.fill.choose_fill`` picks thumbnail or
    interpolation per hole on the trusted ring around it and estimates the fill's error there: fill);
    show = max(d - fill, 0) with d the mean squared difference of the shown MCU from that fill: an
    intact MCU differs from the fill by the fill's own error, garbage independently of it by its error
    on top (squares add). thumb: ``ThumbReference`` or None (interpolation only)."""
    rows, cols = int(decoded.mcu_rows), int(decoded.mcu_cols)
    test = hole | cand
    planes = relayout(
        [np.asarray(x, np.float32) for x in decoded.planes], np.where(test, -1, src), off_at, rows, cols
    )
    shown = relayout(
        [np.asarray(x, np.float32) for x in decoded.planes], np.where(hole, -1, src), off_at, rows, cols
    )
    means = feats.means[np.maximum(src, 0)] - off_at[:, feats.m_comp]
    args = (means, feats.m_comp, rows, cols, thumb, p.fill_gain, p.fill_clamp)
    use_thumb, fill = choose_fill(shown, test, *args)
    pred = fill_holes(planes, test, *args, thumb_tiles=use_thumb)
    return np.maximum(tile_sq_error(pred, shown, rows, cols) - fill, 0.0), fill


def thumb_z(feats, thumb, p: RefitParams, src: np.ndarray | None = None, off_at: np.ndarray | None = None):
    """float64 (N, ncomp): the calibrated thumbnail residual of a layout (output MCU j shows decoded MCU
    src[j] minus off_at[j]; default the decode as it is). Per MCU and component the median over the
    component's blocks of (block mean - thumbnail block mean) / (``thumb_floor`` + ``thumb_k`` * thumbnail
    variation), signed, centred on its median over the image and divided by its spread there (robust:
    1.4826 MAD, at least 1): real camera thumbnails disagree with their image by their own tone curve and
    blur, a hit's DC offset or garbage by tens of these units."""
    ncomp = int(feats.m_comp.max()) + 1
    means = feats.means
    if src is not None:
        means = feats.means[np.maximum(src, 0)] - off_at[:, feats.m_comp]
    sig = comp_vector(p.thumb_floor, ncomp)[feats.m_comp][None, :] + p.thumb_k * thumb.sigma[:, feats.m_comp]
    r = (means - thumb.means) / sig
    z = np.stack([np.median(r[:, feats.m_comp == c], axis=1) for c in range(ncomp)], 1)  # (N, ncomp)
    z = z - np.median(z, axis=0)
    return z / np.maximum(1.4826 * np.median(np.abs(z), axis=0), 1.0)


def dc_tolerance(decoded, ncomp: int) -> np.ndarray:
    """float32 (ncomp,): two DC quantisation steps per component in the planes' units (``dc_steps``), the
    offsets a refit finds on noise (as ``src.sca.compensate._merge_detours``); a hit's offset is far more."""
    return 2.0 * dc_steps(decoded, ncomp).astype(np.float32) + 1e-3


def take_segment_layout(
    src: np.ndarray,
    off_at: np.ndarray,
    hole: np.ndarray,
    seg_src: np.ndarray,
    seg_off: np.ndarray,
    ri: int,
    lost: np.ndarray | None = None,
    tol: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per restart interval [m0, m1) with holes here, the segment path's layout instead when it found what
    this path cannot: the hit's shift or DC offset inside the interval. The decoder notices a hit only
    when the interval's data runs out (often at its last MCU: a long interval decodes its shifted content
    silently), so the interval path fills everything its thumbnail judgement rejects, while the segment
    path realigns the content after the hit and fills only its garbage. Taken when (a) every MCU it shows
    comes from the same interval (a restart marker ends every shift: content from elsewhere is a
    misplacement) and none is one the decoder lost (its filler; a lost position may show the content
    realigned into it), (b) it moves or offsets some MCU of the interval (a layout equal to the decode shows
    the garbage this path rejected on the decoder's evidence) and (c) it leaves fewer holes there. The
    MCUs it shows where this path filled are judged again by :func:`restart_layout` (thumbnail and
    neighbours, ``src.sca.refit.judge_garbage`` with the thresholds next to a break) where they lie in
    the decoder's damage window of the interval (from :data:`BACK` MCUs before its first event); the
    rest keeps the segment path's own judgement (its thresholds next to its breaks): the interval path's
    thumbnail judgement of the whole interval there was made on the unaligned decode.

    src, off_at, hole: this path's layout (int64 (N,), float32 (N, ncomp), bool (N,)); seg_src: int64 (N,)
    the segment path's source MCU per output MCU, -1 for a hole; seg_off: float32 (N, ncomp) its DC
    offsets (the decoded planes' units); ri: the restart interval in MCUs; lost: bool (N,) the MCUs the
    decoder lost (``MCU_LOST``) or None; tol: float (ncomp,) or scalar, the offset (planes' units) below
    which an offset is refit noise, no change (:func:`dc_tolerance`). Returns the merged layout."""
    src, off_at, hole = src.copy(), off_at.copy(), hole.copy()
    seg_src = np.asarray(seg_src, np.int64).reshape(-1)
    seg_off = np.asarray(seg_off, np.float32).reshape(src.size, -1)
    n = src.size
    for m0 in np.unique(np.flatnonzero(hole) // ri * ri):
        m0 = int(m0)
        m1 = min(m0 + ri, n)
        s = seg_src[m0:m1]
        shown = s >= 0
        if not shown.any() or (s[shown] < m0).any() or (s[shown] >= m1).any():
            continue  # (a)
        if lost is not None and lost[s[shown]].any():
            continue  # (a)
        moved = (s[shown] != np.arange(m0, m1)[shown]).any() or (np.abs(seg_off[m0:m1][shown]) > tol).any()
        if not moved or int((~shown).sum()) >= int(hole[m0:m1].sum()):
            continue  # (b), (c)
        src[m0:m1] = np.where(shown, s, np.arange(m0, m1))
        off_at[m0:m1] = np.where(shown[:, None], seg_off[m0:m1], 0.0)
        hole[m0:m1] = ~shown
    return src, off_at, hole


def silent_hits(feats, thumb, ri: int, damaged: np.ndarray, p: RefitParams) -> np.ndarray:
    """bool (N,): the tails of restart intervals that carry a DC offset against the thumbnail (a hit the
    decoder did not notice: DC offsets persist to the end of the interval).

    Per MCU and component: z = the median over the component's blocks of (block mean - thumbnail block
    mean) / (``thumb_floor`` + ``thumb_k`` * thumbnail variation), a signed residual, centred on its median
    over the image and divided by its spread there (robust: 1.4826 MAD, at least 1). A tail [k, end) of
    at least :data:`MIN_TAIL` MCUs is an offset when z at k and at least :data:`TAIL_SHARE` of the tail's
    z lie beyond ``garbage_thumb_near`` on one side, in one component (in an interval without decoder
    events, beyond :data:`QUIET_FACTOR` times that: the evidence must be stronger where the decoder saw
    nothing). One MCU that differs from the blurry thumbnail (a sharp detail) is no tail."""
    # calibrated on the whole image: a thumbnail that disagrees everywhere (its own tone curve, a slight
    # misalignment) raises the bar instead of flagging every interval
    z = thumb_z(feats, thumb, p)
    n = z.shape[0]
    limit = np.where(damaged, p.garbage_thumb_near, QUIET_FACTOR * p.garbage_thumb_near)[:, None]
    pos, neg = z > limit, z < -limit
    out = np.zeros(n, bool)
    for m0 in range(0, n, ri):
        m1 = min(m0 + ri, n)
        if m1 - m0 < MIN_TAIL:
            continue
        for sign in (pos[m0:m1], neg[m0:m1]):
            if not sign.any():
                continue
            # share of the tail [k, end) beyond the limit, per component
            tail = np.cumsum(sign[::-1], axis=0)[::-1] / np.arange(m1 - m0, 0, -1)[:, None]
            ok = sign & (tail >= TAIL_SHARE)
            ok[m1 - m0 - MIN_TAIL + 1 :] = False
            if ok.any():
                k = int(np.flatnonzero(ok.any(axis=1))[0])
                out[m0 + k : m1] = True
    return out
