"""Embedded thumbnails and the EXIF orientation, read from the header alone.

Sources: the EXIF APP1 IFD1 thumbnail, JPEG-compressed (Compression = 6: JPEGInterchangeFormat and its
length) or uncompressed RGB in TIFF strips (Compression = 1, PhotometricInterpretation = 2, 3 x 8-bit
samples, chunky; some older cameras write these), then a JFIF extension (JFXX) JPEG thumbnail. The IFD0
Orientation tag (0x0112, values 1..8 as in TIFF/EXIF) is reported too.

Parsed by hand so that a thumbnail is found from the header alone: a corrupted scan, or even a broken
segment after the APP1, never hides it. The IFD walk is bounded (each IFD read once, entry counts checked
against the block, at most :data:`MAX_IFDS` IFDs, strip data inside the block): a hostile or broken EXIF
block never raises here, it yields "no thumbnail" and a one-line ``problem``.

A thumbnail is handed on as the bytes of an image file: the JPEG as stored, or for an uncompressed one a
binary PPM (``P6``) of its RGB samples, so :func:`decode_thumbnail` (Pillow) reads either.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

EXIF_HEADER = b"Exif\x00\x00"
MAX_IFDS = 4  # IFD0 and IFD1 are all a thumbnail needs; a longer chain is ignored
MAX_THUMBNAIL_PIXELS = 1 << 20  # an uncompressed thumbnail must fit in one APP1 (64 KB) anyway

_TAG_WIDTH, _TAG_HEIGHT, _TAG_BITS, _TAG_COMPRESSION = 0x0100, 0x0101, 0x0102, 0x0103
_TAG_PHOTOMETRIC, _TAG_STRIP_OFFSETS, _TAG_ORIENTATION = 0x0106, 0x0111, 0x0112
_TAG_SAMPLES, _TAG_ROWS_PER_STRIP, _TAG_STRIP_BYTES, _TAG_PLANAR = 0x0115, 0x0116, 0x0117, 0x011C
_TAG_JPEG_OFFSET, _TAG_JPEG_LENGTH = 0x0201, 0x0202  # JPEGInterchangeFormat (offset from the TIFF header)
_TYPE_SIZE = {1: 1, 3: 2, 4: 4}  # BYTE, SHORT, LONG: the integer types thumbnail tags use
_TYPE_FMT = {1: "B", 3: "H", 4: "I"}


@dataclass(frozen=True)
class ExifInfo:
    """What an EXIF block says about the thumbnail and the orientation.

    thumbnail: image-file bytes of the IFD1 thumbnail (JPEG as stored, or a binary PPM made from an
    uncompressed RGB thumbnail), None when there is none or it cannot be read. kind: ``jpeg``,
    ``uncompressed`` or None. orientation: the IFD0 Orientation tag (1..8), None when absent or invalid.
    problem: one line on why the block (or its thumbnail) could not be read, None when it could.
    """

    thumbnail: bytes | None = None
    kind: str | None = None
    orientation: int | None = None
    problem: str | None = None


class _Bad(Exception):
    """A structural fault in the EXIF block (turned into ``ExifInfo.problem``)."""


def _tags(tiff: bytes, end: str, at: int) -> tuple[dict[int, tuple[int, int, int]], int]:
    """{tag: (type, count, value-field offset)} of the IFD at ``at`` and the next IFD's offset."""
    if not 8 <= at <= len(tiff) - 2:
        raise _Bad(f"IFD offset {at} lies outside the {len(tiff)}-byte TIFF block")
    (count,) = struct.unpack_from(end + "H", tiff, at)
    if at + 2 + 12 * count + 4 > len(tiff):
        raise _Bad(f"IFD at offset {at} declares {count} entries, which run past the {len(tiff)}-byte block")
    tags = {}
    for i in range(count):
        e = at + 2 + 12 * i
        tag, typ, n = struct.unpack_from(end + "HHI", tiff, e)
        tags.setdefault(tag, (typ, n, e + 8))
    (nxt,) = struct.unpack_from(end + "I", tiff, at + 2 + 12 * count)
    return tags, nxt


