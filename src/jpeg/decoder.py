"""``decode``: bytes -> ``Decoded`` (unclipped planes, DC map, per-MCU status, events, thumbnail).

Pipeline: ``markers.parse_header`` -> ``bitstream.unstuff`` -> ``entropy.decode_scan`` (numba, resync
strategy) -> ``idct`` per component (numba) -> ``Decoded``; RGB on request with ``Decoded.to_rgb`` /
``color.planes_to_rgb``. Scan-data corruption never raises; only an unusable header does (``JPEGError``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from src.jpeg import entropy as E
from src.jpeg.bitstream import unstuff
from src.jpeg.color import UPSAMPLE_MODES, blocks_to_rgb, planes_to_rgb
from src.jpeg.huffman import pack_tables
from src.jpeg.idct import COS, IDCT_METHODS, idct_float_plane, idct_islow_plane
from src.jpeg.markers import DEFAULT_MAX_PIXELS, ZIGZAG, Component, JPEGHeader, parse_header

STRATEGIES = {"paper": E.PAPER, "strict": E.STRICT, "aligned": E.ALIGNED}
FILL_MODES = ("dc", "grey")

DEFAULT_OPTIONS: dict[str, Any] = {
    "max_pixels": DEFAULT_MAX_PIXELS,  # pixel-count limit (None = no limit)
    "idct": "islow",  # "islow" (libjpeg's integer IDCT) or "float" (exact, as the paper's cv2.idct)
    "fill": "dc",  # lost MCUs: "dc" = keep the DC predictor, AC zero; "grey" = all zero (the paper's choice)
    "fill_truncated": "grey",  # MCUs after the end of a truncated file's data (no EOI): as libjpeg, or "dc"
    "check_dc_category": False,  # error if a DC magnitude category > 11
    "check_ac_size": False,  # error if an AC magnitude size > 10
    "check_zrl": False,  # error if a ZRL runs past coefficient 63
    "check_range": False,  # error if a dequantised coefficient exceeds the 8-bit DCT range
    "max_retry_bits": 4096,  # per-MCU cap on skipped bits, then accept with MCU_ERROR (None = no cap)
    "work_factor": 64.0,  # failed-attempt work budget = work_factor * scan bits + work_min_bits
    "work_min_bits": 1 << 20,
    "aligned_block_bytes": 16,  # cipher block size (aligned strategy)
    "aligned_blocks": 4,  # block boundaries searched past the error (aligned)
    "aligned_confirm": 3,  # MCUs that must decode cleanly from a resume point (aligned)
    "aligned_window": 64,  # bit offsets tried after each boundary (aligned)
    "max_events": 20_000,  # events kept from the entropy decoder (the rest are counted)
}


class Event(NamedTuple):
    """Something the decoder noticed. ``mcu``: raster MCU index; ``bitpos``: bit in the unstuffed scan
    (-1: none). Kinds (``kind``), sorted by ``mcu``:

    - ``extraneous_bytes`` (mcu 0, bitpos -1): stray bytes between header segments skipped (libjpeg's
      "N extraneous bytes before marker"); the detail gives the count, the marker and the file offset;
    - ``restart`` / ``restart_resync`` / ``lost_interval``: RSTn handling of DRI files (at the interval's
      first MCU);
    - ``retry`` / ``aligned_resync`` / ``retry_cap`` / ``retry_budget``: resynchronisation, at the MCU that
      was decoded after the skipped bits;
    - ``eof_fill`` / ``error_fill``: at the first filled MCU; that MCU and the rest of its restart interval
      (or of the image) got no data (``MCU_LOST``);
    - ``spurious_marker``: a non-RST marker removed from the scan, at the MCU being decoded there;
    - ``erased_run`` (no DRI): a run of >= ``ERASED_MIN_PAIRS`` ``FF FF`` pairs (erased flash / sector read
      as 0xFF) at the first MCU decoded after it: the MCUs the run held (as many as were missing at the end
      of the scan) are placed there as ``MCU_LOST`` and the later MCUs moved back to their own places; no
      ``eof_fill`` or per-pair ``spurious_marker`` events then;
    - ``no_eoi`` (last MCU): the file has no FFD9 after the scan (truncated);
    - ``events_dropped``: more events than ``max_events`` (the rest are counted, not kept).
    """

    kind: str
    mcu: int
    bitpos: int
    detail: str


class LazyPlanes(Sequence):
    """The islow component planes of ``Decoded.planes`` (float32 (rows, cols) each), transformed on first
    access: ``decode(...).to_rgb()`` takes the fused path (``color.blocks_to_rgb``) and never makes them.
    A sequence like the list it stands for (index, iterate, ``len``, ``list(...)``); picklable."""

    def __init__(self, coef, nzk, dc, comp_off, comp_brows, comp_bcols, qt):
        self._args = (coef, nzk, dc, comp_off, comp_brows, comp_bcols, qt)
        self._planes: list[np.ndarray] | None = None

    @property
    def ready(self) -> bool:
        """True once the planes exist."""
        return self._planes is not None

    def _get(self) -> list[np.ndarray]:
        if self._planes is None:
            coef, nzk, dc, comp_off, comp_brows, comp_bcols, qt = self._args
            planes = []
            for i in range(len(comp_off)):
                off, br, bc = int(comp_off[i]), int(comp_brows[i]), int(comp_bcols[i])
                plane = np.empty((br * 8, bc * 8), dtype=np.float32)
                idct_islow_plane(coef, nzk, dc, off, br, bc, qt[i], plane)
                planes.append(plane)
            self._planes = planes
        return self._planes

    def __len__(self) -> int:
        return len(self._args[3])

    def __getitem__(self, i):
        return self._get()[i]

    def __iter__(self):
        return iter(self._get())

    def __repr__(self) -> str:
        return f"LazyPlanes({len(self)} planes, {'made' if self.ready else 'not made yet'})"

    def to_rgb(self, components, width: int, height: int, upsample: str, color: str) -> np.ndarray:
        """uint8 (height, width, 3) as ``planes_to_rgb(self, ..., clip=True)``, from the blocks."""
        coef, nzk, dc, comp_off, comp_brows, comp_bcols, qt = self._args
        rows = int(comp_brows[0]) // components[0].v
        args = (coef, nzk, dc, comp_off, comp_bcols, qt, components, width, height, rows)
        return blocks_to_rgb(*args, upsample, color)


@dataclass
class Decoded:
    """Result of ``decode``. Array layouts in the field comments; MCU flags: ``MCU_OK`` 0, ``MCU_RESYNC`` 1
    (a resync started at this MCU), ``MCU_LOST`` 2 (no data: filled), ``MCU_RESTART`` 4 (an RST reset the
    predictors just before it), ``MCU_ERROR`` 8 (decoded with an error accepted: retry cap or budget)."""

    width: int
    height: int
    components: tuple[Component, ...]
    mcu_cols: int
    mcu_rows: int
    mcu_width: int  # 8 * hmax pixels
    mcu_height: int  # 8 * vmax pixels
    # float32 (mcu_rows*8*v, mcu_cols*8*h) per component, level-shifted, unclipped (islow: a LazyPlanes,
    # transformed on first access; a list otherwise)
    planes: Sequence[np.ndarray]
    dc: list[np.ndarray]  # int32 (mcu_rows*v, mcu_cols*h) per component: quantised DC after DPCM
    qtables: list[np.ndarray]  # uint16 (64,) natural order per component
    mcu_status: np.ndarray  # uint8 (mcu_rows, mcu_cols) MCU_* bit flags
    mcu_bitpos: np.ndarray  # int64 (mcu_rows, mcu_cols) start bit in the unstuffed scan, -1 if lost
    mcu_skipped_bits: np.ndarray  # int32 (mcu_rows, mcu_cols) bits skipped by resync before the MCU
    events: Sequence[Event]  # a LazyEvents from decode (built on first access), sorted by mcu
    thumbnail: bytes | None
    strategy: str
    coefficients: list[np.ndarray] = field(repr=False)  # int16 (mcu_rows*v, mcu_cols*h, 64) natural order
    color: str = "ycbcr"  # "ycbcr", "rgb" or "gray"
    scan_bits: int = 0  # length of the unstuffed scan in bits
    restart_interval: int = 0
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    orientation: int | None = None  # EXIF Orientation (1..8; None: absent): planes are in stored orientation

    def to_rgb(self, clip: bool = True, upsample: str = "fancy") -> np.ndarray:
        """uint8 (H, W, 3) RGB (libjpeg's arithmetic) if ``clip``, else float32 (H, W, 3) unclipped 0..255."""
        p = self.planes
        if clip and isinstance(p, LazyPlanes) and not p.ready:  # fused IDCT + colour: same pixels
            return p.to_rgb(self.components, self.width, self.height, upsample, self.color)
        return planes_to_rgb(p, self.components, self.width, self.height, upsample, clip, self.color)

    def count(self, kind: str) -> int:
        """Number of events of one kind."""
        return sum(1 for e in self.events if e.kind == kind)


def _resolve(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; allowed: {', '.join(STRATEGIES)}")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown decode option(s) {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    if opts["idct"] not in IDCT_METHODS:
        raise ValueError(f"idct={opts['idct']!r}; allowed: {', '.join(IDCT_METHODS)}")
    for key in ("fill", "fill_truncated"):
        if opts[key] not in FILL_MODES:
            raise ValueError(f"{key}={opts[key]!r}; allowed: {', '.join(FILL_MODES)}")
    return opts


def _event_detail(kind: int, a: int, b: int) -> str:
    names = E.ERROR_NAMES
    if kind == E.EV_RESTART:
        return f"RST{a}"
    if kind == E.EV_RESTART_RESYNC:
        found, action = b >> 3, b & 7
        what = ("stale marker skipped", "marker of a later interval: this interval lost", "accepted")[action]
        return f"expected RST{a}, found RST{found}: {what}"
    if kind == E.EV_LOST_INTERVAL:
        return f"interval {a}: no data, {b} MCUs filled"
    if kind == E.EV_RETRY:
        return f"skipped {a} bits after {names[b]}"
    if kind == E.EV_EOF_FILL:
        return f"segment data ended: {a} MCUs filled (interval {b})"
    if kind == E.EV_ERROR_FILL:
        return f"{names[b]}: {a} MCUs filled"
    if kind == E.EV_RETRY_CAP:
        return f"accepted with errors after skipping {a} bits ({names[b]})"
    if kind == E.EV_RETRY_BUDGET:
        return f"retry work budget spent ({a} bits): lenient decoding from here on"
    if kind == E.EV_ALIGNED:
        return f"skipped {a} bits to after garbage block(s) ({b} block boundaries)"
    return f"{a} {b}"


def decode(data: bytes, strategy: str = "paper", **options: Any) -> Decoded:
    """Decode a baseline JPEG robustly.

    ``strategy``: "paper" (bit-slide resync, the Two-ACIR algorithm), "strict" (libjpeg-like: the first error
    fills the rest of the restart interval) or "aligned" (cipher-aware resync after 16-byte garbage blocks).
    ``options``: see ``DEFAULT_OPTIONS``. Raises ``JPEGError`` subclasses only for unusable headers.
    """
    opts = _resolve(strategy, options)
    data = bytes(data)
    hdr = parse_header(data, opts["max_pixels"])
    return _decode_with_header(data, hdr, strategy, opts)


def _decode_with_header(data: bytes, hdr: JPEGHeader, strategy: str, opts: dict[str, Any]) -> Decoded:
    comps = hdr.components
    hmax = max(c.h for c in comps)
    vmax = max(c.v for c in comps)
    mcu_cols = -(-hdr.width // (8 * hmax))
    mcu_rows = -(-hdr.height // (8 * vmax))
    nmcu = mcu_cols * mcu_rows
    ncomp = len(comps)
    comp_h = np.array([c.h for c in comps], dtype=np.int64)
    comp_v = np.array([c.v for c in comps], dtype=np.int64)
    comp_bcols = mcu_cols * comp_h
    comp_brows = mcu_rows * comp_v
    sizes = comp_bcols * comp_brows
    comp_off = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    nblocks = int(sizes.sum())
    blk = np.array(
        [(sc.index, dy, dx) for sc in hdr.scan_components for dy in range(comps[sc.index].v)
         for dx in range(comps[sc.index].h)], dtype=np.int64,
    )  # fmt: skip
    cmp = np.stack(
        [comp_h, comp_v, comp_off, comp_bcols, np.zeros(ncomp, np.int64), np.zeros(ncomp, np.int64)], 1
    )
    for sc in hdr.scan_components:
        cmp[sc.index, 4] = sc.td
        cmp[sc.index, 5] = 4 + sc.ta
    t = pack_tables(hdr.huffman)
    tabs = (t.lut, t.maxcode, t.valptr, t.huffval, t.maxlen, t.fast)
    qt = np.stack([q.astype(np.int64) for q in hdr.qtables])

    code = STRATEGIES[strategy]
    arr = np.frombuffer(data, dtype=np.uint8)
    buf, nbytes, mk_pos, mk_code, mk_file, src_off = unstuff(
        arr, hdr.scan_start, hdr.scan_end, code == E.ALIGNED
    )
    is_rst = (mk_code >= 0xD0) & (mk_code <= 0xD7)
    if hdr.restart_interval > 0:
        rst_pos = np.ascontiguousarray(mk_pos[is_rst])
        rst_num = np.ascontiguousarray(mk_code[is_rst] - 0xD0)
        spurious = ~is_rst
    else:
        rst_pos = np.zeros(0, dtype=np.int64)
        rst_num = np.zeros(0, dtype=np.int64)
        spurious = np.ones(mk_pos.shape, dtype=bool)
    stop_pos = np.ascontiguousarray(mk_pos[spurious])

    coef = np.zeros((nblocks, 64), dtype=np.int16)
    nzk = np.zeros(nblocks, dtype=np.uint8)
    dc = np.zeros(nblocks, dtype=np.int32)
    status = np.zeros(nmcu, dtype=np.uint8)
    bitpos = np.full(nmcu, -1, dtype=np.int64)
    skipped = np.zeros(nmcu, dtype=np.int32)
    events = np.zeros((int(opts["max_events"]), 5), dtype=np.int64)
    max_retry = opts["max_retry_bits"]
    max_retry = np.iinfo(np.int64).max // 4 if max_retry is None else int(max_retry)
    budget = int(float(opts["work_factor"]) * 8 * nbytes) + int(opts["work_min_bits"])
    checks = (
        (E.CHECK_DC_CATEGORY if opts["check_dc_category"] else 0)
        | (E.CHECK_AC_SIZE if opts["check_ac_size"] else 0)
        | (E.CHECK_ZRL if opts["check_zrl"] else 0)
        | (E.CHECK_RANGE if opts["check_range"] else 0)
    )
    aligned = (
        int(opts["aligned_block_bytes"]),
        int(opts["aligned_blocks"]),
        int(opts["aligned_confirm"]),
        int(opts["aligned_window"]),
    )
    ne, end_bit = E.decode_scan(
        buf, nbytes, rst_pos, rst_num, stop_pos, src_off, mcu_cols, mcu_rows, hdr.restart_interval, blk, cmp,
        tabs, qt, ZIGZAG, code, checks, max_retry, budget, opts["fill"] == "dc",
        not hdr.has_eoi and opts["fill_truncated"] == "grey", aligned, (coef, nzk, dc),
        status, bitpos, skipped, events,
    )  # fmt: skip
    gap = None
    if hdr.restart_interval == 0 and mk_pos.size:
        gap = _erased_run(mk_pos, mk_code, spurious)
        if gap is not None:
            gap = _place_erased_run(gap, blk, cmp, mcu_cols, nmcu, (coef, nzk, dc), status, bitpos, skipped,
                                    opts["fill"] == "dc")  # fmt: skip

    dcs = []
    coefs = []
    for i in range(ncomp):
        off, br, bc = int(comp_off[i]), int(comp_brows[i]), int(comp_bcols[i])
        dcs.append(dc[off : off + br * bc].reshape(br, bc))
        coefs.append(coef[off : off + br * bc].reshape(br, bc, 64))
    if opts["idct"] == "islow":
        planes: Sequence[np.ndarray] = LazyPlanes(coef, nzk, dc, comp_off, comp_brows, comp_bcols, qt)
    else:
        planes = []
        for i in range(ncomp):
            off, br, bc = int(comp_off[i]), int(comp_brows[i]), int(comp_bcols[i])
            plane = np.empty((br * 8, bc * 8), dtype=np.float32)
            idct_float_plane(coef, nzk, dc, off, br, bc, qt[i], COS, plane)
            planes.append(plane)

    rows = events[: min(ne, events.shape[0])]
    markers = (mk_pos, mk_code, mk_file, spurious)
    ev = LazyEvents(
        rows, ne - events.shape[0], nmcu, gap, *markers, bitpos, int(end_bit), hdr.has_eoi, nbytes,
        hdr.extraneous, int(opts["max_events"]),
    )  # fmt: skip

    return Decoded(
        width=hdr.width, height=hdr.height, components=comps, mcu_cols=mcu_cols, mcu_rows=mcu_rows,
        mcu_width=8 * hmax, mcu_height=8 * vmax, planes=planes, dc=dcs, qtables=list(hdr.qtables),
        mcu_status=status.reshape(mcu_rows, mcu_cols), mcu_bitpos=bitpos.reshape(mcu_rows, mcu_cols),
        mcu_skipped_bits=skipped.reshape(mcu_rows, mcu_cols), events=ev, thumbnail=hdr.thumbnail,
        strategy=strategy, coefficients=coefs, color=hdr.color, scan_bits=nbytes * 8,
        restart_interval=hdr.restart_interval, options=opts, orientation=hdr.orientation,
    )  # fmt: skip


ERASED_MIN_PAIRS = 32
"""A run of at least this many ``FF FF`` pairs at one scan position (64+ bytes of 0xFF) is erased media
(a flash page or sector read back as 0xFF), not scan data: Huffman data never holds ``FF FF`` and random
corruption does not make 32 in a row."""


def _erased_run(mk_pos: np.ndarray, mk_code: np.ndarray, spurious: np.ndarray) -> tuple[int, int, int] | None:
    """(unstuffed byte position, index of its first marker, markers there) of the longest run of removed
    markers at one position holding >= ERASED_MIN_PAIRS ``FF FF`` pairs, or None."""
    idx = np.flatnonzero(spurious)
    if idx.size < ERASED_MIN_PAIRS:
        return None
    pos = mk_pos[idx]
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    counts = np.diff(np.r_[starts, pos.size])
    ff = np.add.reduceat((mk_code[idx] == 0xFF).astype(np.int64), starts)
    best = int(np.argmax(np.where(ff >= ERASED_MIN_PAIRS, counts, 0)))
    if ff[best] < ERASED_MIN_PAIRS:
        return None
    return int(pos[starts[best]]), int(idx[starts[best]]), int(counts[best])


def _place_erased_run(gap, blk, cmp, mcu_cols, nmcu, out, status, bitpos, skipped, fill_dc):
    """Move the MCUs decoded after an erased run to where they belong (in place).

    The run's bytes are gone, so the data after it was decoded as if it followed the data before it: every
    later MCU landed early by the MCUs the run held, and as many were filled at the end of the scan
    (``eof_fill``). Those MCUs are moved later by that count and the gap they leave, at the run, is filled
    instead (``MCU_LOST``, the fill policy of the end fill: DC carried from the MCU before the run, or 0).
    Returns (first MCU of the gap, MCUs moved by, first marker index, markers, unstuffed byte position) or
    None when there is nothing to place (no end fill, or no MCU decoded after the run).
    """
    pos, first, count = gap
    coef, nzk, dc = out
    lost = (status & E.MCU_LOST) != 0
    n = nmcu - int(np.flatnonzero(~lost)[-1]) - 1 if (~lost).any() else 0  # MCUs filled at the end
    after = np.flatnonzero((bitpos >= pos * 8) & ~lost)
    if n == 0 or after.size == 0 or after[0] == 0 or after[0] >= nmcu - n:
        return None
    g = int(after[0])
    m = np.arange(nmcu, dtype=np.int64)[:, None]
    row, col = m // mcu_cols, m % mcu_cols
    c = blk[:, 0][None, :]
    bidx = (
        cmp[c, 2] + (row * cmp[c, 1] + blk[:, 1][None, :]) * cmp[c, 3] + col * cmp[c, 0] + blk[:, 2][None, :]
    )
    src, dst = bidx[g : nmcu - n].ravel(), bidx[g + n :].ravel()
    coef[dst] = coef[src]
    nzk[dst] = nzk[src]
    dc[dst] = dc[src]
    for a in (status, bitpos, skipped):
        a[g + n :] = a[g : nmcu - n].copy()
    hole = bidx[g : g + n]
    last = {int(ci): int(bidx[g - 1, k]) for k, ci in enumerate(blk[:, 0])}  # predictor before the run
    fill = np.array([dc[last[int(ci)]] if fill_dc else 0 for ci in blk[:, 0]], dtype=np.int64)
    coef[hole.ravel()] = 0
    coef[hole.ravel(), 0] = np.clip(np.broadcast_to(fill, hole.shape), -32768, 32767).ravel()
    dc[hole.ravel()] = np.broadcast_to(fill, hole.shape).ravel()
    nzk[hole.ravel()] = 0
    status[g : g + n] = E.MCU_LOST
    bitpos[g : g + n] = -1
    skipped[g : g + n] = 0
    return g, n, first, count, pos


def _build_events(rows, dropped, nmcu, gap, mk_pos, mk_code, mk_file, spurious, bitpos, end_bit, has_eoi,
                  nbytes, extraneous, max_events) -> list[Event]:  # fmt: skip
    """``Decoded.events`` from the entropy decoder's event rows, the removed markers and the header."""
    ev = [
        Event(E.EVENT_NAMES[k], int(m), int(p), _event_detail(int(k), int(a), int(b)))
        for k, m, p, a, b in rows.tolist()
    ]
    if dropped > 0:
        ev.append(Event("events_dropped", nmcu - 1, -1, f"{dropped} further events not kept"))
    if gap is not None:  # the MCUs after the run moved: so do their events; the end fill is now at the run
        g, n, first, count, pos = gap
        ev = [e._replace(mcu=e.mcu + n) if e.mcu >= g else e for e in ev
              if not (e.kind == "eof_fill" and e.mcu == nmcu - n)]  # fmt: skip
        at_byte = int(mk_file[first])
        detail = (
            f"{count} marker pairs ({2 * count}+ bytes of FF, erased media?) at file byte {at_byte}: "
            f"the {n} MCUs missing at the end of the scan placed here (lost)"
        )
        ev.append(Event("erased_run", g, pos * 8, detail))
    if mk_pos.size:
        decoded_at = np.flatnonzero(bitpos >= 0)
        sp = np.flatnonzero(spurious)
        if gap is not None:  # one event for the whole run, not one per FF FF pair
            in_run = (sp >= gap[2]) & (sp < gap[2] + gap[3])
            sp = sp[~in_run]
        keep = max(0, max_events - len(ev))  # a flood of markers cannot flood the list
        if sp.size > keep:
            ev.append(
                Event("events_dropped", nmcu - 1, -1, f"{sp.size - keep} spurious_marker events not kept")
            )
            sp = sp[:keep]
        where = np.searchsorted(bitpos[decoded_at], mk_pos[sp] * 8, side="right") - 1
        for idx, w in zip(sp.tolist(), where.tolist(), strict=True):
            m = int(decoded_at[w]) if w >= 0 else 0
            ev.append(
                Event("spurious_marker", m, int(mk_pos[idx]) * 8,
                      f"ff{int(mk_code[idx]):02x} at file byte {int(mk_file[idx])} removed")
            )  # fmt: skip
        ev.sort(key=lambda e: e.mcu)
    if not has_eoi:
        ev.append(Event("no_eoi", nmcu - 1, nbytes * 8, "no FFD9 after the scan: the file is truncated"))
    ev[:0] = [
        Event(
            "extraneous_bytes", 0, -1, f"{count} bytes before marker 0xff{code:02x} at file byte {at} skipped"
        )
        for at, count, code in extraneous
    ]

    return ev


class LazyEvents(Sequence):
    """``Decoded.events``: a list of ``Event`` built on first access (thousands of ``restart`` events of a
    DRI file cost milliseconds of Python that ``decode(...).to_rgb()`` does not need). Compares equal to
    the list it stands for; picklable."""

    def __init__(self, *args):
        self._args = args
        self._list: list[Event] | None = None

    def _get(self) -> list[Event]:
        if self._list is None:
            self._list = _build_events(*self._args)
            self._args = ()
        return self._list

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i):
        return self._get()[i]

    def __iter__(self):
        return iter(self._get())

    def __eq__(self, other) -> bool:
        return self._get() == (list(other) if isinstance(other, Sequence) else other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._get())


def warmup() -> None:
    """Compile (or load from the on-disk cache) every numba kernel by decoding tiny JPEGs.

    Call it in the parent process before forking DataLoader workers, so no worker pays the JIT cost.
    """
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    for mode, sub in (("RGB", 2), ("L", 0)):
        out = io.BytesIO()
        Image.fromarray(img if mode == "RGB" else img[..., 0]).save(out, "JPEG", quality=75, subsampling=sub)
        for strategy in STRATEGIES:
            for idct in IDCT_METHODS:
                d = decode(out.getvalue(), strategy=strategy, idct=idct, check_range=True)
                for upsample in UPSAMPLE_MODES:
                    d.to_rgb(clip=True, upsample=upsample)
                    d.to_rgb(clip=False, upsample=upsample)
