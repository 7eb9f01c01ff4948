"""Container parsing: the marker segments from SOI up to the first SOS, and where the scan data ends.

Our own parser (rather than a library's) so that a corrupted scan never blocks the header, the tables or
the thumbnail. Supported: SOF0/SOF1 (baseline / extended Huffman, 8-bit), 1 or 3 components, sampling
factors 1..4 with integer ratios to the largest; DQT (8/16-bit, several per segment); DHT (several per
segment); DRI; one interleaved SOS with the tables its Td/Ta fields name; APPn (EXIF / JFXX thumbnails,
Adobe transform flag); COM. The scan data ends at the LAST ``FFD9`` of the file (inner ones are garbage
from corruption), or at the end of the data when there is none.

Lenient like libjpeg's ``next_marker``: bytes between two marker segments that do not start a marker
(anything but ``FF`` followed by a marker code; ``FF 00`` pairs included) are skipped and reported in
``JPEGHeader.extraneous`` as (file offset of the first skipped byte, bytes skipped, marker code found
after them); ``decode`` turns each into an ``extraneous_bytes`` event. Real camera files carry 1 to 16
such bytes (issue 11).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from src.jpeg.errors import CorruptHeader, ImageTooLarge, UnsupportedJPEG
from src.jpeg.huffman import HuffmanSpec, validate_spec
from src.jpeg.thumbnail import read_exif, thumbnail_from_jfxx

DEFAULT_MAX_PIXELS = 100_000_000
"""Default pixel-count limit (width * height) against decompression bombs (about 1.2 GB of planes)."""


def _zigzag() -> np.ndarray:
    """Walk the anti-diagonals of the 8x8 block alternately up and down (T.81 Figure A.6)."""
    order = sorted((r + c, r if (r + c) % 2 else c, r * 8 + c) for r in range(8) for c in range(8))
    return np.array([nat for _, _, nat in order], dtype=np.int64)


ZIGZAG = _zigzag()
"""ZIGZAG[k] = natural (row-major) index of the k-th coefficient in scan order (T.81 Figure A.6)."""

_UNSUPPORTED_SOF = {
    0xC2: "progressive DCT (SOF2)",
    0xC3: "lossless (SOF3)",
    0xC5: "differential sequential DCT (SOF5, hierarchical)",
    0xC6: "differential progressive DCT (SOF6, hierarchical)",
    0xC7: "differential lossless (SOF7, hierarchical)",
    0xC9: "arithmetic-coded sequential DCT (SOF9)",
    0xCA: "arithmetic-coded progressive DCT (SOF10)",
    0xCB: "arithmetic-coded lossless (SOF11)",
    0xCD: "arithmetic-coded differential sequential (SOF13)",
    0xCE: "arithmetic-coded differential progressive (SOF14)",
    0xCF: "arithmetic-coded differential lossless (SOF15)",
    0xDE: "hierarchical (DHP)",
}


@dataclass(frozen=True)
class Component:
    """A frame component: id as in the file, sampling factors h, v, quantisation table slot tq."""

    id: int
    h: int
    v: int
    tq: int


@dataclass(frozen=True)
class ScanComponent:
    """A component of the scan, in SOS order: index into the frame's components, DC and AC table slots."""

    index: int
    td: int
    ta: int


@dataclass
class JPEGHeader:
    """What the marker segments declare. Offsets are byte offsets into the file."""

    width: int
    height: int
    components: tuple[Component, ...]
    qtables: list[np.ndarray]  # uint16 (64,) natural order, one per frame component (as latched at SOS)
    huffman: dict[tuple[int, int], HuffmanSpec]  # (class, id) -> table, the ones the scan uses
    scan_components: tuple[ScanComponent, ...]
    restart_interval: int  # MCUs per restart interval, 0 = no DRI
    scan_start: int  # first byte of entropy-coded data
    scan_end: int  # one past the last byte (the position of the last FFD9, or len(data))
    has_eoi: bool
    color: str  # "gray", "ycbcr" or "rgb"
    thumbnail: bytes | None = None
    sof_marker: int = 0xC0
    comments: list[bytes] = field(default_factory=list)
    extraneous: list[tuple[int, int, int]] = field(default_factory=list)  # (file offset, bytes, next marker)
    orientation: int | None = None  # EXIF IFD0 Orientation (1..8), None when absent


def _err(msg: str) -> CorruptHeader:
    return CorruptHeader(msg)


