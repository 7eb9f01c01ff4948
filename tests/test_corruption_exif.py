"""A real file's bytes are kept: EXIF (GPS, maker note, thumbnail) survives corruption byte for byte, a
thumbnail is added only when asked (in place), an EXIF block that cannot be edited is an error; the APP1
the simulator writes for arrays is the one it wrote with piexif before (same files, same corruption)."""

from __future__ import annotations

import io
import struct

import numpy as np
import piexif
import pytest
from PIL import ExifTags, Image

from src.corruption import (
    CorruptionError,
    Corruptor,
    UneditableExif,
    embed_thumbnail,
    encode_jpeg,
    header_segments,
    make_thumbnail,
    read_thumbnail,
    scan_extent,
)
from src.corruption.exif import minimal_exif_app1, tiff_layout

GPS = {
    piexif.GPSIFD.GPSLatitudeRef: b"N",
    piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400, 100)),
    piexif.GPSIFD.GPSLongitudeRef: b"E",
    piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (300, 100)),
}


def _jpeg(rgb: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _exif_payload(rgb: np.ndarray, thumbnail: bool = True) -> bytes:
    """A camera-like EXIF block written by piexif: IFD0 (make, model, orientation), Exif IFD (time, an
    opaque maker note), GPS IFD, and IFD1 with a 160x107 JPEG thumbnail."""
    exif = {
        "0th": {
            piexif.ImageIFD.Make: b"TestCam",
            piexif.ImageIFD.Model: b"TC-1",
            piexif.ImageIFD.Orientation: 1,
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2023:06:01 12:00:00",
            piexif.ExifIFD.MakerNote: b"TCAM\x00\x01" + bytes(range(256)) * 2,
        },
        "GPS": dict(GPS),
    }
    if thumbnail:
        exif |= {"1st": {piexif.ImageIFD.Compression: 6}, "thumbnail": _jpeg(_small(rgb), quality=85)}
    return piexif.dump(exif)


def _small(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((160, 107), Image.Resampling.BILINEAR))


def _camera_file(rgb: np.ndarray, payload: bytes | None) -> bytes:
    """SOI + EXIF APP1 (no JFIF, as cameras write) + a Q92 4:2:2 encode with restart markers."""
    data = _jpeg(rgb, quality=92, subsampling="4:2:2", restart_marker_blocks=8)
    jfif = header_segments(data)[0]
    assert jfif.marker == 0xE0
    if payload is None:
        return data  # Pillow's JFIF file, no EXIF
    return b"\xff\xd8" + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[jfif.end :]


def _exif_segment(data: bytes) -> tuple[int, int]:
    s = next(s for s in header_segments(data) if s.marker == 0xE1)
    return s.start, s.end


def _broken(payload: bytes) -> bytes:
    """The same EXIF block with IFD0's offset pointing far past its end (piexif and we cannot read it)."""
    return payload[:10] + struct.pack(">I", 0x7FFF0000) + payload[14:]


def _exif_pointer_broken(payload: bytes) -> bytes:
    """The same EXIF block with the Exif sub-IFD pointer out of range: piexif cannot load it (today's case
    that dropped all tags), but IFD0 and its chain are intact, so a thumbnail can be added in place."""
    tiff = bytearray(payload[6:])
    (n,) = struct.unpack_from(">H", tiff, 8)
    for i in range(n):
        if struct.unpack_from(">H", tiff, 10 + 12 * i)[0] == 0x8769:
            struct.pack_into(">I", tiff, 10 + 12 * i + 8, 0x00FFFFF0)
    return payload[:6] + bytes(tiff)


def assert_only_inner_scan_sectors_changed(original: bytes, sample, sector_size: int = 512) -> None:
    """The clean file is the input byte for byte, and the corrupted file differs from it only inside the
    sectors lying strictly inside the scan: every header byte (EXIF, GPS, thumbnail, tables) and the
    partial first/last scan sectors are unchanged."""
    assert sample.clean_jpeg == original
    bad = sample.corrupted_jpeg
    assert len(bad) == len(original)
    start, end = scan_extent(original)
    lo, hi = (start // sector_size + 1) * sector_size, (end // sector_size) * sector_size
    diff = np.flatnonzero(np.frombuffer(original, np.uint8) != np.frombuffer(bad, np.uint8))
    assert diff.size > 0, "the sample should be damaged"
    assert lo <= diff.min() and diff.max() < hi
    assert bad[:lo] == original[:lo] and bad[hi:] == original[hi:]


@pytest.fixture(scope="module")
def camera_files(coffee) -> dict[str, bytes]:
    full = _exif_payload(coffee)
    return {
        "exif_gps_thumbnail": _camera_file(coffee, full),
        "exif_no_thumbnail": _camera_file(coffee, _exif_payload(coffee, thumbnail=False)),
        "broken_exif": _camera_file(coffee, _broken(full)),
        "exif_piexif_cannot_load": _camera_file(coffee, _exif_pointer_broken(_exif_payload(coffee, False))),
        "no_exif": _camera_file(coffee, None),
    }


@pytest.mark.parametrize(
    "case", ["exif_gps_thumbnail", "exif_no_thumbnail", "broken_exif", "exif_piexif_cannot_load", "no_exif"]
)
@pytest.mark.parametrize("preset", ["paper", "xts", "raw", "android_fde"])
def test_corruption_keeps_every_byte_outside_the_inner_scan_sectors(camera_files, case, preset):
    original = camera_files[case]
    c = Corruptor.from_preset(preset, ber=2e-4)
    for seed in (0, 1):
        s = c.corrupt(original, seed)
        assert_only_inner_scan_sectors_changed(original, s, c.sector_size)
        if case == "exif_gps_thumbnail":
            # the camera's EXIF is read back unchanged from the corrupted file
            assert piexif.load(s.corrupted_jpeg)["GPS"] == GPS
            assert read_thumbnail(s.corrupted_jpeg) == read_thumbnail(original) == s.thumbnail
        if case in ("no_exif", "exif_no_thumbnail", "broken_exif", "exif_piexif_cannot_load"):
            assert s.thumbnail is None  # no thumbnail gained


def test_the_broken_cases_are_what_they_claim(camera_files):
    for case in ("broken_exif", "exif_piexif_cannot_load"):
        start, end = _exif_segment(camera_files[case])
        with pytest.raises(Exception):  # noqa: B017 (piexif raises assorted errors)
            piexif.load(camera_files[case][start + 4 : end])
    start, end = _exif_segment(camera_files["broken_exif"])
    with pytest.raises(UneditableExif, match="IFD0 offset"):
        tiff_layout(camera_files["broken_exif"][start + 4 : end])


def test_if_missing_keeps_a_file_with_a_thumbnail_as_it_is(camera_files):
    c = Corruptor.from_preset("paper", add_thumbnail="if_missing", ber=1e-4)
    original = camera_files["exif_gps_thumbnail"]
    assert_only_inner_scan_sectors_changed(original, c.corrupt(original, 2))


@pytest.mark.parametrize("case", ["exif_no_thumbnail", "exif_piexif_cannot_load"])
def test_adding_a_thumbnail_edits_the_exif_in_place(camera_files, coffee, case):
    """Only IFD0's next-IFD offset changes; IFD1 and the thumbnail are appended; all else is kept."""
    original = camera_files[case]
    c = Corruptor.from_preset("paper", add_thumbnail="if_missing", ber=1e-4)
    s = c.corrupt(original, 3)
    clean = s.clean_jpeg
    (a0, a1), (b0, b1) = _exif_segment(original), _exif_segment(clean)
    assert a0 == b0 and original[:a0] == clean[:b0] and original[a1:] == clean[b1:]  # other segments, scan
    old, new = original[a0 + 4 : a1], clean[b0 + 4 : b1]
    field = 6 + tiff_layout(old).next_field  # offset of IFD0's next-IFD pointer in the payload
    assert new[:field] == old[:field] and new[field + 4 : len(old)] == old[field + 4 :]
    assert len(new) > len(old)
    # readers see the old tags and the new thumbnail, made from the file in stored orientation
    im = Image.open(io.BytesIO(clean))
    assert im.getexif()[ExifTags.Base.Make] == "TestCam"
    if case == "exif_no_thumbnail":
        assert piexif.load(clean)["GPS"] == GPS
    thumb = s.thumbnail
    assert thumb is not None and Image.open(io.BytesIO(thumb)).size == (160, 107)
    ref = np.asarray(Image.fromarray(coffee).resize((160, 107), Image.Resampling.BICUBIC), np.float64)
    got = np.asarray(Image.open(io.BytesIO(thumb)).convert("RGB"), np.float64)
    assert 10 * np.log10(255**2 / np.mean((got - ref) ** 2)) > 30
    from src.jpeg import extract_thumbnail

    assert extract_thumbnail(s.corrupted_jpeg) == thumb  # the decoder finds it in the corrupted file
    ifd1 = im.getexif().get_ifd(ExifTags.IFD.IFD1)
    off, n = ifd1[ExifTags.Base.JpegIFOffset], ifd1[ExifTags.Base.JpegIFByteCount]
    assert im.info["exif"][6 + off : 6 + off + n] == thumb
    # the damage itself still lies strictly inside the scan of the (new) clean file
    assert_only_inner_scan_sectors_changed(clean, s)


def test_always_replaces_the_thumbnail_and_keeps_the_old_bytes(camera_files):
    original = camera_files["exif_gps_thumbnail"]
    old_thumb = read_thumbnail(original)
    clean = Corruptor.from_preset("paper", add_thumbnail="always").prepare(original)
    a1, (b0, b1) = _exif_segment(original)[1], _exif_segment(clean)
    assert clean[b0 + 4 : b1].find(old_thumb) > 0  # kept, unreferenced
    assert read_thumbnail(clean) not in (None, old_thumb)
    assert piexif.load(clean)["GPS"] == GPS and original[a1:] == clean[b1:]


def test_a_file_without_exif_gains_one_after_its_jfif_segment_when_asked(camera_files):
    original = camera_files["no_exif"]
    clean = Corruptor.from_preset("paper", add_thumbnail="always").prepare(original)
    jfif = header_segments(original)[0]
    app1 = header_segments(clean)[1]
    assert app1.marker == 0xE1 and app1.start == jfif.end
    assert clean[: jfif.end] == original[: jfif.end] and clean[app1.end :] == original[jfif.end :]
    assert read_thumbnail(clean) is not None


@pytest.mark.parametrize("mode", ["if_missing", "always"])
def test_an_exif_block_that_cannot_be_edited_is_an_error(camera_files, mode):
    c = Corruptor.from_preset("paper", add_thumbnail=mode)
    with pytest.raises(UneditableExif, match=r"EXIF APP1 at byte 2: EXIF IFD0 offset \d+ lies outside") as e:
        c.corrupt(camera_files["broken_exif"], 0)
    assert isinstance(e.value, CorruptionError) and "\n" not in str(e.value)


def test_an_exif_block_without_room_for_a_thumbnail_is_an_error(coffee):
    payload = piexif.dump(
        {"0th": {piexif.ImageIFD.Make: b"X"}, "Exif": {piexif.ExifIFD.MakerNote: bytes(64000)}}
    )
    data = _camera_file(coffee, payload)
    with pytest.raises(UneditableExif, match="more than a JPEG segment allows"):
        embed_thumbnail(data, make_thumbnail(coffee))
    assert Corruptor.from_preset("paper").corrupt(data, 0).clean_jpeg == data  # never: fine


def test_little_endian_exif_of_odd_length_is_edited_in_place(coffee):
    make = b"LECam-1\x00"  # 8 bytes: the TIFF block is 34 + 1 bytes, odd, so IFD1 needs a pad byte
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, len(make), 26) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd0 + make + b"\x00"
    data = _camera_file(coffee, payload)
    assert len(payload[6:]) % 2 == 1
    start, end = _exif_segment(data)
    thumb = make_thumbnail(coffee)
    out = embed_thumbnail(data, thumb)
    new = out[start + 4 : _exif_segment(out)[1]]
    layout = tiff_layout(new)
    assert layout.order == "<" and layout.ifd1 == len(payload) - 6 + 1  # word-aligned after the old block
    assert (
        read_thumbnail(out) == thumb
        and Image.open(io.BytesIO(out)).getexif()[ExifTags.Base.Make] == "LECam-1"
    )
    assert out[:start] == data[:start] and out[_exif_segment(out)[1] :] == data[end:]
    assert embed_thumbnail(out, make_thumbnail(coffee, 100), replace=False) == out


def test_add_thumbnail_needs_a_thumbnail_size():
    with pytest.raises(CorruptionError, match="add_thumbnail='if_missing' needs a thumbnail_size"):
        Corruptor(add_thumbnail="if_missing", thumbnail_size=None)
    with pytest.raises(CorruptionError, match="add_thumbnail must be one of"):
        Corruptor(add_thumbnail="yes")


# -- the simulator's own files: the same bytes as with piexif before ---------------------------------------
_FIRST = {
    piexif.ImageIFD.Compression: 6,
    piexif.ImageIFD.XResolution: (72, 1),
    piexif.ImageIFD.YResolution: (72, 1),
    piexif.ImageIFD.ResolutionUnit: 2,
}


def _piexif_encode(rgb: np.ndarray, thumb: bytes, **kw) -> bytes:
    """The simulator's earlier writer: Pillow encode, piexif.dump of a fresh EXIF dict with the thumbnail in
    IFD1, the APP1 right after SOI in place of the JFIF APP0."""
    data = _jpeg(rgb, **kw)
    payload = piexif.dump(
        {"0th": {}, "Exif": {}, "GPS": {}, "Interop": {}, "1st": dict(_FIRST), "thumbnail": thumb}
    )
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return b"\xff\xd8" + app1 + data[header_segments(data)[0].end :]


@pytest.mark.parametrize("fixture", ["astronaut", "coffee", "chelsea", "camera"])
def test_app1_built_as_bytes_is_the_piexif_one(request, fixture):
    img = request.getfixturevalue(fixture)
    for size, quality in ((160, 90), (64, 75), (320, 95)):
        thumb = make_thumbnail(img, size, quality)
        payload = piexif.dump({"1st": dict(_FIRST), "thumbnail": thumb, "0th": {}, "Exif": {}, "GPS": {}})
        assert minimal_exif_app1(thumb)[4:] == payload
    kw = {"quality": 75} | ({} if img.ndim == 2 else {"subsampling": "4:2:0"})
    assert encode_jpeg(img) == _piexif_encode(img, make_thumbnail(img), **kw)


def test_paper_preset_on_arrays_gives_the_earlier_files_and_corruption(astronaut, coffee):
    paper = Corruptor.from_preset("paper", ber=1e-4)
    for img, seed in ((astronaut, 0), (coffee, 5)):
        s = paper.corrupt(img, seed)
        earlier = _piexif_encode(img, make_thumbnail(img), quality=75, subsampling="4:2:0")
        assert s.clean_jpeg == earlier
        assert paper.corrupt(earlier, seed).corrupted_jpeg == s.corrupted_jpeg


def test_thumbnail_reducing_gap_changes_only_the_thumbnail(coffee):
    big = np.asarray(Image.fromarray(coffee).resize((1536, 1024), Image.Resampling.BICUBIC))
    exact = Corruptor.from_preset("paper")
    fast = Corruptor.from_preset("paper", thumbnail_reducing_gap=3.0)
    a, b = exact.encode(big), fast.encode(big)
    assert read_thumbnail(a) != read_thumbnail(b)
    assert a[scan_extent(a)[0] :] == b[scan_extent(b)[0] :]  # the same scan
    ta, tb = (
        np.asarray(Image.open(io.BytesIO(read_thumbnail(d))).convert("RGB"), np.float64) for d in (a, b)
    )
    assert ta.shape == tb.shape and 10 * np.log10(255**2 / np.mean((ta - tb) ** 2)) > 40
    with pytest.raises(CorruptionError, match="thumbnail_reducing_gap"):
        Corruptor(thumbnail_reducing_gap=0.5)


def test_a_pillow_image_encodes_as_its_array(coffee, camera):
    c = Corruptor.from_preset("paper", ber=1e-4)
    for img in (coffee, camera):
        assert c.corrupt(Image.fromarray(img), 4).corrupted_jpeg == c.corrupt(img, 4).corrupted_jpeg
    with pytest.raises(CorruptionError, match="mode RGB or L, got RGBA"):
        c.corrupt(Image.fromarray(coffee).convert("RGBA"), 0)
