"""Embedded thumbnails: EXIF APP1 IFD1 JPEG thumbnails and JFIF extension (JFXX) JPEG thumbnails.

Parsed by hand (a few dozen lines) so that a thumbnail is found from the header alone: a corrupted scan,
or even a broken segment after the APP1, never hides it. Raw-RGB JFIF/JFXX thumbnails are not JPEG and are
ignored.
"""

from __future__ import annotations

import struct

_TAG_JPEG_OFFSET = 0x0201  # JPEGInterchangeFormat: offset from the TIFF header
_TAG_JPEG_LENGTH = 0x0202  # JPEGInterchangeFormatLength


def thumbnail_from_exif(payload: bytes) -> bytes | None:
    """JPEG bytes of the IFD1 thumbnail of an APP1 payload (``b"Exif\\0\\0"`` + TIFF), or None."""
    if not payload.startswith(b"Exif\x00\x00") or len(payload) < 14:
        return None
    tiff = payload[6:]
    order = tiff[:2]
    if order == b"II":
        end = "<"
    elif order == b"MM":
        end = ">"
    else:
        return None
    try:
        magic, ifd0 = struct.unpack_from(end + "HI", tiff, 2)
        if magic != 42:
            return None
        (n0,) = struct.unpack_from(end + "H", tiff, ifd0)
        (ifd1,) = struct.unpack_from(end + "I", tiff, ifd0 + 2 + 12 * n0)
        if ifd1 == 0:
            return None
        (n1,) = struct.unpack_from(end + "H", tiff, ifd1)
        offset = length = None
        for i in range(n1):
            tag, typ, count = struct.unpack_from(end + "HHI", tiff, ifd1 + 2 + 12 * i)
            if tag in (_TAG_JPEG_OFFSET, _TAG_JPEG_LENGTH) and count == 1:
                if typ == 4:  # LONG
                    (value,) = struct.unpack_from(end + "I", tiff, ifd1 + 2 + 12 * i + 8)
                elif typ == 3:  # SHORT
                    (value,) = struct.unpack_from(end + "H", tiff, ifd1 + 2 + 12 * i + 8)
                else:
                    continue
                if tag == _TAG_JPEG_OFFSET:
                    offset = value
                else:
                    length = value
    except struct.error:  # offsets pointing outside the payload
        return None
    if offset is None or not length or offset + length > len(tiff):
        return None
    thumb = bytes(tiff[offset : offset + length])
    return thumb if thumb.startswith(b"\xff\xd8") else None


def thumbnail_from_jfxx(payload: bytes) -> bytes | None:
    """JPEG bytes of a JFXX extension APP0 payload with extension code 0x10 (JPEG thumbnail), or None."""
    if payload.startswith(b"JFXX\x00") and len(payload) > 6 and payload[5] == 0x10:
        thumb = bytes(payload[6:])
        return thumb if thumb.startswith(b"\xff\xd8") else None
    return None


def extract_thumbnail(data: bytes) -> bytes | None:
    """The embedded JPEG thumbnail of a JPEG file (EXIF IFD1 first, then JFXX), or None.

    Walks the marker segments from SOI up to SOS; never raises on broken data (returns what it found
    before the damage, or None).
    """
    data = bytes(data)
    if not data.startswith(b"\xff\xd8"):
        return None
    jfxx = None
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return jfxx
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2 or i + 2 + length > n:
            break
        payload = data[i + 4 : i + 2 + length]
        if marker == 0xE1:
            thumb = thumbnail_from_exif(payload)
            if thumb is not None:
                return thumb
        elif marker == 0xE0 and jfxx is None:
            jfxx = thumbnail_from_jfxx(payload)
        i += 2 + length
    return jfxx
