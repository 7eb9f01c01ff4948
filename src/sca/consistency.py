"""2-D consistency of a segmentation on the corrected canvas: hidden offset-only changes inside a segment.

A hit can change a DC predictor without garbling a whole MCU or shifting the stream (a flipped bit in a DC
difference code): the content from decoded MCU p on carries a few more levels. Online, a change of a few
levels in textured content is invisible; left in, it biases every later offset (the joint refit chains
the segments through their borders) by the same few levels over the rest of the image.

On the corrected canvas it has a signature no content produces by itself: the vertical jump between each
MCU and the restored MCU above, taken as the median over the edge pixels (a DC offset moves the whole edge
uniformly; an image edge has structure), equals the change for exactly one MCU row's worth of positions
[p, p + cols) of the segment and is zero before and after (from p + cols on the MCU above carries the change
too). A box filter of that length over the jump sequence finds it; it is accepted when the box mean stands
out from the segment's own jump noise (robust sigma) by ``z_min`` standard errors, the boxes one row
before and after do not, and the change is at least one DC step. The segment is then split at p (same
shift, the offset changed by the box median); the refit that follows estimates the new pair exactly.
Cost: O(N) per pass (cumulative sums), bounded by ``max_splits`` per pass.
"""

from __future__ import annotations

import numpy as np

from src.sca.tiles import McuFeatures


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
    b, a = src[j], src[j - cols]
    for c in range(ncomp):
        sel = f.e_comp == c
        top, top2 = f.top[b][:, sel], f.top2[b][:, sel]
        bot, bot2 = f.bot[a][:, sel], f.bot2[a][:, sel]
        jump = (top - bot) - 0.5 * ((bot - bot2) + (top2 - top))
        out[j, c] = np.median(jump, axis=1) - (off_at[j, c] - off_at[j - cols, c])
    return out


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
        if j1 - j0 < 3 * cols:
            continue
        dk = d[j0:j1]
        valid_all = np.isfinite(dk) & (seg_of[j0:j1] == k)[:, None]
        best = None
        for c in range(ncomp):
            valid = valid_all[:, c]
            if valid.sum() < 2 * cols:
                continue
            v = dk[valid, c]
            med = np.median(v)
            sigma = max(1.4826 * np.median(np.abs(v - med)), 0.5 * steps[c])
            clipped = np.clip(np.where(valid, dk[:, c], 0.0), -4.0 * sigma, 4.0 * sigma)
            sums, cnt = _box(clipped, valid, cols)
            z = sums / (sigma * np.sqrt(np.maximum(cnt, 1)))
            z[cnt < cols // 2] = 0.0
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