def _parse_sof(payload: bytes, marker: int, offset: int, max_pixels: int | None) -> tuple:
    if len(payload) < 6:
        raise _err(f"SOF segment at byte {offset} is {len(payload)} bytes long; at least 6 are needed")
    precision, height, width, ncomp = struct.unpack_from(">BHHB", payload, 0)
    if precision != 8:
        raise UnsupportedJPEG(
            f"sample precision {precision} bits (SOF{marker - 0xC0}); only 8-bit is supported"
        )
    if ncomp not in (1, 3):
        kind = "CMYK/YCCK" if ncomp == 4 else f"{ncomp}-component"
        raise UnsupportedJPEG(f"{kind} image ({ncomp} components); only 1 (gray) or 3 (colour) are supported")
    if len(payload) < 6 + 3 * ncomp:
        raise _err(f"SOF segment at byte {offset} is too short for {ncomp} components ({len(payload)} bytes)")
    if height == 0:
        raise UnsupportedJPEG("frame height 0 (height defined by a DNL marker) is not supported")
    if width == 0:
        raise _err("frame width is 0")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(
            f"frame of {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} pixels "
            "(option max_pixels)"
        )
    comps = []
    for i in range(ncomp):
        cid, hv, tq = struct.unpack_from(">BBB", payload, 6 + 3 * i)
        h, v = hv >> 4, hv & 15
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise _err(f"component {cid}: sampling factors {h}x{v}; each must be 1..4")
        if tq > 3:
            raise _err(f"component {cid}: quantisation table slot {tq}; slots are 0..3")
        comps.append(Component(cid, h, v, tq))
    if len({c.id for c in comps}) != ncomp:
        raise _err(f"duplicate component ids {[c.id for c in comps]}")
    if ncomp == 1:  # a single-component scan is non-interleaved: one block per MCU whatever the factors
        comps = [Component(comps[0].id, 1, 1, comps[0].tq)]
    hmax = max(c.h for c in comps)
    vmax = max(c.v for c in comps)
    for c in comps:
        if hmax % c.h or vmax % c.v:
            raise UnsupportedJPEG(
                f"component {c.id} sampling {c.h}x{c.v} does not divide the largest factors {hmax}x{vmax}"
            )
    if sum(c.h * c.v for c in comps) > 10:
        raise _err(f"{sum(c.h * c.v for c in comps)} blocks per MCU; T.81 allows at most 10")
    return width, height, tuple(comps)


def _parse_dqt(payload: bytes, offset: int, qtables: dict[int, np.ndarray]) -> None:
    i = 0
    while i < len(payload):
        pq, tq = payload[i] >> 4, payload[i] & 15
        if pq > 1 or tq > 3:
            raise _err(
                f"DQT at byte {offset}: precision {pq} / slot {tq}; allowed: precision 0..1, slot 0..3"
            )
        size = 64 * (pq + 1)
        if i + 1 + size > len(payload):
            raise _err(f"DQT at byte {offset}: table {tq} runs past the segment end")
        raw = np.frombuffer(payload, dtype=">u2" if pq else np.uint8, count=64, offset=i + 1)
        table = np.zeros(64, dtype=np.uint16)
        table[ZIGZAG] = raw  # stored in zigzag order
        qtables[tq] = table
        i += 1 + size


def _parse_dht(payload: bytes, offset: int, tables: dict[tuple[int, int], HuffmanSpec]) -> None:
    i = 0
    while i < len(payload):
        if i + 17 > len(payload):
            raise _err(f"DHT at byte {offset}: truncated table header")
        tc, th = payload[i] >> 4, payload[i] & 15
        if tc > 1 or th > 3:
            raise _err(f"DHT at byte {offset}: class {tc} / slot {th}; allowed: class 0..1, slot 0..3")
        counts = bytes(payload[i + 1 : i + 17])
        n = sum(counts)
        if i + 17 + n > len(payload):
            raise _err(f"DHT at byte {offset}: table {tc}/{th} declares {n} symbols past the segment end")
        spec = HuffmanSpec(tc, th, counts, bytes(payload[i + 17 : i + 17 + n]))
        validate_spec(spec)
        tables[(tc, th)] = spec
        i += 17 + n


