"""Ground-truth alignment of a corrupted decode against the clean one, and the error census of an SCA result.

A decoded MCU whose AC content (every block minus its own mean) equals that of a clean MCU is that
clean MCU, displaced and offset: this recovers the true shift and DC offset of every decoded MCU
without knowing where the bit errors were. Used by tests and ``benchmarks/sca_quality.py``; not
needed at restore time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.sca.tiles import tile_shapes


@dataclass
class TrueAlignment:
    """true_pos: int64 (N,) output MCU of each decoded MCU (-1: garbage / no data); offset: float32
    (N, ncomp) offset carried by each decoded MCU; source: int64 (N,) decoded MCU that holds each
    output MCU (-1: lost)."""

    true_pos: np.ndarray
    offset: np.ndarray
    source: np.ndarray


def _signatures(planes: list[np.ndarray], rows: int, cols: int) -> np.ndarray:
    """Per-MCU AC signature, float64 (N, P): every 8x8 block minus its own mean."""
    sig = []
    for p, (th, tw) in zip(planes, tile_shapes(planes, rows, cols), strict=True):
        t = p.reshape(rows, th // 8, 8, cols, tw // 8, 8).transpose(0, 3, 1, 4, 2, 5)
        t = t.reshape(rows * cols, (th // 8) * (tw // 8), 64).astype(np.float64)
        m = t.mean(axis=2)
        sig.append((t - m[..., None]).reshape(rows * cols, -1))
    return np.concatenate(sig, axis=1)


def true_alignment(corrupted, clean, tol: float = 1.5, search: int = 160) -> TrueAlignment:
    """Match every decoded MCU of ``corrupted`` to the clean MCU with the same AC content (see module doc).

    The position implied by the previous match is tried first (so flat, ambiguous MCUs keep the
    running shift); otherwise the nearest match within ``search`` MCUs. ``tol``: largest sample
    difference of a match (the decoder's IDCT rounds a little differently when the DC changes).
    """
    rows, cols = clean.mcu_rows, clean.mcu_cols
    n = rows * cols
    sc = _signatures([np.asarray(p, np.float32) for p in clean.planes], rows, cols)
    sd = _signatures([np.asarray(p, np.float32) for p in corrupted.planes], rows, cols)
    sc32, sd32 = sc.astype(np.float32), sd.astype(np.float32)
    lost = (np.asarray(corrupted.mcu_status).reshape(-1) & 2) != 0
    true_pos = np.full(n, -1, np.int64)
    shift = 0
    for i in range(n):
        if lost[i]:
            continue
        j = i - shift
        if 0 <= j < n and np.abs(sd32[i] - sc32[j]).max() <= tol:
            true_pos[i] = j
            continue
        lo, hi = max(0, i - shift - search), min(n, i - shift + search + 1)
        err = np.abs(sc32[lo:hi] - sd32[i]).max(axis=1)
        cand = np.flatnonzero(err <= tol) + lo
        if cand.size:
            best = int(cand[np.argmin(np.abs(cand - (i - shift)))])
            true_pos[i] = best
            shift = i - best
    # offsets from the quantised DC maps: exact multiples of q0 / 8 (pixels are rounded by the IDCT)
    ncomp = len(clean.planes)
    offset = np.zeros((n, ncomp), np.float32)
    ok = true_pos >= 0
    for c in range(ncomp):
        step = float(np.asarray(clean.qtables[c]).reshape(-1)[0]) / 8.0
        first_dc = []
        for dec in (corrupted, clean):
            dc = np.asarray(dec.dc[c])
            by, bx = dc.shape[0] // rows, dc.shape[1] // cols
            first_dc.append(dc.reshape(rows, by, cols, bx)[:, 0, :, 0].reshape(-1).astype(np.float64))
        offset[ok, c] = (first_dc[0][ok] - first_dc[1][true_pos[ok]]) * step
    source = np.full(n, -1, np.int64)
    source[true_pos[ok]] = np.flatnonzero(ok)
    return TrueAlignment(true_pos, offset, source)


def alignment_census(result, truth: TrueAlignment, steps: np.ndarray) -> dict[str, int]:
    """Count output MCU positions by outcome (needs ``result.mcu_source`` / ``result.mcu_offsets``).

    content: positions whose true content survives somewhere in the decode; correct: shown from the
    right decoded MCU with every offset within half a DC step; offset_error: right MCU, an offset off
    by more; wrong_shift: shown from a decoded MCU that belongs elsewhere; shown_garbage: shown from a
    garbage decoded MCU; missed: filled although the content existed; filled_lost: filled, content
    truly lost.
    """
    src = result.mcu_source
    trusted = src >= 0
    true_src = truth.source
    n = src.size
    out = {"positions": n, "content": int((true_src >= 0).sum())}
    has = trusted & (true_src >= 0)
    same = has & (src == true_src)
    s = np.where(trusted, src, 0)
    off_err = np.abs(result.mcu_offsets - truth.offset[s]) > (0.5 * steps[None, :] + 1e-3)
    out["correct"] = int((same & ~off_err.any(axis=1)).sum())
    out["offset_error"] = int((same & off_err.any(axis=1)).sum())
    out["wrong_shift"] = int((trusted & (truth.true_pos[s] >= 0) & (src != true_src)).sum())
    out["shown_garbage"] = int((trusted & (truth.true_pos[s] < 0)).sum())
    out["missed"] = int((~trusted & (true_src >= 0)).sum())
    out["filled_lost"] = int((~trusted & (true_src < 0)).sum())
    return out
