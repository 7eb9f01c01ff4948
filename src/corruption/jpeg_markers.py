"""Minimal JPEG container walk: the header segments and where the entropy-coded scan starts and ends.

The robust decoder (``src.jpeg``) has the full parser; this one only needs the byte range that the
bit-error channel may hit and the segment list for inserting EXIF, so it walks the marker segments up to
the first SOS and stops.
"""

from __future__ import annotations

from typing import NamedTuple

from src.corruption.errors import CorruptionError

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
SOS = 0xDA
APP0 = 0xE0
APP1 = 0xE1
# Markers without a length field (TEM, RST0..7); SOI/EOI are handled separately.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


class Segment(NamedTuple):
    """One header segment: ``data[start:end]`` is the whole segment, marker bytes included."""

    marker: int
    start: int
    end: int


def header_segments(jpeg: bytes) -> list[Segment]:
    """The marker segments after SOI, up to and including the first SOS (its header only).

    Raises :class:`CorruptionError` naming what was found if the data is not a JPEG or its header is
    broken (truncated segment, stray byte where a marker belongs, EOI before SOS).
    """
    data = bytes(jpeg)
    n = len(data)
    if data[:2] != SOI:
        raise CorruptionError(f"not a JPEG: data starts with {data[:4]!r} (expected b'\\xff\\xd8', SOI)")
    segments: list[Segment] = []
    pos = 2
    while True:
        if pos + 2 > n:
            raise CorruptionError(f"broken JPEG header: data ends at offset {n} before any SOS marker")
        if data[pos] != 0xFF:
            raise CorruptionError(
                f"broken JPEG header: expected a marker (0xFF) at offset {pos}, found byte 0x{data[pos]:02X}"
            )
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker (T.81 B.1.1.2)
            pos += 1
            continue
        if marker in _STANDALONE:
            segments.append(Segment(marker, pos, pos + 2))
            pos += 2
            continue
        if marker in (0xD8, 0xD9, 0x00):
            raise CorruptionError(
                f"broken JPEG header: marker FF{marker:02X} at offset {pos} before any SOS marker"
            )
        if pos + 4 > n:
            raise CorruptionError(f"broken JPEG header: segment FF{marker:02X} at offset {pos} is truncated")
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + length
        if length < 2:
            raise CorruptionError(
                f"broken JPEG header: segment FF{marker:02X} at offset {pos} has length {length} (< 2)"
            )
        if end > n:
            raise CorruptionError(
                f"broken JPEG header: segment FF{marker:02X} at offset {pos} has length {length}, "
                f"which runs past the end of the data ({n} bytes)"
            )
        segments.append(Segment(marker, pos, end))
        if marker == SOS:
            return segments
        pos = end


def scan_extent(jpeg: bytes) -> tuple[int, int]:
    """Byte offsets ``(start, end)`` of the entropy-coded scan of ``jpeg``.

    ``start`` is the first byte after the (first) SOS header; ``end`` is the offset of the LAST ``FF D9``
    (EOI) in the file, so ``jpeg[start:end]`` is the scan data (for progressive files: all scans and the
    headers between them). This is the paper's convention (end = EOF - 2 for a file that ends in EOI).
    Raises :class:`CorruptionError` naming what was found if the data is not a JPEG, its header is broken
    or no EOI follows the scan.
    """
    start = header_segments(jpeg)[-1].end
    end = bytes(jpeg).rfind(EOI)
    if end < start:
        raise CorruptionError(
            f"broken JPEG: no EOI marker (FF D9) after the scan that starts at offset {start}"
        )
    return start, end