def _ints(tiff: bytes, end: str, entry: tuple[int, int, int] | None, limit: int = 4096) -> list[int] | None:
    """The integer values of a tag (BYTE / SHORT / LONG; inline when they fit in 4 bytes), None if absent
    or of another type."""
    if entry is None:
        return None
    typ, n, field_at = entry
    if typ not in _TYPE_SIZE or not 1 <= n <= limit:
        return None
    size = _TYPE_SIZE[typ] * n
    at = field_at
    if size > 4:
        (at,) = struct.unpack_from(end + "I", tiff, field_at)
        if at + size > len(tiff):
            raise _Bad(f"tag values at offset {at} run past the {len(tiff)}-byte TIFF block")
    return list(struct.unpack_from(end + _TYPE_FMT[typ] * n, tiff, at))


def _one(tiff, end, tags, tag) -> int | None:
    v = _ints(tiff, end, tags.get(tag), 1)
    return v[0] if v else None


def _uncompressed(tiff: bytes, end: str, tags: dict) -> bytes:
    """PPM bytes of an uncompressed RGB strip thumbnail (IFD1 with Compression = 1)."""
    w, h = _one(tiff, end, tags, _TAG_WIDTH), _one(tiff, end, tags, _TAG_HEIGHT)
    if not w or not h or w * h > MAX_THUMBNAIL_PIXELS:
        raise _Bad(f"uncompressed thumbnail has no valid size (width {w}, height {h})")
    photometric = _one(tiff, end, tags, _TAG_PHOTOMETRIC)
    samples = _one(tiff, end, tags, _TAG_SAMPLES) or 3
    bits = _ints(tiff, end, tags.get(_TAG_BITS)) or [8] * samples
    planar = _one(tiff, end, tags, _TAG_PLANAR) or 1
    if photometric != 2 or samples != 3 or any(b != 8 for b in bits) or planar != 1:
        raise _Bad(
            f"uncompressed thumbnail with PhotometricInterpretation {photometric}, {samples} samples of "
            f"{bits} bits, PlanarConfiguration {planar}: only chunky 8-bit RGB (2, 3, [8, 8, 8], 1) is read"
        )
    offsets = _ints(tiff, end, tags.get(_TAG_STRIP_OFFSETS))
    counts = _ints(tiff, end, tags.get(_TAG_STRIP_BYTES))
    if not offsets or not counts or len(offsets) != len(counts):
        raise _Bad("uncompressed thumbnail without matching StripOffsets / StripByteCounts")
    need = w * h * 3
    parts = []
    for off, cnt in zip(offsets, counts, strict=True):
        if off + cnt > len(tiff):
            raise _Bad(f"thumbnail strip at offset {off} ({cnt} bytes) runs past the {len(tiff)}-byte block")
        parts.append(tiff[off : off + cnt])
    pixels = b"".join(parts)
    if len(pixels) < need:
        raise _Bad(f"uncompressed {w}x{h} thumbnail holds {len(pixels)} bytes of the {need} it needs")
    return b"P6\n%d %d\n255\n" % (w, h) + pixels[:need]


