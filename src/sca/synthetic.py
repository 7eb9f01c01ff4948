"""Known corruption applied to a clean decode: per-segment DC offsets, lost MCUs and garbage MCUs.

This is the ground-truth generator for SCA tests and diagnostics: it mimics what a bit error does to
the decoded MCU stream (the decoder outputs ``garbage`` random MCUs, the next ``lost`` true MCUs are
gone, every later block of component c carries an extra DC offset ``dc_delta[c] * q0[c] / 8``), and
it records the true placement of every decoded MCU so that results can be checked exactly.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np

from src.sca.errors import SCAError
from src.sca.tiles import dc_steps, relayout, tile_shapes

MCU_LOST = 2  # src.jpeg's flag for MCUs with no data left


@dataclass(frozen=True)
class Hit:
    """One simulated bit error: at output MCU ``mcu`` the decoder emits ``garbage`` random MCUs, the true MCUs
    [mcu, mcu + lost) are gone, and every later block of component c is offset by ``dc_delta[c]`` DC steps."""

    mcu: int
    lost: int
    garbage: int
    dc_delta: tuple[int, ...]


@dataclass
class SyntheticTruth:
    """Where each decoded MCU truly belongs.

    true_pos: int64 (N,) output MCU position of decoded MCU i, -1 for garbage / no data.
    offset: float32 (N, ncomp) offset carried by decoded MCU i (sample units).
    hits: the hits that were applied (those that fell inside the stream).
    """

    true_pos: np.ndarray
    offset: np.ndarray
    hits: list[Hit]


def random_hits(
    n_mcus: int, n_hits: int, ncomp: int, rng: np.random.Generator, max_lost: int = 4, max_garbage: int = 6
) -> list[Hit]:
    """Hits at random output positions with random lost/garbage counts and DC changes (up to ±60 steps)."""
    pos = np.sort(rng.choice(np.arange(8, max(9, n_mcus - 8)), size=n_hits, replace=False))
    hits = []
    for p in pos:
        delta = tuple(int(v) for v in rng.integers(-60, 61, size=ncomp))
        hits.append(
            Hit(int(p), int(rng.integers(1, max_lost + 1)), int(rng.integers(1, max_garbage + 1)), delta)
        )
    return hits


def _garbage_tile(th: int, tw: int, base: float, rng: np.random.Generator) -> np.ndarray:
    """Blocky noise like random Huffman bits give: random DC per 8x8 block plus strong texture."""
    dc = base + rng.normal(0.0, 80.0, size=(th // 8, tw // 8))
    tile = np.kron(dc, np.ones((8, 8))) + rng.normal(0.0, 30.0, size=(th, tw))
    return tile.astype(np.float32)


def corrupt_decoded(decoded, hits: list[Hit], rng: np.random.Generator | None = None):
    """Apply ``hits`` to a clean ``Decoded`` (any object with its fields). Returns (corrupted copy, truth)."""
    rng = rng or np.random.default_rng(0)
    rows, cols = decoded.mcu_rows, decoded.mcu_cols
    n = rows * cols
    planes = [np.asarray(p, np.float32) for p in decoded.planes]
    shapes = tile_shapes(planes, rows, cols)
    ncomp = len(planes)
    steps = dc_steps(decoded, ncomp).astype(np.float32)
    hits = sorted(hits, key=lambda h: h.mcu)
    for h in hits:
        if len(h.dc_delta) != ncomp or h.lost < 0 or h.garbage < 0:
            raise SCAError(f"hit {h} does not fit {ncomp} components / non-negative counts")

    src = np.full(n, -1, np.int64)  # true MCU shown at decoded i
    off = np.zeros((n, ncomp), np.float32)
    garbage_at: list[tuple[int, np.ndarray]] = []
    cur = np.zeros(ncomp, np.float32)
    i = j = 0
    applied = []
    hi = 0
    while i < n and j < n:
        if hi < len(hits) and hits[hi].mcu <= j:
            h = hits[hi]
            hi += 1
            applied.append(h)
            for _ in range(h.garbage):
                if i >= n:
                    break
                garbage_at.append((i, cur.copy()))
                off[i] = cur
                i += 1
            cur = cur + np.asarray(h.dc_delta, np.float32) * steps
            j += h.lost
            continue
        src[i] = j
        off[i] = cur
        i += 1
        j += 1
    status = np.zeros(n, np.uint8)
    status[i:] = MCU_LOST
    out = relayout(planes, src, np.zeros((n, ncomp), np.float32), rows, cols, fill=0.0)
    for ci, (th, tw) in enumerate(shapes):
        p = out[ci]
        for k in range(n):
            r, c = divmod(k, cols)
            tile = p[r * th : (r + 1) * th, c * tw : (c + 1) * tw]
            if src[k] >= 0:
                tile += off[k, ci]
            elif k < i:
                pass  # garbage, written below
            else:
                tile[...] = 128.0  # no data: the decoder fills mid-grey
        for k, base in garbage_at:
            r, c = divmod(k, cols)
            p[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = _garbage_tile(
                th, tw, 128.0 + float(base[ci]), rng
            )
    dc = []
    for ci, p in enumerate(out):
        h8, w8 = p.shape[0] // 8, p.shape[1] // 8
        m = p.reshape(h8, 8, w8, 8).mean(axis=(1, 3))
        dc.append(np.round((m - 128.0) / steps[ci]).astype(np.int32))
    from src.jpeg.decoder import Event

    # the generator's own word that the stream is damaged (src.sca.evidence): real decodes report events
    # for only some hits, SCA must find the rest from content
    events = [Event("synthetic_hit", h.mcu, -1, f"lost {h.lost}, garbage {h.garbage}") for h in applied]
    fields = {"planes": out, "dc": dc, "mcu_status": status.reshape(rows, cols), "events": events}
    if dataclasses.is_dataclass(decoded):
        bad = dataclasses.replace(decoded, **fields)
    else:
        bad = copy.copy(decoded)
        for k, v in fields.items():
            setattr(bad, k, v)
    return bad, SyntheticTruth(src, off, applied)
