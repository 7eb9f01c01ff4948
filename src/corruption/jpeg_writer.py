"""Baseline JPEG writing (Pillow / libjpeg-turbo) and EXIF IFD1 thumbnails (piexif).

The thumbnail is a complete small JPEG stored in the EXIF APP1 segment right after SOI, as cameras do
(Exif 2.x, IFD1 with Compression = 6). Inserting it never re-encodes the main image: the segments after
SOI are copied byte for byte, so the scan of the main image is unchanged.
"""

from __future__ import annotations

import io

import numpy as np
import piexif
from PIL import Image

from src.corruption.errors import CorruptionError
from src.corruption.jpeg_markers import APP0, APP1, SOI, header_segments, scan_extent

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
THUMBNAIL_SUBSAMPLING = "4:2:2"  # what Exif/DCF cameras write for their IFD1 thumbnails
MAX_THUMBNAIL_BYTES = 64000  # Exif: the thumbnail and all other APP1 data must fit in 64 KB
_EXIF_HEADER = b"Exif\x00\x00"


def _as_image(pixels: np.ndarray) -> Image.Image:
    """uint8 (H, W) / (H, W, 1) -> Pillow "L", uint8 (H, W, 3) -> "RGB"."""
    a = np.asarray(pixels)
    if a.dtype != np.uint8:
        raise CorruptionError(f"image must be uint8, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or min(a.shape[:2]) < 1:
        raise CorruptionError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {a.shape}")
    return Image.fromarray(np.ascontiguousarray(a), mode="L" if a.ndim == 2 else "RGB")


def _check_quality(quality: int, name: str) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer) or not 1 <= quality <= 100:
        raise CorruptionError(f"{name} must be an integer in 1..100, got {quality!r}")
    return int(quality)


def _save_jpeg(
    img: Image.Image, quality: int, subsampling: str, restart_interval: int, optimize: bool
) -> bytes:
    if subsampling not in SUBSAMPLINGS:
        raise CorruptionError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
    if (
        isinstance(restart_interval, bool)
        or not isinstance(restart_interval, int | np.integer)
        or not 0 <= restart_interval <= 65535
    ):
        raise CorruptionError(
            f"restart_interval must be an integer in 0..65535 (MCUs), got {restart_interval!r}"
        )
    params: dict = {"quality": quality, "optimize": bool(optimize)}
    if img.mode == "RGB":
        params["subsampling"] = subsampling
    if restart_interval:
        # libjpeg's restart_interval counts MCUs; Pillow passes this option straight to it (verified in the
        # tests by reading the DRI segment back).
        params["restart_marker_blocks"] = int(restart_interval)
    buf = io.BytesIO()
    img.save(buf, "JPEG", **params)
    return buf.getvalue()


def encode_jpeg(
    rgb: np.ndarray,
    quality: int = 75,
    subsampling: str = "4:2:0",
    restart_interval: int = 0,
    optimize: bool = False,
    thumbnail: bool = True,
    thumbnail_size: int = 160,
    thumbnail_quality: int = 90,
) -> bytes:
    """Encode a uint8 image as a baseline JPEG, optionally with an EXIF IFD1 thumbnail.

    rgb: uint8 (H, W, 3) RGB -> 3-component YCbCr JPEG; uint8 (H, W) grey -> 1-component JPEG
    (``subsampling`` is then ignored). ``restart_interval``: DRI in MCUs (0 = no restart markers).
    ``optimize``: per-image optimised Huffman tables instead of the standard (Annex K) ones.
    ``thumbnail``: embed :func:`make_thumbnail` ``(rgb, thumbnail_size, thumbnail_quality)``.
    """
    img = _as_image(rgb)
    data = _save_jpeg(img, _check_quality(quality, "quality"), subsampling, restart_interval, optimize)
    if thumbnail:
        data = embed_thumbnail(data, make_thumbnail(rgb, thumbnail_size, thumbnail_quality))
    return data


