"""EXIF APP1 thumbnails as bytes: build a minimal EXIF block or add a thumbnail to an
existing EXIF block in place.

An EXIF APP1 payload is ``b"Exif\\0\\0"`` + a TIFF structure: a byte-order mark (``II`` little / ``MM``
big endian), 42, the offset of IFD0; every IFD is a 2-byte entry count, 12-byte entries (tag, type, count,
value or offset) and the 4-byte offset of the next IFD. IFD1, IFD0's successor, holds the thumbnail:
Compression = 6 and the thumbnail JPEG's offset (JPEGInterchangeFormat, 0x0201) and length (0x0202).
All offsets count from the TIFF header.

Why by hand: piexif and Pillow edit EXIF by parsing every tag and writing the whole block anew, which moves
tags, breaks offsets inside maker notes and drops what they cannot parse. Adding a thumbnail here touches
4 bytes of the existing block (IFD0's next-IFD offset) and appends the new IFD1 and the thumbnail after
everything else, so every other byte and offset stays valid. The block built for a fresh file is the one
piexif 1.1.3 writes for the same thumbnail (tests compare them), so the simulator's files are unchanged.
Reading a thumbnail back is ``src.jpeg.thumbnail``'s job (one reader for the decoder and the simulator).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from src.corruption.errors import UneditableExif
from src.jpeg.thumbnail import thumbnail_from_exif as thumbnail_from_payload  # noqa: F401  (the one reader)

EXIF_HEADER = b"Exif\x00\x00"
MAX_APP1_PAYLOAD = 0xFFFF - 2  # the APP1 length field counts itself
_TAG_COMPRESSION, _TAG_XRES, _TAG_YRES, _TAG_RES_UNIT = 0x0103, 0x011A, 0x011B, 0x0128
_TAG_JPEG_OFFSET, _TAG_JPEG_LENGTH = 0x0201, 0x0202
_SHORT, _LONG, _RATIONAL = 3, 4, 5
_IFD1_ENTRIES = 6
_IFD1_SIZE = 2 + 12 * _IFD1_ENTRIES + 4  # count, entries, next-IFD offset
_IFD1_VALUES = 16  # XResolution and YResolution rationals


class TiffLayout(NamedTuple):
    """Where the IFD chain of an EXIF block starts: byte order (``"<"`` or ``">"``), IFD0's offset, the
    offset of IFD0's next-IFD field, and IFD1's offset (0 = none). Offsets count from the TIFF header."""

    order: str
    ifd0: int
    next_field: int
    ifd1: int


def tiff_layout(payload: bytes) -> TiffLayout:
    """The IFD0 / IFD1 layout of an EXIF APP1 payload; :class:`UneditableExif` when it cannot be read."""
    if not payload.startswith(EXIF_HEADER):
        raise UneditableExif("EXIF block does not start with 'Exif\\0\\0'")
    tiff = memoryview(payload)[len(EXIF_HEADER) :]
    mark = bytes(tiff[:2])
    if mark not in (b"II", b"MM"):
        raise UneditableExif(
            f"EXIF block has no TIFF byte-order mark (found {mark!r}, expected b'II' or b'MM')"
        )
    order = "<" if mark == b"II" else ">"
    if len(tiff) < 8:
        raise UneditableExif(f"EXIF block is {len(tiff)} bytes, shorter than a TIFF header (8)")
    magic, ifd0 = struct.unpack_from(order + "HI", tiff, 2)
    if magic != 42:
        raise UneditableExif(f"EXIF block's TIFF header holds {magic}, not 42")
    if not 8 <= ifd0 <= len(tiff) - 2:
        raise UneditableExif(f"EXIF IFD0 offset {ifd0} lies outside the {len(tiff)}-byte TIFF block")
    (count,) = struct.unpack_from(order + "H", tiff, ifd0)
    next_field = ifd0 + 2 + 12 * count
    if next_field + 4 > len(tiff):
        raise UneditableExif(
            f"EXIF IFD0 at offset {ifd0} declares {count} entries, which run past the {len(tiff)}-byte block"
        )
    (ifd1,) = struct.unpack_from(order + "I", tiff, next_field)
    return TiffLayout(order, ifd0, next_field, ifd1)


def _ifd1(order: str, at: int, thumbnail: bytes) -> bytes:
    """IFD1 at TIFF offset ``at`` (72 dpi, JPEG thumbnail), its two rationals, then the thumbnail."""
    values, thumb_at = at + _IFD1_SIZE, at + _IFD1_SIZE + _IFD1_VALUES
    entry = struct.Struct(order + "HHII")
    short = struct.Struct(order + "HHIHH")  # a SHORT value sits in the first 2 bytes of the value field
    return b"".join(
        (
            struct.pack(order + "H", _IFD1_ENTRIES),
            short.pack(_TAG_COMPRESSION, _SHORT, 1, 6, 0),  # 6 = JPEG-compressed thumbnail
            entry.pack(_TAG_XRES, _RATIONAL, 1, values),
            entry.pack(_TAG_YRES, _RATIONAL, 1, values + 8),
            short.pack(_TAG_RES_UNIT, _SHORT, 1, 2, 0),  # 2 = inches
            entry.pack(_TAG_JPEG_OFFSET, _LONG, 1, thumb_at),
            entry.pack(_TAG_JPEG_LENGTH, _LONG, 1, len(thumbnail)),
            bytes(4),  # no IFD2
            struct.pack(order + "IIII", 72, 1, 72, 1),
            thumbnail,
        )
    )


def _segment(payload: bytes) -> bytes:
    if len(payload) > MAX_APP1_PAYLOAD:
        raise UneditableExif(
            f"EXIF APP1 with the thumbnail would hold {len(payload)} bytes, more than a JPEG segment allows "
            f"({MAX_APP1_PAYLOAD}): lower thumbnail_quality or thumbnail_size"
        )
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def minimal_exif_app1(thumbnail: bytes) -> bytes:
    """A whole EXIF APP1 segment (marker and length included) holding only ``thumbnail`` in IFD1
    (big endian, an empty IFD0; byte for byte what piexif writes for ``{"1st": ..., "thumbnail": ...}``)."""
    head = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">HI", 0, 14)  # empty IFD0, IFD1 at 14
    return _segment(EXIF_HEADER + head + _ifd1(">", len(head), thumbnail))


def exif_app1_with_thumbnail(payload: bytes, thumbnail: bytes) -> bytes:
    """The APP1 segment of the EXIF ``payload`` with ``thumbnail`` as its IFD1 thumbnail, edited in place.

    IFD0's next-IFD offset is pointed at a new IFD1 appended (word-aligned) after the block; every other
    byte of ``payload`` is kept where it was (an earlier IFD1 stays as unreferenced bytes). Raises
    :class:`UneditableExif` when IFD0 cannot be found or the result would not fit in one APP1 segment.
    """
    layout = tiff_layout(payload)
    tiff = payload[len(EXIF_HEADER) :]
    pad = len(tiff) % 2  # TIFF: an IFD starts on a word boundary
    at = len(tiff) + pad
    cut = layout.next_field
    edited = tiff[:cut] + struct.pack(layout.order + "I", at) + tiff[cut + 4 :] + bytes(pad)
    return _segment(EXIF_HEADER + edited + _ifd1(layout.order, at, thumbnail))
