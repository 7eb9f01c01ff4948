"""JPEG writer, EXIF thumbnail and scan_extent on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image

from src.corruption import (
    CorruptionError,
    embed_thumbnail,
    encode_jpeg,
    header_segments,
    make_thumbnail,
    read_thumbnail,
    scan_extent,
)
from src.errors import BitstreamRestoreError


def _segment(data: bytes, marker: int) -> bytes | None:
    """Payload (after the length field) of the first header segment with ``marker``."""
    for s in header_segments(data):
        if s.marker == marker:
            return data[s.start + 4 : s.end]
    return None


def _sampling(data: bytes) -> list[tuple[int, int]]:
    sof = _segment(data, 0xC0)
    n = sof[5]
    return [(sof[6 + 3 * i + 1] >> 4, sof[6 + 3 * i + 1] & 15) for i in range(n)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize(
    ("subsampling", "factors"),
    [("4:4:4", [(1, 1)] * 3), ("4:2:2", [(2, 1), (1, 1), (1, 1)]), ("4:2:0", [(2, 2), (1, 1), (1, 1)])],
)
def test_subsampling_written_in_sof(chelsea, subsampling, factors):
    data = encode_jpeg(chelsea, quality=75, subsampling=subsampling, thumbnail=False)
    assert _sampling(data) == factors
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert decoded.shape == chelsea.shape
    assert _psnr(decoded, chelsea) > 28


def test_quality_changes_quantisation_and_size(astronaut):
    q50 = encode_jpeg(astronaut, quality=50, thumbnail=False)
    q95 = encode_jpeg(astronaut, quality=95, thumbnail=False)
    assert len(q95) > 1.5 * len(q50)
    # first luma quantiser entry: libjpeg's Annex K table (16) scaled by quality
    assert _segment(q50, 0xDB)[1] == 16
    assert _segment(q95, 0xDB)[1] == 2


@pytest.mark.parametrize("interval", [1, 7, 100])
def test_restart_interval_is_in_mcus(astronaut, interval):
    data = encode_jpeg(astronaut, restart_interval=interval, thumbnail=False)
    dri = _segment(data, 0xDD)
    assert int.from_bytes(dri[:2], "big") == interval
    start, end = scan_extent(data)
    scan = data[start:end]
    n_rst = sum(scan.count(bytes([0xFF, 0xD0 + k])) for k in range(8))
    n_mcus = (512 // 16) * (512 // 16)  # 4:2:0 -> 16x16 MCUs
    assert n_rst == -(-n_mcus // interval) - 1


def test_no_restart_markers_by_default(astronaut):
    data = encode_jpeg(astronaut, thumbnail=False)
    assert _segment(data, 0xDD) is None


def test_optimized_vs_standard_huffman_tables(astronaut, coffee):
    def dht(img, optimize):
        data = encode_jpeg(img, optimize=optimize, thumbnail=False)
        return b"".join(data[s.start : s.end] for s in header_segments(data) if s.marker == 0xC4), len(data)

    std_a, len_std = dht(astronaut, False)
    std_c, _ = dht(coffee, False)
    opt_a, len_opt = dht(astronaut, True)
    opt_c, _ = dht(coffee, True)
    assert std_a == std_c  # the standard tables do not depend on the image
    assert opt_a != opt_c and opt_a != std_a
    assert len_opt < len_std


def test_grayscale_gives_one_component(camera):
    data = encode_jpeg(camera, subsampling="4:2:0", thumbnail=True)
    assert _segment(data, 0xC0)[5] == 1
    im = Image.open(io.BytesIO(data))
    assert im.mode == "L" and im.size == (512, 512)
    thumb = Image.open(io.BytesIO(read_thumbnail(data)))
    assert thumb.mode == "L" and thumb.size == (160, 160)


@pytest.mark.parametrize("fixture", ["chelsea", "coffee", "astronaut"])
def test_thumbnail_shape_and_content(request, fixture):
    img = request.getfixturevalue(fixture)
    h, w = img.shape[:2]
    data = encode_jpeg(img, thumbnail_size=160, thumbnail_quality=90)
    thumb = np.asarray(Image.open(io.BytesIO(read_thumbnail(data))).convert("RGB"))
    scale = 160 / max(h, w)
    assert max(thumb.shape[:2]) == 160
    assert thumb.shape[:2] == (round(h * scale), round(w * scale))
    ref = np.asarray(Image.fromarray(img).resize((thumb.shape[1], thumb.shape[0]), Image.Resampling.BICUBIC))
    assert _psnr(thumb, ref) > 30


def test_embedding_keeps_scan_bytes_and_pillow_reads_identical_thumbnail(coffee):
    plain = encode_jpeg(coffee, thumbnail=False)
    thumb = make_thumbnail(coffee, 160, 80)
    assert thumb[:2] == b"\xff\xd8" and not any(0xE0 <= s.marker <= 0xEF for s in header_segments(thumb))
    with_thumb = embed_thumbnail(plain, thumb)
    s0 = scan_extent(plain)[0]
    s1 = scan_extent(with_thumb)[0]
    assert with_thumb[s1:] == plain[s0:]  # scan + EOI byte for byte

    # all non-APP header segments (tables, SOF, SOS) are unchanged
    def tables(d):
        return [d[s.start : s.end] for s in header_segments(d) if not 0xE0 <= s.marker <= 0xEF]

    assert tables(with_thumb) == tables(plain)
    # Pillow's EXIF reader: IFD1 offset/length relative to the TIFF header in info["exif"]
    im = Image.open(io.BytesIO(with_thumb))
    ifd1 = im.getexif().get_ifd(ExifTags.IFD.IFD1)
    off, n = ifd1[ExifTags.Base.JpegIFOffset], ifd1[ExifTags.Base.JpegIFByteCount]
    assert ifd1[ExifTags.Base.Compression] == 6
    assert im.info["exif"][6 + off : 6 + off + n] == thumb
    assert read_thumbnail(with_thumb) == thumb
    # the main image decodes exactly as before
    assert np.array_equal(
        np.asarray(im.convert("RGB")), np.asarray(Image.open(io.BytesIO(plain)).convert("RGB"))
    )


def test_no_thumbnail_option(coffee):
    data = encode_jpeg(coffee, thumbnail=False)
    assert read_thumbnail(data) is None
    assert not any(s.marker == 0xE1 for s in header_segments(data))


def test_embed_replaces_old_exif_and_keeps_its_tags(coffee):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    Image.fromarray(coffee).save(buf, "JPEG", quality=80, exif=exif.tobytes())
    data = embed_thumbnail(buf.getvalue(), make_thumbnail(coffee))
    segs = header_segments(data)
    assert sum(s.marker == 0xE1 for s in segs) == 1
    assert Image.open(io.BytesIO(data)).getexif()[ExifTags.Base.Make] == "TestCam"
    assert read_thumbnail(data) == make_thumbnail(coffee)


def test_too_large_thumbnail_is_refused(astronaut):
    with pytest.raises(CorruptionError, match="64000"):
        encode_jpeg(astronaut, thumbnail_size=512, thumbnail_quality=100)


def test_scan_extent_matches_sos_header_and_last_eoi(astronaut):
    data = encode_jpeg(astronaut)  # the thumbnail inside APP1 has its own SOS and EOI
    start, end = scan_extent(data)
    assert end == len(data) - 2 and data[end:] == b"\xff\xd9"
    sos = data.rfind(b"\xff\xda", 0, start)
    assert start == sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    app1 = header_segments(data)[0]
    assert app1.marker == 0xE1 and start > app1.end
    scan = np.frombuffer(data[start:end], np.uint8)
    after_ff = scan[1:][scan[:-1] == 0xFF]
    assert np.all(after_ff == 0)  # a clean scan: only stuffed FF00, no markers (no DRI)
    # trailing garbage after EOI: end is still the LAST FFD9
    assert scan_extent(data + b"\x00\x00") == (start, end)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a JPEG"),
        (b"", "not a JPEG"),
        (b"\xff\xd8\xff\xdb\x00\x43" + bytes(10), "runs past the end"),
        (b"\xff\xd8\x12\x34", "found byte 0x12"),
        (b"\xff\xd8\xff\xd9", "before any SOS"),
        (b"\xff\xd8\xff\xe0\x00\x01", "length 1"),
    ],
)
def test_scan_extent_errors_name_what_was_found(data, match):
    with pytest.raises(CorruptionError, match=match):
        scan_extent(data)


def test_scan_extent_without_eoi(coffee):
    data = encode_jpeg(coffee, thumbnail=False)
    with pytest.raises(CorruptionError, match="no EOI") as e:
        scan_extent(data[:-2])
    assert isinstance(e.value, BitstreamRestoreError) and not isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
        ({"subsampling": "4:1:1"}, "subsampling"),
        ({"restart_interval": -1}, "restart_interval"),
        ({"thumbnail_size": 0}, "thumbnail_size"),
        ({"thumbnail_quality": 200}, "thumbnail_quality"),
    ],
)
def test_bad_encoder_settings(coffee, kwargs, match):
    with pytest.raises(CorruptionError, match=match):
        encode_jpeg(coffee, **kwargs)


def test_bad_image_arrays():
    with pytest.raises(CorruptionError, match="uint8"):
        encode_jpeg(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(CorruptionError, match="shape"):
        encode_jpeg(np.zeros((8, 8, 4), np.uint8))
