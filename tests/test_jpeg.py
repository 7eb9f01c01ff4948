"""Robust decoder on clean files: pixels vs Pillow, coefficients vs libjpeg (jpeglib), header parsing,
thumbnails, API contract."""

from __future__ import annotations

import io
import struct

import jpeglib
import numpy as np
import pytest
from PIL import Image

from src.jpeg import (
    MCU_LOST,
    MCU_OK,
    MCU_RESTART,
    CorruptHeader,
    ImageTooLarge,
    JPEGError,
    UnsupportedJPEG,
    decode,
    extract_thumbnail,
    parse_header,
    planes_to_rgb,
)
from src.jpeg.oracle import pillow_jpeg


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def check_coefficients(data: bytes, d, tmp_path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    ref = jpeglib.read_dct(str(path))
    arrays = [ref.Y] if len(d.components) == 1 else [ref.Y, ref.Cb, ref.Cr]
    for a, ours, dc in zip(arrays, d.coefficients, d.dc, strict=True):
        h, w = a.shape[:2]
        np.testing.assert_array_equal(ours[:h, :w].reshape(h, w, 8, 8), a)
        np.testing.assert_array_equal(dc[:h, :w], a[:, :, 0, 0])


@pytest.mark.parametrize("quality", [50, 75, 95])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2", "4:2:0"])
@pytest.mark.parametrize("restart", [0, 7])
def test_clean_colour_matches_pillow_and_libjpeg(astronaut, quality, subsampling, restart, tmp_path):
    img = astronaut[:200, 24:328]  # 200x304: partial MCUs in both directions for 4:2:0
    data = pillow_jpeg(img, quality, subsampling, restart_blocks=restart)
    d = decode(data)
    rgb = d.to_rgb()
    ref = pillow_rgb(data)
    assert rgb.shape == ref.shape and rgb.dtype == np.uint8
    assert psnr(rgb, ref) >= 50.0
    assert np.mean(rgb != ref) < 1e-3  # libjpeg's arithmetic: in practice bit-exact
    check_coefficients(data, d, tmp_path)
    ok = (d.mcu_status | MCU_RESTART) == (MCU_OK | MCU_RESTART)
    assert ok.all()
    assert (d.mcu_skipped_bits == 0).all()
    assert [e.kind for e in d.events if e.kind != "restart"] == []
    if restart:
        flagged = np.flatnonzero(d.mcu_status.ravel() & MCU_RESTART)
        np.testing.assert_array_equal(flagged, np.arange(restart, d.mcu_cols * d.mcu_rows, restart))
        assert d.count("restart") == flagged.size


@pytest.mark.parametrize("quality", [50, 75, 95])
@pytest.mark.parametrize("restart", [0, 5])
def test_clean_gray_matches_pillow_and_libjpeg(camera, quality, restart, tmp_path):
    img = camera[:120, :250]
    data = pillow_jpeg(img, quality, restart_blocks=restart)
    d = decode(data)
    assert d.color == "gray" and len(d.planes) == 1
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    rgb = d.to_rgb()
    assert psnr(rgb[..., 0], ref) >= 50.0
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
    check_coefficients(data, d, tmp_path)


def test_odd_size_and_unclipped_output(chelsea):
    data = pillow_jpeg(chelsea, 90, "4:2:0")
    d = decode(data)
    assert (d.width, d.height) == (451, 300)
    assert (d.mcu_cols, d.mcu_rows, d.mcu_width, d.mcu_height) == (29, 19, 16, 16)
    assert d.planes[0].shape == (19 * 16, 29 * 16) and d.planes[1].shape == (19 * 8, 29 * 8)
    assert d.dc[0].shape == (38, 58) and d.dc[1].shape == (19, 29)
    assert all(p.dtype == np.float32 for p in d.planes) and all(x.dtype == np.int32 for x in d.dc)
    assert d.mcu_status.shape == (19, 29) and d.mcu_bitpos.dtype == np.int64
    # MCU start bits increase in raster order on a clean file
    assert (np.diff(d.mcu_bitpos.ravel()) > 0).all()
    f = d.to_rgb(clip=False)
    u = d.to_rgb(clip=True)
    assert f.dtype == np.float32 and f.shape == u.shape
    # the float path differs from libjpeg's integer path only by rounding (clipped where it saturates)
    assert np.abs(np.clip(f, 0, 255) - u).max() <= 2.5
    assert psnr(np.clip(np.rint(f), 0, 255), pillow_rgb(data)) > 45


def test_dc_map_moves_samples_by_q0_over_8(coffee):
    data = pillow_jpeg(coffee[:64, :64], 75, "4:4:4")
    d = decode(data)
    flat = [np.flatnonzero(c.reshape(-1, 64)[:, 1:].any(axis=1) == 0) for c in d.coefficients]
    y = d.planes[0]
    assert flat[0].size > 0
    for bi in flat[0][:5]:  # DC-only blocks are flat at DC*q0/8 + 128 (rounded like libjpeg)
        by, bx = divmod(int(bi), 8)
        expected = np.floor((int(d.dc[0][by, bx]) * int(d.qtables[0][0]) + 4) / 8) + 128
        assert (y[by * 8 : by * 8 + 8, bx * 8 : bx * 8 + 8] == expected).all()


def test_float_idct_close_to_islow(astronaut):
    data = pillow_jpeg(astronaut[:128, :128], 75, "4:2:0")
    a = decode(data)
    b = decode(data, idct="float")
    for pa, pb in zip(a.planes, b.planes, strict=True):
        assert np.abs(pa - pb).max() <= 1.5


def test_nearest_upsampling_replicates_chroma(astronaut):
    data = pillow_jpeg(astronaut[:64, :64], 90, "4:2:0")
    d = decode(data)
    gray_chroma = [d.planes[0], np.full_like(d.planes[1], 128), np.full_like(d.planes[2], 128)]
    rgb = planes_to_rgb(gray_chroma, d.components, 64, 64, upsample="nearest", clip=False)
    np.testing.assert_allclose(rgb[..., 0], d.planes[0][:64, :64], atol=1e-4)
    rgb = d.to_rgb(clip=False, upsample="nearest")
    cr = np.repeat(np.repeat(d.planes[2][:32, :32], 2, 0), 2, 1)
    cb = np.repeat(np.repeat(d.planes[1][:32, :32], 2, 0), 2, 1)
    np.testing.assert_allclose(rgb[..., 0], d.planes[0][:64, :64] + 1.402 * (cr - 128), atol=1e-3)
    np.testing.assert_allclose(rgb[..., 2], d.planes[0][:64, :64] + 1.772 * (cb - 128), atol=1e-3)


def _patch_component_ids(data: bytes, ids: tuple[int, int, int]) -> bytes:
    b = bytearray(data)
    sof = b.find(b"\xff\xc0")
    for k in range(3):
        b[sof + 10 + 3 * k] = ids[k]
    sos = b.find(b"\xff\xda")
    for k in range(3):
        b[sos + 5 + 2 * k] = ids[k]
    return bytes(b)


def test_component_ids_are_arbitrary(coffee):
    data = pillow_jpeg(coffee[:96, :96], 75, "4:2:0")
    a = decode(data).to_rgb()
    b = decode(_patch_component_ids(data, (0, 1, 2))).to_rgb()
    c = decode(_patch_component_ids(data, (7, 200, 3))).to_rgb()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_header_with_several_tables_per_segment_and_16bit_dqt(coffee):
    data = pillow_jpeg(coffee[:64, :64], 75, "4:2:0")
    hdr = parse_header(data)
    b = bytearray(data)
    # rewrite the 8-bit DQT segment(s) as one 16-bit DQT segment with both tables
    q16 = b""
    for tq in (0, 1):
        from src.jpeg.markers import ZIGZAG

        table = next(q for c, q in zip(hdr.components, hdr.qtables, strict=True) if c.tq == tq)
        q16 += bytes([0x10 | tq]) + table[ZIGZAG].astype(">u2").tobytes()
    start = b.find(b"\xff\xdb")
    end = start
    while b[end : end + 2] == b"\xff\xdb":
        end += 2 + struct.unpack(">H", b[end + 2 : end + 4])[0]
    b[start:end] = b"\xff\xdb" + struct.pack(">H", 2 + len(q16)) + q16
    np.testing.assert_array_equal(decode(bytes(b)).to_rgb(), decode(data).to_rgb())


def test_restart_interval_is_read_from_dri(astronaut):
    data = pillow_jpeg(astronaut[:64, :64], 75, "4:2:0", restart_blocks=3)
    assert parse_header(data).restart_interval == 3


@pytest.mark.parametrize(
    ("patch", "exc", "words"),
    [
        (lambda b: b.replace(b"\xff\xc0", b"\xff\xc2", 1), UnsupportedJPEG, "progressive"),
        (lambda b: b.replace(b"\xff\xc0", b"\xff\xc9", 1), UnsupportedJPEG, "arithmetic"),
        (lambda b: b.replace(b"\xff\xc0", b"\xff\xc3", 1), UnsupportedJPEG, "lossless"),
        (
            lambda b: b[: b.find(b"\xff\xc0") + 4] + b"\x0c" + b[b.find(b"\xff\xc0") + 5 :],
            UnsupportedJPEG,
            "12",
        ),
        (lambda b: b[:300], CorruptHeader, "runs past the end"),
        (lambda b: b"\x89PNG" + b[4:], CorruptHeader, "not a JPEG"),
        (lambda b: b.replace(b"\xff\xc4", b"\xff\xfe", 1), CorruptHeader, "Huffman table"),
    ],
)
def test_unusable_headers_raise_jpeg_errors(coffee, patch, exc, words):
    data = pillow_jpeg(coffee[:64, :64], 75, "4:2:0")
    with pytest.raises(exc, match=words) as info:
        decode(patch(data))
    assert isinstance(info.value, JPEGError)


def test_cmyk_is_unsupported(coffee):
    out = io.BytesIO()
    Image.fromarray(coffee[:32, :32]).convert("CMYK").save(out, "JPEG")
    with pytest.raises(UnsupportedJPEG, match="CMYK"):
        decode(out.getvalue())


def test_pixel_limit_guards_against_bombs(coffee):
    data = bytearray(pillow_jpeg(coffee[:64, :64], 75))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(ImageTooLarge, match="3600000000"):
        decode(bytes(data))
    with pytest.raises(ImageTooLarge):
        decode(pillow_jpeg(coffee[:64, :64], 75), max_pixels=1000)


def test_unknown_option_and_strategy_are_rejected(coffee):
    data = pillow_jpeg(coffee[:16, :16])
    with pytest.raises(TypeError, match="unknown decode option"):
        decode(data, retry_bits=3)
    with pytest.raises(ValueError, match="strategy"):
        decode(data, strategy="magic")


def test_thumbnail_from_exif_matches_piexif_and_survives_scan_corruption(astronaut):
    import piexif

    from src.corruption import Corruptor

    sample = Corruptor.from_preset("paper", ber=3e-4).corrupt(astronaut[:256, :256], seed=3)
    assert sample.thumbnail is not None
    assert extract_thumbnail(sample.clean_jpeg) == sample.thumbnail
    assert extract_thumbnail(sample.corrupted_jpeg) == sample.thumbnail
    assert piexif.load(sample.clean_jpeg)["thumbnail"] == sample.thumbnail
    d = decode(sample.corrupted_jpeg)
    assert d.thumbnail == sample.thumbnail
    thumb = np.asarray(Image.open(io.BytesIO(d.thumbnail)))
    assert thumb.ndim == 3 and max(thumb.shape[:2]) == 160
    # a header broken AFTER the APP1 still yields the thumbnail (the parser stops at the damage)
    broken = bytearray(sample.clean_jpeg)
    app1 = broken.find(b"\xff\xe1")
    dqt = broken.find(b"\xff\xdb", app1 + 2 + struct.unpack(">H", broken[app1 + 2 : app1 + 4])[0])
    broken[dqt + 2 : dqt + 4] = b"\xff\xff"
    assert extract_thumbnail(bytes(broken)) == sample.thumbnail
    assert extract_thumbnail(pillow_jpeg(astronaut[:32, :32])) is None
    assert extract_thumbnail(b"garbage") is None


def test_jfxx_thumbnail(astronaut):
    thumb = pillow_jpeg(astronaut[::16, ::16], 80)
    payload = b"JFXX\x00\x10" + thumb
    main = pillow_jpeg(astronaut[:64, :64])
    data = main[:2] + b"\xff\xe0" + struct.pack(">H", 2 + len(payload)) + payload + main[2:]
    assert extract_thumbnail(data) == thumb
    assert decode(data).thumbnail == thumb


def test_scan_ends_at_last_eoi(coffee):
    data = pillow_jpeg(coffee[:64, :64], 75)
    d_ref = decode(data)
    d = decode(data + b"trailing bytes")  # data after the last FFD9 is ignored
    np.testing.assert_array_equal(d.to_rgb(), d_ref.to_rgb())
    t = decode(data[:-2])  # no EOI: the scan runs to the end of the data
    assert "no_eoi" in {e.kind for e in t.events}
    np.testing.assert_array_equal(t.to_rgb(), d_ref.to_rgb())


def test_truncated_scan_fills_the_rest(astronaut):
    data = pillow_jpeg(astronaut[:128, :128], 75, "4:2:0")
    hdr = parse_header(data)
    cut = data[: (hdr.scan_start + hdr.scan_end) // 2]
    for fill, fill_truncated in (("dc", "dc"), ("grey", "grey"), ("dc", "grey")):
        d = decode(cut, fill=fill, fill_truncated=fill_truncated)
        lost = (d.mcu_status & MCU_LOST) != 0
        assert 0 < lost.sum() < lost.size
        first = int(np.flatnonzero(lost.ravel())[0])
        assert lost.ravel()[first:].all()  # everything after the end of data is filled
        assert d.count("eof_fill") == 1
        y = d.dc[0].reshape(d.mcu_rows, 2, d.mcu_cols, 2).transpose(0, 2, 1, 3).reshape(-1, 4)
        if "grey" in (
            fill,
            fill_truncated,
        ):  # a truncated file's lost tail is mid-grey by default, as libjpeg's
            assert (y[first:] == 0).all()
        else:  # the last decoded DC of the component carries on
            assert (y[first:] == y[first - 1, -1]).all()
    assert (decode(cut).dc[0] == decode(cut, fill_truncated="grey").dc[0]).all()
    # with an EOI, MCUs left without data at the end (garbage decoded as extra MCUs) keep the DC carried on
    d = decode(cut + b"\xff\xd9")
    lost = ((d.mcu_status & MCU_LOST) != 0).ravel()
    y = d.dc[0].reshape(d.mcu_rows, 2, d.mcu_cols, 2).transpose(0, 2, 1, 3).reshape(-1, 4)
    first = int(np.flatnonzero(lost)[0])
    assert (y[first:] == y[first - 1, -1]).all() and y[first - 1, -1] != 0


@pytest.mark.parametrize(
    "factors",  # jpeglib's samp_factor rows, one per component
    [((1, 2), (1, 1), (1, 1)), ((2, 1), (1, 1), (1, 1)), ((4, 1), (1, 1), (1, 1)), ((1, 4), (1, 1), (1, 1)),
     ((2, 1), (1, 2), (1, 2)), ((2, 2), (2, 1), (1, 1))],
)  # fmt: skip
def test_other_sampling_factors_match_pillow(astronaut, factors, tmp_path):
    """4:4:0, 4:1:1, and mixes where the luma is upsampled too (libjpeg's fancy and replicating filters)."""
    img = jpeglib.from_spatial(np.ascontiguousarray(astronaut[:100, :130]))
    img.samp_factor = np.array(factors)
    path = tmp_path / "x.jpg"
    img.write_spatial(str(path), qt=80)
    data = path.read_bytes()
    d = decode(data)
    assert sorted({(c.h, c.v) for c in d.components}) == sorted({(f[1], f[0]) for f in factors})
    np.testing.assert_array_equal(d.to_rgb(), pillow_rgb(data))
    check_coefficients(data, d, tmp_path)


def _segment_ends(data: bytes) -> list[int]:
    """File offsets just after each marker segment before SOS (where stray bytes can be inserted)."""
    ends, i = [], 2
    while data[i + 1] != 0xDA:
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        ends.append(i)
    return ends


@pytest.mark.parametrize("count", [1, 5, 16])
def test_stray_bytes_between_segments_are_skipped_like_libjpeg(astronaut, count):
    """Issue 11 part 7: real camera files carry 1, 5 or 16 stray bytes between marker segments; libjpeg
    skips them with a warning, so must we (an event, the same pixels)."""
    from src.corruption import encode_jpeg

    clean = encode_jpeg(astronaut[:96, :128], quality=75, thumbnail_size=32)  # APP0 + APP1 + tables
    ref = decode(clean)
    rng = np.random.default_rng(count)
    ends = _segment_ends(clean)
    assert len(ends) >= 4
    for at in (ends[0], ends[len(ends) // 2], ends[-1]):  # after the first segment, mid-header, before SOS
        stray = bytes(rng.choice(np.arange(255), count).astype(np.uint8))  # no 0xff: never a marker
        if count >= 5:
            stray = stray[:2] + b"\xff\x00" + stray[4:]  # a stuffed-zero pair is skipped too
        data = clean[:at] + stray + clean[at:]
        d = decode(data)
        np.testing.assert_array_equal(d.to_rgb(), ref.to_rgb())
        np.testing.assert_array_equal(d.mcu_status, ref.mcu_status)
        assert d.thumbnail == ref.thumbnail
        extra = [e for e in d.events if e.kind == "extraneous_bytes"]
        assert len(extra) == 1 and f"{count} bytes before marker" in extra[0].detail
        assert f"at file byte {at} " in extra[0].detail
        assert [e for e in d.events if e.kind != "extraneous_bytes"] == ref.events
    # bytes that never reach a marker are still a broken header
    with pytest.raises(CorruptHeader, match="no marker follows"):
        decode(clean[: ends[0]] + b"\x00" * 8)


def test_fused_rgb_path_equals_the_planes_path(astronaut, chelsea):
    """``decode(...).to_rgb()`` transforms MCU rows straight into RGB (the planes are made only when asked
    for): the same pixels as ``planes_to_rgb`` on the planes, clean or corrupted, for every sampling."""
    import pickle

    from src.corruption import Corruptor
    from src.jpeg.decoder import LazyPlanes

    files = [pillow_jpeg(chelsea, 80, sub) for sub in ("4:2:0", "4:2:2", "4:4:4")]
    files.append(pillow_jpeg(chelsea[..., 0], 80))
    files.append(Corruptor.from_preset("paper", ber=1e-3).corrupt(astronaut, seed=5).corrupted_jpeg)
    for data in files:
        for upsample in ("fancy", "nearest"):
            d = decode(data)
            assert isinstance(d.planes, LazyPlanes) and not d.planes.ready
            fused = d.to_rgb(upsample=upsample)
            assert not d.planes.ready  # the fused path made no planes
            planes = list(d.planes)
            assert d.planes.ready and len(planes) == len(d.components)
            ref = planes_to_rgb(planes, d.components, d.width, d.height, upsample, True, d.color)
            np.testing.assert_array_equal(fused, ref)
            np.testing.assert_array_equal(d.to_rgb(upsample=upsample), ref)  # now from the planes
    back = pickle.loads(pickle.dumps(decode(files[0])))
    np.testing.assert_array_equal(back.to_rgb(), decode(files[0]).to_rgb())
    assert not isinstance(decode(files[0], idct="float").planes, LazyPlanes)


def test_events_are_built_on_first_access_and_compare_as_lists(astronaut, coffee):
    """``Decoded.events`` is a ``LazyEvents``: equal to the list it stands for, picklable; a file with a
    preview JPEG appended after its EOI decodes to the same pixels."""
    import pickle

    from src.jpeg.decoder import LazyEvents

    main = pillow_jpeg(astronaut[:128, :192], 85, "4:2:2", restart_blocks=4)
    ref = decode(main)
    assert isinstance(ref.events, LazyEvents)
    assert ref.events == [e for e in ref.events] and len(ref.events) == ref.count("restart") > 0
    d = decode(main + pillow_jpeg(coffee[:96, :96], 75))
    np.testing.assert_array_equal(d.to_rgb(), ref.to_rgb())
    assert pickle.loads(pickle.dumps(d)).events == d.events
    assert d.count("spurious_marker") > 0  # the preview's markers, after the last MCU's data
