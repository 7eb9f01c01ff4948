"""Header thumbnails and EXIF orientation: JPEG and uncompressed (TIFF-strip RGB) IFD1 thumbnails, a bounded
walk over hostile EXIF blocks, one reader for the decoder and the simulator."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from src.corruption import read_thumbnail
from src.jpeg import decode, decode_thumbnail, extract_thumbnail, header_exif
from src.jpeg.oracle import pillow_jpeg
from src.jpeg.thumbnail import read_exif


def _entry(order: str, tag: int, typ: int, values: list[int], data: bytearray, base: int) -> bytes:
    """One 12-byte IFD entry; values that do not fit in 4 bytes go to ``data`` (at TIFF offset base+len)."""
    fmt = {3: "H", 4: "I"}[typ]
    raw = struct.pack(order + fmt * len(values), *values)
    if len(raw) <= 4:
        return struct.pack(order + "HHI", tag, typ, len(values)) + raw.ljust(4, b"\0")
    at = base + len(data)
    data += raw
    return struct.pack(order + "HHII", tag, typ, len(values), at)


def _ifd(order: str, at: int, entries: list[tuple[int, int, list[int]]], nxt: int) -> tuple[bytes, int]:
    """An IFD placed at ``at`` and its out-of-line values after it; returns (bytes, end offset)."""
    values = bytearray()
    base = at + 2 + 12 * len(entries) + 4
    body = b"".join(_entry(order, t, ty, v, values, base) for t, ty, v in entries)
    block = struct.pack(order + "H", len(entries)) + body + struct.pack(order + "I", nxt) + bytes(values)
    return block, at + len(block)


def exif_with_uncompressed(rgb: np.ndarray, orientation: int = 1, order: str = ">", strips: int = 2) -> bytes:
    """An EXIF APP1 payload: IFD0 with Orientation, IFD1 with an uncompressed RGB thumbnail in ``strips``
    strips (as some cameras write)."""
    h, w, _ = rgb.shape
    mark = b"MM" if order == ">" else b"II"
    ifd0_entries = [(0x0112, 3, [orientation])]
    ifd0_len = 2 + 12 * len(ifd0_entries) + 4
    ifd1_at = 8 + ifd0_len
    rows = -(-h // strips)
    pixel_rows = [rgb[i : i + rows].tobytes() for i in range(0, h, rows)]
    counts = [len(p) for p in pixel_rows]

    def ifd1_entries(offsets):
        return [
            (0x0100, 4, [w]),
            (0x0101, 4, [h]),
            (0x0102, 3, [8, 8, 8]),
            (0x0103, 3, [1]),
            (0x0106, 3, [2]),
            (0x0111, 4, offsets),
            (0x0115, 3, [3]),
            (0x0116, 4, [rows]),
            (0x0117, 4, counts),
        ]

    _, strip_at = _ifd(order, ifd1_at, ifd1_entries([0] * len(counts)), 0)  # the strips follow IFD1
    offsets = [strip_at + sum(counts[:k]) for k in range(len(counts))]
    ifd0, _ = _ifd(order, 8, ifd0_entries, ifd1_at)
    ifd1, _ = _ifd(order, ifd1_at, ifd1_entries(offsets), 0)
    tiff = mark + struct.pack(order + "HI", 42, 8) + ifd0 + ifd1 + b"".join(pixel_rows)
    return b"Exif\x00\x00" + tiff


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.mark.parametrize("order", [">", "<"])
def test_uncompressed_strip_thumbnail_and_orientation(astronaut, order):
    small = np.ascontiguousarray(astronaut[::8, ::8][:60, :64])  # 64x60 RGB
    data = with_app1(pillow_jpeg(astronaut[:128, :128]), exif_with_uncompressed(small, 6, order, strips=3))
    info = header_exif(data)
    assert info.kind == "uncompressed" and info.orientation == 6 and info.problem is None
    np.testing.assert_array_equal(decode_thumbnail(info.thumbnail), small)
    d = decode(data)
    assert d.orientation == 6
    np.testing.assert_array_equal(decode_thumbnail(d.thumbnail), small)
    assert read_thumbnail(data) == extract_thumbnail(data) == info.thumbnail  # one reader for the simulator


def test_orientation_of_a_jpeg_thumbnail_file(astronaut):
    from src.corruption import Corruptor

    sample = Corruptor.from_preset("paper", ber=0.0).corrupt(astronaut[:128, :128], seed=0)
    d = decode(sample.clean_jpeg)
    assert d.orientation is None and header_exif(sample.clean_jpeg).kind == "jpeg"
    assert d.thumbnail == sample.thumbnail


def _hostile(small: np.ndarray) -> dict[str, bytes]:
    good = bytearray(exif_with_uncompressed(small, 3))
    tiff0 = 6
    cases = {}
    loop = bytearray(good)  # IFD1's next-IFD offset points back at IFD0, and IFD0's at itself
    loop[tiff0 + 8 + 2 + 12 : tiff0 + 8 + 2 + 12 + 4] = struct.pack(">I", 8)
    cases["loop"] = bytes(loop)
    huge = bytearray(good)  # IFD0 declares 65535 entries
    huge[tiff0 + 8 : tiff0 + 10] = b"\xff\xff"
    cases["huge count"] = bytes(huge)
    cases["truncated"] = bytes(good[: len(good) // 2])
    outside = bytearray(good)  # IFD0 offset far outside the block
    outside[tiff0 + 4 : tiff0 + 8] = struct.pack(">I", 0x7FFFFFF0)
    cases["ifd outside"] = bytes(outside)
    cases["no tiff"] = b"Exif\x00\x00XX\x00\x2a"
    cases["bad magic"] = b"Exif\x00\x00MM\x00\x2b\x00\x00\x00\x08"
    return cases


def test_hostile_exif_never_raises(astronaut):
    small = np.ascontiguousarray(astronaut[::8, ::8][:40, :48])
    main = pillow_jpeg(astronaut[:64, :64])
    for name, payload in _hostile(small).items():
        info = read_exif(payload)
        assert info.thumbnail is None or decode_thumbnail(info.thumbnail) is not None, name
        if name != "loop":
            assert info.thumbnail is None and info.problem, name
        data = with_app1(main, payload)
        d = decode(data)  # the scan still decodes
        assert d.width == 64 and extract_thumbnail(data) == info.thumbnail, name
    # random garbage after the EXIF header: never an exception
    rng = np.random.default_rng(0)
    for _ in range(300):
        info = read_exif(
            b"Exif\x00\x00MM\x00\x2a" + rng.integers(0, 256, int(rng.integers(0, 200)), np.uint8).tobytes()
        )
        assert info.thumbnail is None or info.thumbnail.startswith((b"\xff\xd8", b"P6"))
