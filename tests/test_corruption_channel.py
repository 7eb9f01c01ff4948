"""Bit-error channel: statistics, regions, determinism, applying flips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from src.corruption import (
    CorruptionError,
    bit_offsets_to_positions,
    encode_jpeg,
    flip_bits,
    positions_to_bit_offsets,
    region_bits,
    sample_flips,
    scan_extent,
)


def test_iid_flip_rate_within_3_sigma():
    n_bits, ber, seeds = 1_000_000, 1e-4, 300
    counts = np.array([len(sample_flips(n_bits, ber, s)) for s in range(seeds)])
    expected = n_bits * ber * seeds
    sigma = np.sqrt(n_bits * ber * (1 - ber) * seeds)
    assert abs(counts.sum() - expected) < 3 * sigma
    # per-draw counts are binomial: their variance matches n p (1 - p)
    assert 0.7 < counts.var(ddof=1) / (n_bits * ber * (1 - ber)) < 1.3


def test_iid_positions_are_uniform_and_well_formed():
    pos = np.concatenate([sample_flips(range(4096, 4096 + 8 * 512 * 40), 2e-3, s) for s in range(200)])
    assert pos.dtype == np.int64 and pos.shape[1] == 3
    assert pos[:, 0].min() >= 1 and pos[:, 0].max() <= 40
    assert pos[:, 1].max() < 512 and set(np.unique(pos[:, 2])) == set(range(8))
    hist = np.bincount(pos[:, 0] - 1, minlength=40)
    assert stats.chisquare(hist).pvalue > 1e-3
    assert stats.chisquare(np.bincount(pos[:, 2], minlength=8)).pvalue > 1e-3


def test_positions_sorted_unique_and_round_trip():
    pos = sample_flips(200_000, 0.01, 7, sector_size=4096)
    bits = positions_to_bit_offsets(pos, 4096)
    assert np.all(np.diff(bits) > 0)
    assert np.array_equal(bit_offsets_to_positions(bits, 4096), pos)


@pytest.mark.parametrize("model", ["iid", "gilbert_elliott"])
def test_deterministic_from_seed(model):
    a = sample_flips(1_000_000, 1e-4, 123, model=model)
    b = sample_flips(1_000_000, 1e-4, np.random.default_rng(123), model=model)
    c = sample_flips(1_000_000, 1e-4, 124, model=model)
    assert np.array_equal(a, b) and len(a) > 0
    assert not np.array_equal(a, c)


def test_gilbert_elliott_long_run_ber_equals_requested():
    n_bits, ber, seeds = 2_000_000, 1e-4, 300
    counts = np.array(
        [len(sample_flips(n_bits, ber, s, model="gilbert_elliott", burst_length=32, burst_error_rate=0.25))
         for s in range(seeds)]
    )  # fmt: skip
    rate = counts.sum() / (n_bits * seeds)
    stderr = counts.std(ddof=1) / np.sqrt(seeds) / n_bits
    assert abs(rate - ber) < 4 * stderr
    # bursts: far more variable than binomial counts
    assert counts.var(ddof=1) > 5 * n_bits * ber


def test_gilbert_elliott_flips_come_in_bursts():
    L, h = 64, 0.5
    ge = sample_flips(5_000_000, 1e-4, 1, model="gilbert_elliott", burst_length=L, burst_error_rate=h)
    iid = sample_flips(5_000_000, 1e-4, 1)
    gaps_ge = np.diff(positions_to_bit_offsets(ge))
    gaps_iid = np.diff(positions_to_bit_offsets(iid))
    assert np.median(gaps_ge) < 5  # inside a burst every other bit flips on average
    assert np.median(gaps_iid) > 1000
    # mean flips per burst ~ h * L (runs separated by gaps longer than a few mean bad-state lengths)
    bursts = 1 + np.count_nonzero(gaps_ge > 10 * L)
    assert 0.5 * h * L < len(ge) / bursts < 2 * h * L


def test_gilbert_elliott_bad_parameters():
    with pytest.raises(CorruptionError, match="burst_error_rate"):
        sample_flips(1000, 1e-3, 0, model="gilbert_elliott", burst_error_rate=0)
    with pytest.raises(CorruptionError, match="ber <= burst_error_rate"):
        sample_flips(1000, 0.3, 0, model="gilbert_elliott", burst_error_rate=0.2)
    with pytest.raises(CorruptionError, match="burst_length"):
        sample_flips(1000, 1e-3, 0, model="gilbert_elliott", burst_length=0.5)


def test_zero_and_max_ber():
    assert sample_flips(10_000, 0.0, 0).shape == (0, 3)
    n = len(sample_flips(10_000, 0.5, 0))
    assert abs(n - 5000) < 5 * 50


@pytest.mark.parametrize("sector_size", [512, 4096])
def test_region_scan_never_touches_headers_or_partial_scan_sectors(astronaut, coffee, chelsea, sector_size):
    for img in (astronaut, coffee, chelsea):
        jpeg = encode_jpeg(img)  # with thumbnail: several header sectors
        start, end = scan_extent(jpeg)
        bits = region_bits("scan", len(jpeg) + 16, (start, end), sector_size)
        hit = np.concatenate([sample_flips(bits, 0.02, s, sector_size=sector_size) for s in range(3)])
        sectors = np.unique(hit[:, 0])
        # every hit sector lies wholly inside the scan bytes [start, end) ...
        assert np.all(sectors * sector_size >= start) and np.all((sectors + 1) * sector_size <= end)
        # ... and at this BER every sector of the paper's range start//S+1 .. end//S-1 is hit
        assert sectors.tolist() == list(range(start // sector_size + 1, end // sector_size))


def test_region_scan_of_a_short_scan_is_empty():
    assert len(region_bits("scan", 2000, (600, 1100), 512)) == 0
    assert sample_flips(region_bits("scan", 2000, (600, 1100), 512), 0.1, 0).shape == (0, 3)


def test_region_file_covers_every_ciphertext_bit():
    bits = region_bits("file", 1000, None, 512)
    assert bits == range(8000)
    pos = sample_flips(bits, 0.3, 0)
    offs = positions_to_bit_offsets(pos)
    assert offs.min() < 80 and offs.max() >= 7900 and offs.max() < 8000


def test_flip_bits_matches_a_bit_loop_and_is_an_involution():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    pos = sample_flips(8 * 3000, 0.01, 5)
    out = flip_bits(data, pos)
    expected = bytearray(data)
    for s, b, bit in pos:
        expected[s * 512 + b] ^= 0x80 >> bit  # bit 0 = most significant
    assert out == bytes(expected)
    assert flip_bits(out, pos) == data
    twice = np.concatenate([pos[:1], pos[:1]])
    assert flip_bits(data, twice) == data
    same_byte = np.array([[1, 10, 0], [1, 10, 7]])
    assert flip_bits(data, same_byte)[522] == data[522] ^ 0x81


def test_flip_bits_rejects_bad_positions():
    with pytest.raises(CorruptionError, match="past the end"):
        flip_bits(bytes(100), np.array([[0, 100, 0]]))
    with pytest.raises(CorruptionError, match=r"bit in 0\.\.7"):
        flip_bits(bytes(100), np.array([[0, 1, 8]]))
    with pytest.raises(CorruptionError, match=r"\(n, 3\)"):
        flip_bits(bytes(100), np.array([[0, 1]]))
    assert flip_bits(b"abc", np.empty((0, 3), np.int64)) == b"abc"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ber": 0.6}, r"\[0, 0.5\]"),
        ({"ber": -1e-5}, r"\[0, 0.5\]"),
        ({"ber": "x"}, "number"),
        ({"model": "burst"}, "model must be one of"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_channel_settings(kwargs, match):
    args = {"bits": 1000, "ber": 1e-3, "seed": 0} | kwargs
    with pytest.raises(CorruptionError, match=match):
        sample_flips(**args)


def test_unknown_region():
    with pytest.raises(CorruptionError, match="region must be one of"):
        region_bits("header", 1000, (10, 900))