def parse_header(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> JPEGHeader:
    """Parse the marker segments up to the first SOS and locate the scan data.

    Raises ``CorruptHeader``, ``UnsupportedJPEG`` or ``ImageTooLarge`` (all ``JPEGError``).
    """
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise _err(f"not a JPEG file: starts with {bytes(data[:2]).hex() or 'nothing'}, expected ffd8 (SOI)")
    qtables: dict[int, np.ndarray] = {}
    htables: dict[tuple[int, int], HuffmanSpec] = {}
    frame = None
    sof_marker = 0
    restart = 0
    thumbnail = jfxx = orientation = None
    adobe_transform = None
    jfif = False
    comments: list[bytes] = []
    extraneous: list[tuple[int, int, int]] = []
    i = 2
    while True:
        if i + 2 > n:
            raise _err(f"data ends at byte {n} before a start-of-scan (SOS) marker")
        if data[i] != 0xFF or data[i + 1] == 0x00:
            j = _next_marker(data, i)  # libjpeg: skip them with a warning (JWRN_EXTRANEOUS_DATA)
            if j < 0:
                raise _err(
                    f"expected a marker at byte {i}, found byte 0x{data[i]:02x}, and no marker follows "
                    "before the end of data"
                )
            extraneous.append((i, j - i, data[j + 1]))
            i = j
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length field
            i += 2
            continue
        if marker == 0xD8:
            raise _err(f"second SOI marker at byte {i}")
        if marker == 0xD9:
            raise _err(f"EOI marker at byte {i} before any start-of-scan (SOS)")
        if i + 4 > n:
            raise _err(f"segment 0xff{marker:02x} at byte {i}: length field runs past the end of data")
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2 or i + 2 + length > n:
            raise _err(
                f"segment 0xff{marker:02x} at byte {i}: length {length} runs past the end of data ({n} bytes)"
            )
        payload = bytes(data[i + 4 : i + 2 + length])
        if marker in (0xC0, 0xC1):
            if frame is not None:
                raise _err(f"second SOF marker at byte {i}")
            frame = _parse_sof(payload, marker, i, max_pixels)
            sof_marker = marker
        elif marker in _UNSUPPORTED_SOF:
            raise UnsupportedJPEG(f"{_UNSUPPORTED_SOF[marker]}; only baseline/extended Huffman (SOF0/SOF1)")
        elif marker == 0xDF:
            raise UnsupportedJPEG("hierarchical (EXP marker); only baseline/extended Huffman (SOF0/SOF1)")
        elif marker == 0xDB:
            _parse_dqt(payload, i, qtables)
        elif marker == 0xC4:
            _parse_dht(payload, i, htables)
        elif marker == 0xDD:
            if len(payload) < 2:
                raise _err(f"DRI segment at byte {i} is {len(payload)} bytes; 2 are needed")
            (restart,) = struct.unpack_from(">H", payload, 0)
        elif marker == 0xE0:
            if payload.startswith(b"JFIF\x00"):
                jfif = True
            if jfxx is None:
                jfxx = thumbnail_from_jfxx(payload)
        elif marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            exif = read_exif(payload)
            if thumbnail is None:
                thumbnail = exif.thumbnail
            if orientation is None:
                orientation = exif.orientation
        elif marker == 0xEE:
            if payload.startswith(b"Adobe") and len(payload) >= 12:
                adobe_transform = payload[11]
        elif marker == 0xFE:
            comments.append(payload)
        elif marker == 0xDA:
            hdr = _finish(
                data, i, payload, frame, sof_marker, qtables, htables, restart,
                thumbnail if thumbnail is not None else jfxx, adobe_transform, jfif, comments,
            )  # fmt: skip
            hdr.extraneous = extraneous
            hdr.orientation = orientation
            return hdr
        i += 2 + length


def _next_marker(data: bytes, i: int) -> int:
    """Offset of the next ``FF`` that starts a marker at or after ``i`` (fill ``FF`` bytes before the code
    belong to the marker; ``FF 00`` is skipped like any other byte), or -1 when none does."""
    n = len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0:
            return -1
        j = i
        while j + 1 < n and data[j + 1] == 0xFF:
            j += 1
        if j + 1 >= n:
            return -1
        if data[j + 1] != 0x00:
            return j
        i = j + 2


def _finish(data, i, payload, frame, sof_marker, qtables, htables, restart, thumbnail, adobe, jfif, comments):
    if frame is None:
        raise _err(f"SOS marker at byte {i} before any frame header (SOF)")
    width, height, comps = frame
    if len(payload) < 1:
        raise _err(f"SOS segment at byte {i} is empty")
    ns = payload[0]
    if len(payload) < 1 + 2 * ns + 3:
        raise _err(f"SOS segment at byte {i} is too short for {ns} components ({len(payload)} bytes)")
    if ns != len(comps):
        raise UnsupportedJPEG(
            f"the first scan holds {ns} of {len(comps)} components: non-interleaved multi-scan files are not "
            "supported (only one interleaved scan)"
        )
    ids = [c.id for c in comps]
    scomps = []
    used: dict[tuple[int, int], HuffmanSpec] = {}
    for k in range(ns):
        cs, t = payload[1 + 2 * k], payload[2 + 2 * k]
        td, ta = t >> 4, t & 15
        if cs not in ids:
            raise _err(f"SOS names component id {cs}; the frame has ids {ids}")
        idx = ids.index(cs)
        if any(s.index == idx for s in scomps):
            raise _err(f"SOS names component id {cs} twice")
        for key, what in (((0, td), "DC"), ((1, ta), "AC")):
            if key[1] > 3 or key not in htables:
                raise _err(f"SOS component {cs} uses {what} Huffman table {key[1]}, which is not defined")
            used[key] = htables[key]
        scomps.append(ScanComponent(idx, td, ta))
    q = []
    for c in comps:
        if c.tq not in qtables:
            raise _err(f"component {c.id} uses quantisation table {c.tq}, which is not defined")
        q.append(qtables[c.tq].copy())
    start = i + 2 + 2 + len(payload)
    end = bytes(data).rfind(b"\xff\xd9", start)
    has_eoi = end >= 0
    if not has_eoi:
        end = len(data)
    if len(comps) == 1:
        color = "gray"
    elif adobe == 0 or (adobe is None and not jfif and ids == [ord("R"), ord("G"), ord("B")]):
        color = "rgb"
    else:
        color = "ycbcr"
    return JPEGHeader(
        width=width, height=height, components=comps, qtables=q, huffman=used,
        scan_components=tuple(scomps), restart_interval=restart, scan_start=start, scan_end=end,
        has_eoi=has_eoi, color=color, thumbnail=thumbnail, sof_marker=sof_marker, comments=comments,
    )  # fmt: skip