def thumbnail_shape(width: int, height: int, size: int = 160) -> tuple[int, int]:
    """(width, height) of the thumbnail: long side ``size`` px, aspect kept; never larger than the image."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise CorruptionError(f"thumbnail_size must be a positive integer (pixels), got {size!r}")
    long_side = max(width, height)
    if long_side <= size:
        return width, height
    return max(1, round(width * size / long_side)), max(1, round(height * size / long_side))


def strip_app_segments(jpeg: bytes) -> bytes:
    """``jpeg`` without APPn and COM segments (what an Exif thumbnail must look like; scan untouched)."""
    data = bytes(jpeg)
    segs = header_segments(data)
    keep = [data[s.start : s.end] for s in segs[:-1] if not (0xE0 <= s.marker <= 0xEF or s.marker == 0xFE)]
    return SOI + b"".join(keep) + data[segs[-1].start :]


def make_thumbnail(rgb: np.ndarray, size: int = 160, quality: int = 90) -> bytes:
    """Thumbnail JPEG bytes: bicubic resize to ``size`` px on the long side (aspect kept), baseline JPEG
    at ``quality`` (4:2:2 for colour, like camera thumbnails), no APPn/COM segments.

    These are exactly the bytes :func:`embed_thumbnail` stores and an EXIF reader gives back.
    """
    img = _as_image(rgb)
    w, h = thumbnail_shape(*img.size, size)
    if (w, h) != img.size:
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    data = _save_jpeg(img, _check_quality(quality, "thumbnail_quality"), THUMBNAIL_SUBSAMPLING, 0, False)
    return strip_app_segments(data)


def _is_exif(data: bytes, seg) -> bool:
    return seg.marker == APP1 and data[seg.start + 4 : seg.start + 10] == _EXIF_HEADER


def _exif_payload(thumbnail: bytes, old_payload: bytes | None) -> bytes:
    """EXIF APP1 payload (``Exif\\0\\0`` + TIFF) holding ``thumbnail`` in IFD1; keeps the old tags if any."""
    first = {
        piexif.ImageIFD.Compression: 6,  # JPEG-compressed thumbnail
        piexif.ImageIFD.XResolution: (72, 1),
        piexif.ImageIFD.YResolution: (72, 1),
        piexif.ImageIFD.ResolutionUnit: 2,
    }
    if old_payload is not None:
        try:
            exif = piexif.load(old_payload)
            exif["1st"], exif["thumbnail"] = first, thumbnail
            return piexif.dump(exif)
        except Exception:  # piexif cannot round-trip every camera's tags: start afresh rather than fail
            pass
    return piexif.dump(
        {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}, "1st": first, "thumbnail": thumbnail}
    )


def embed_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """Store ``thumbnail`` (JPEG bytes without APPn, see :func:`make_thumbnail`) as the EXIF IFD1 thumbnail.

    The new APP1 segment goes right after SOI; an existing EXIF APP1 is replaced (its other tags kept when
    piexif can read them) and a JFIF APP0 is dropped (Exif and JFIF both claim the first position; cameras
    write Exif only). Every other byte, the whole scan included, is copied unchanged.
    """
    data = bytes(jpeg)
    segs = header_segments(data)
    scan_extent(data)
    thumb = strip_app_segments(thumbnail)
    if len(thumb) > MAX_THUMBNAIL_BYTES:
        raise CorruptionError(
            f"thumbnail JPEG is {len(thumb)} bytes; EXIF allows at most {MAX_THUMBNAIL_BYTES}: "
            "lower thumbnail_quality or thumbnail_size"
        )
    old = [s for s in segs if _is_exif(data, s)]
    payload = _exif_payload(thumb, data[old[0].start + 4 : old[0].end] if old else None)
    if len(payload) + 2 > 0xFFFF:
        raise CorruptionError(
            f"EXIF APP1 would be {len(payload) + 2} bytes (max 65535): lower thumbnail_quality"
        )
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    drop = {s.start for s in segs if s.marker == APP0 and data[s.start + 4 : s.start + 9] == b"JFIF\x00"}
    drop |= {s.start for s in old}
    kept = [data[s.start : s.end] for s in segs[:-1] if s.start not in drop]
    return SOI + app1 + b"".join(kept) + data[segs[-1].start :]


def read_thumbnail(jpeg: bytes) -> bytes | None:
    """The EXIF IFD1 thumbnail JPEG bytes of ``jpeg``, or None if it has none (or its EXIF is unreadable)."""
    data = bytes(jpeg)
    try:
        segs = header_segments(data)
    except CorruptionError:
        return None
    for s in segs:
        if _is_exif(data, s):
            try:
                return piexif.load(data[s.start + 4 : s.end]).get("thumbnail") or None
            except Exception:  # piexif raises assorted errors on damaged EXIF: treat as "no thumbnail"
                return None
    return None
