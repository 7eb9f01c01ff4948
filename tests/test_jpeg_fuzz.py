"""Decoder fuzzing: mutated JPEGs never crash, hang or raise anything but ``JPEGError``.

Mutations: bit flips (anywhere / header only), garbage runs, inserted markers and bytes, deletions,
truncations, header field smashes, absurd dimensions and sampling factors, duplicated segments. The
default suite runs ~2k inputs; ``make fuzz`` (``-m slow``) runs 100k. Memory is bounded by ``max_pixels``;
a faulthandler watchdog kills the run (with tracebacks) if one input takes longer than ``WATCHDOG_S``.
"""

from __future__ import annotations

import faulthandler
import struct

import numpy as np
import pytest

from src.jpeg import JPEGError, decode, extract_thumbnail, warmup
from src.jpeg.oracle import pillow_jpeg

WATCHDOG_S = 60.0  # per input; a clean small decode takes about a millisecond
MAX_PIXELS = 1 << 20
STRATEGIES = ("paper", "strict", "aligned")


@pytest.fixture(scope="module")
def bases(astronaut, coffee, camera) -> list[bytes]:
    from src.corruption import encode_jpeg

    warmup()
    return [
        pillow_jpeg(astronaut[:48, :64], 75, "4:2:0"),
        pillow_jpeg(coffee[:40, :40], 90, "4:4:4"),
        pillow_jpeg(coffee[100:132, 200:250], 50, "4:2:2", restart_blocks=2),
        pillow_jpeg(camera[:33, :47], 75, restart_blocks=3),
        encode_jpeg(astronaut[::8, ::8], quality=60, thumbnail_size=24),
    ]


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, offset, length) of the segments before the scan (best effort on valid bases)."""
    out = []
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m = data[i + 1]
        (n,) = struct.unpack_from(">H", data, i + 2)
        out.append((m, i, n))
        if m == 0xDA:
            break
        i += 2 + n
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    segs = _segments(data)
    header_end = segs[-1][1] + 2 + segs[-1][2] if segs else 2
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(11))
        n = len(b)
        if n < 4:
            break
        if op == 0:  # bit flips anywhere
            for _ in range(int(rng.integers(1, 9))):
                b[int(rng.integers(n))] ^= 1 << int(rng.integers(8))
        elif op == 1:  # bit flips in the header
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(min(header_end, n)))] ^= 1 << int(rng.integers(8))
        elif op == 2:  # garbage run
            at = int(rng.integers(n))
            run = int(rng.integers(1, 65))
            b[at : at + run] = rng.integers(0, 256, run, dtype=np.uint8).tobytes()
        elif op == 3:  # inserted marker
            at = int(rng.integers(2, n))
            b[at:at] = bytes([0xFF, int(rng.integers(256))])
        elif op == 4:  # deletion
            at = int(rng.integers(2, n))
            del b[at : at + int(rng.integers(1, 33))]
        elif op == 5:  # truncation
            del b[int(rng.integers(2, n)) :]
        elif op == 6 and segs:  # header field smash
            _, off, length = segs[int(rng.integers(len(segs)))]
            at = off + 2 + int(rng.integers(max(1, min(length, 24))))
            if at < len(b):
                b[at] = int(rng.choice([0, 1, 2, 3, 4, 15, 16, 17, 0x7F, 0xFF, int(rng.integers(256))]))
        elif op == 7:  # absurd dimensions
            sof = b.find(b"\xff\xc0")
            if sof >= 0 and sof + 9 <= len(b):
                h, w = (
                    int(x) for x in rng.choice([0, 1, 7, 9, 255, 4095, 65535, int(rng.integers(65536))], 2)
                )
                b[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
        elif op == 8:  # sampling factors / table slots / component count
            sof = b.find(b"\xff\xc0")
            if sof >= 0 and sof + 10 < len(b):
                at = sof + 9 + int(rng.integers(0, 10))
                if at < len(b):
                    b[at] = int(rng.integers(256))
        elif op == 9 and segs:  # duplicated segment
            _, off, length = segs[int(rng.integers(len(segs)))]
            seg = bytes(b[off : off + 2 + length])
            at = int(rng.integers(2, header_end + 1))
            b[at:at] = seg
        else:  # DRI insertion / change
            b[2:2] = b"\xff\xdd\x00\x04" + struct.pack(">H", int(rng.choice([0, 1, 2, 3, 7, 65535])))
    return bytes(b)


def _check(data: bytes, strategy: str) -> str:
    thumb = extract_thumbnail(data)
    assert thumb is None or thumb.startswith(b"\xff\xd8")
    try:
        d = decode(data, strategy, max_pixels=MAX_PIXELS)
    except JPEGError:
        return "rejected"
    assert d.mcu_status.shape == (d.mcu_rows, d.mcu_cols)
    rgb = d.to_rgb()
    assert rgb.shape == (d.height, d.width, 3)
    if d.width * d.height <= 1 << 16:
        d.to_rgb(clip=False, upsample="nearest")
    return "decoded"


def _run(bases: list[bytes], n: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts = {"rejected": 0, "decoded": 0}
    try:
        for i in range(n):
            data = mutate(bases[i % len(bases)], rng)
            faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
            counts[_check(data, STRATEGIES[i % len(STRATEGIES)])] += 1
    finally:
        faulthandler.cancel_dump_traceback_later()
    return counts


def test_fuzz_default(bases):
    counts = _run(bases, 2000, seed=0)
    # both outcomes must be exercised: most mutations hit the scan and decode, header smashes are rejected
    assert counts["decoded"] > 500 and counts["rejected"] > 50, counts


def test_fuzz_absurd_dimensions_are_bounded(bases):
    b = bytearray(bases[0])
    sof = b.find(b"\xff\xc0")
    b[sof + 5 : sof + 9] = struct.pack(">HH", 65535, 65535)
    with pytest.raises(JPEGError, match="exceeds the limit"):
        decode(bytes(b))
    b[sof + 5 : sof + 9] = struct.pack(">HH", 1000, 1000)  # allowed, but the scan data is tiny
    d = decode(bytes(b), max_pixels=MAX_PIXELS)
    assert d.to_rgb().shape == (1000, 1000, 3)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(10))
def test_fuzz_100k(bases, chunk):
    counts = _run(bases, 10_000, seed=1000 + chunk)
    assert sum(counts.values()) == 10_000


def _patch_sof(data: bytes, offset: int, value: bytes) -> bytes:
    sof = data.find(b"\xff\xc0")
    return data[: sof + offset] + value + data[sof + offset + len(value) :]


def _dht_counts(data: bytes, counts: bytes) -> bytes:
    dht = data.find(b"\xff\xc4")
    return data[: dht + 5] + counts + data[dht + 21 :]


HOSTILE = {  # name -> (patch of a clean 4:2:0 file, expected error class name, words in the message)
    "huge dimensions": (
        lambda b: _patch_sof(b, 5, struct.pack(">HH", 65535, 65535)),
        "ImageTooLarge",
        "limit",
    ),
    "CMYK": (lambda b: _patch_sof(b, 9, b"\x04"), "UnsupportedJPEG", "components"),
    "255 components": (lambda b: _patch_sof(b, 9, b"\xff"), "UnsupportedJPEG", "components"),
    "zero sampling factor": (lambda b: _patch_sof(b, 11, b"\x00"), "CorruptHeader", "sampling"),
    "sampling 5x5": (lambda b: _patch_sof(b, 11, b"\x55"), "CorruptHeader", "sampling"),
    "12-bit": (lambda b: _patch_sof(b, 4, b"\x0c"), "UnsupportedJPEG", "precision"),
    "width 0": (lambda b: _patch_sof(b, 7, b"\x00\x00"), "CorruptHeader", "width"),
    "DNL height": (lambda b: _patch_sof(b, 5, b"\x00\x00"), "UnsupportedJPEG", "DNL"),
    "progressive": (lambda b: b.replace(b"\xff\xc0", b"\xff\xc2", 1), "UnsupportedJPEG", "progressive"),
    "arithmetic": (lambda b: b.replace(b"\xff\xc0", b"\xff\xc9", 1), "UnsupportedJPEG", "arithmetic"),
    "hierarchical": (lambda b: b[:2] + b"\xff\xde\x00\x02" + b[2:], "UnsupportedJPEG", "hierarchical"),
    "Huffman code space overflow": (
        lambda b: _dht_counts(b, b"\x02\x04" + b"\x00" * 14),
        "CorruptHeader",
        "code space",
    ),
    "Huffman table too long": (
        lambda b: _dht_counts(b, b"\x00" * 15 + b"\xff"),
        "CorruptHeader",
        "segment end",
    ),
    "DQT precision 2": (
        lambda b: b.replace(b"\xff\xdb\x00\x43\x00", b"\xff\xdb\x00\x43\x20", 1),
        "CorruptHeader",
        "precision",
    ),
    "missing Huffman table": (lambda b: b.replace(b"\xff\xc4", b"\xff\xfe"), "CorruptHeader", "not defined"),
    "SOS before SOF": (lambda b: b.replace(b"\xff\xc0", b"\xff\xfe", 1), "CorruptHeader", "before any frame"),
    "segment length past the end": (lambda b: b[: b.find(b"\xff\xdb") + 10], "CorruptHeader", "past the end"),
    "only SOI": (lambda b: b[:2], "CorruptHeader", "not a JPEG"),
    "SOI + EOI": (lambda b: b"\xff\xd8\xff\xd9", "CorruptHeader", "EOI"),
    "not a JPEG": (lambda b: b"GIF89a" + b[6:], "CorruptHeader", "not a JPEG"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_headers_give_one_line_project_errors(bases, name):
    from src.errors import BitstreamRestoreError

    patch, cls, words = HOSTILE[name]
    data = patch(bases[0])
    with pytest.raises(JPEGError) as info:
        decode(data)
    err = info.value
    assert type(err).__name__ == cls and isinstance(err, BitstreamRestoreError)
    msg = str(err)
    assert words in msg and "\n" not in msg and 10 < len(msg) < 300, msg
    assert not isinstance(err, ValueError)


def test_dri_zero_means_no_restart_interval(bases):
    data = bases[0][:2] + b"\xff\xdd\x00\x04\x00\x00" + bases[0][2:]
    d = decode(data)
    assert d.restart_interval == 0
    np.testing.assert_array_equal(d.to_rgb(), decode(bases[0]).to_rgb())


def test_marker_flood_keeps_events_and_memory_bounded(bases):
    """A scan that is nothing but spurious markers (hostile or erased media): decodes, and the event list
    stays within ``max_events`` (plus a count of the dropped ones)."""
    data = bases[0]
    sos = data.find(b"\xff\xda")
    start = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    flood = data[:start] + b"\xff\x34" * 200_000 + data[start:]
    d = decode(flood, max_events=500)
    assert d.count("spurious_marker") <= 500 and len(d.events) <= 502
    dropped = [e for e in d.events if e.kind == "events_dropped"]
    assert dropped and "spurious_marker" in dropped[-1].detail
    np.testing.assert_array_equal(d.to_rgb(), decode(data).to_rgb())  # FFxx pairs are removed: same scan