def read_exif(payload: bytes) -> ExifInfo:
    """Thumbnail and orientation of an APP1 payload (``b"Exif\\0\\0"`` + TIFF); never raises.

    A payload that is not EXIF (e.g. XMP) gives an empty :class:`ExifInfo` without ``problem``."""
    payload = bytes(payload)
    if not payload.startswith(EXIF_HEADER):
        return ExifInfo()
    tiff = payload[len(EXIF_HEADER) :]
    mark = tiff[:2]
    if mark not in (b"II", b"MM") or len(tiff) < 8:
        found = tiff[:4].hex(" ") or "nothing"
        return ExifInfo(problem=f"EXIF block has no TIFF header (starts with {found})")
    end = "<" if mark == b"II" else ">"
    orientation = None
    try:
        magic, at = struct.unpack_from(end + "HI", tiff, 2)
        if magic != 42:
            raise _Bad(f"EXIF TIFF header holds {magic}, not 42")
        seen: set[int] = set()
        ifds = []
        while at and len(ifds) < MAX_IFDS:
            if at in seen:
                raise _Bad(f"EXIF IFD chain loops back to offset {at}")
            seen.add(at)
            try:
                tags, at = _tags(tiff, end, at)
            except _Bad:
                if not ifds:
                    raise
                at = 0  # a broken link after IFD0: keep what was read
                break
            ifds.append(tags)
            if len(ifds) == 1:
                o = _one(tiff, end, tags, _TAG_ORIENTATION)
                orientation = o if o is not None and 1 <= o <= 8 else None
        if len(ifds) < 2:
            return ExifInfo(orientation=orientation)
        ifd1 = ifds[1]
        compression = _one(tiff, end, ifd1, _TAG_COMPRESSION)
        if compression == 1:
            return ExifInfo(_uncompressed(tiff, end, ifd1), "uncompressed", orientation)
        offset = _one(tiff, end, ifd1, _TAG_JPEG_OFFSET)
        length = _one(tiff, end, ifd1, _TAG_JPEG_LENGTH)
        if offset is None or not length:
            return ExifInfo(orientation=orientation)
        if offset + length > len(tiff):
            raise _Bad(f"thumbnail at offset {offset} ({length} bytes) runs past the {len(tiff)}-byte block")
        thumb = tiff[offset : offset + length]
        if not thumb.startswith(b"\xff\xd8"):
            raise _Bad(f"the IFD1 thumbnail at offset {offset} is not a JPEG (starts {thumb[:2].hex(' ')})")
        return ExifInfo(thumb, "jpeg", orientation)
    except (_Bad, struct.error) as e:
        msg = str(e) if isinstance(e, _Bad) else "an EXIF offset points outside the block"
        return ExifInfo(orientation=orientation, problem=msg)


def thumbnail_from_exif(payload: bytes) -> bytes | None:
    """Image-file bytes of the IFD1 thumbnail of an APP1 payload (see :func:`read_exif`), or None."""
    return read_exif(payload).thumbnail


def thumbnail_from_jfxx(payload: bytes) -> bytes | None:
    """JPEG bytes of a JFXX extension APP0 payload with extension code 0x10 (JPEG thumbnail), or None."""
    if payload.startswith(b"JFXX\x00") and len(payload) > 6 and payload[5] == 0x10:
        thumb = bytes(payload[6:])
        return thumb if thumb.startswith(b"\xff\xd8") else None
    return None


def header_exif(data: bytes) -> ExifInfo:
    """:class:`ExifInfo` of a JPEG file: the first EXIF APP1 that holds a thumbnail (else the first EXIF
    block's orientation and problem), then a JFXX thumbnail. Walks the marker segments from SOI up to SOS
    and never raises on broken data (returns what it found before the damage)."""
    data = bytes(data)
    if not data.startswith(b"\xff\xd8"):
        return ExifInfo()
    first: ExifInfo | None = None
    jfxx = None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            break
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
        if marker == 0xE1 and payload.startswith(EXIF_HEADER):
            info = read_exif(payload)
            if info.thumbnail is not None:
                if first is not None and info.orientation is None:
                    info = ExifInfo(info.thumbnail, info.kind, first.orientation, first.problem)
                return info
            first = first or info
        elif marker == 0xE0 and jfxx is None:
            jfxx = thumbnail_from_jfxx(payload)
        i += 2 + length
    first = first or ExifInfo()
    if jfxx is not None:
        return ExifInfo(jfxx, "jpeg", first.orientation, first.problem)
    return first


def extract_thumbnail(data: bytes) -> bytes | None:
    """The embedded thumbnail of a JPEG file as image-file bytes (EXIF IFD1 first, then JFXX), or None.
    Never raises on broken data (see :func:`header_exif`)."""
    return header_exif(data).thumbnail


def decode_thumbnail(data: bytes | None) -> np.ndarray | None:
    """uint8 (h, w, 3) RGB of thumbnail image-file bytes (``Decoded.thumbnail``, :func:`extract_thumbnail`),
    in the thumbnail's stored orientation; None when there are none or Pillow cannot decode them (a damaged
    thumbnail is as good as none: logged as a warning)."""
    if not data:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("cannot decode the header thumbnail (%d bytes): %s", len(data), exc)
        return None
