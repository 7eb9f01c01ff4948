"""Bit-error channel: where the flips land (sampled without a per-bit loop) and applying them.

Positions are int64 rows ``(sector, byte_in_sector, bit)`` with ``bit`` 0 = most significant bit, sorted,
and ``sector`` counted from the file's first byte (0-based, independent of ``first_sector``).

Regions (the sectors that may be hit):
- ``scan``: the sectors lying strictly inside the entropy-coded scan, ``start // S + 1 .. end // S - 1``
  (start = first byte after the SOS header, end = offset of the last FFD9), on the file's own sector grid.
  Headers and the partial first/last scan sectors are never hit (the Two-ACIR paper's rule).
- ``file``: every bit of the ciphertext (headers, the thumbnail and the padding included).

Models:
- ``iid``: each bit flips independently with probability ``ber``: a binomial count, then distinct uniform
  positions.
- ``gilbert_elliott``: a two-state Markov chain over the bits (a Gilbert channel: the good state never
  errs, the bad state flips each bit with probability ``burst_error_rate`` = h). The bad state lasts
  ``burst_length`` bits on average (geometric sojourns, leaving it with probability 1/burst_length per
  bit); the entry probability is set so the long-run fraction of bad bits is pi_B = ber / h, hence the
  long-run BER equals ``ber`` exactly (ber <= h is required). The chain starts in its stationary
  distribution. Sampling draws whole sojourn lengths (geometric) and the flips inside bad runs, no loop
  over bits.

Sector loss (:func:`sample_lost_sectors`, :func:`fill_sectors`): whole sectors of the stored data read back
as one byte value (0x00 for a sector the medium returns zeroed, 0xFF for erased flash pages), in runs of
``run`` consecutive sectors aligned to multiples of ``run`` from the file start (flash blocks and
file-system clusters are aligned). Only runs lying wholly in the region's sectors can be lost: ``count``
runs drawn uniformly without replacement, or each run with probability ``rate``.

Truncation (:func:`truncation_point`): the file ends at a fraction of its scan; the rest is gone.
"""

from __future__ import annotations

import numpy as np

from src.corruption.errors import CorruptionError

REGIONS = ("scan", "file")
MODELS = ("iid", "gilbert_elliott")


def as_generator(seed: int | np.random.Generator | np.random.SeedSequence) -> np.random.Generator:
    """A numpy Generator from a non-negative int seed, a SeedSequence, or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise CorruptionError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def check_ber(ber: float) -> float:
    """The bit error rate as a float in [0, 0.5]."""
    try:
        value = float(ber)
    except (TypeError, ValueError):
        raise CorruptionError(f"ber must be a number in [0, 0.5], got {ber!r}") from None
    if not 0.0 <= value <= 0.5:
        raise CorruptionError(f"ber must be in [0, 0.5], got {ber!r}")
    return value


def region_bits(
    region: str, data_length: int, extent: tuple[int, int] | None, sector_size: int = 512
) -> range:
    """The range of absolute bit offsets (from the file start) that ``region`` may hit.

    data_length: bytes of the stream that is hit (the ciphertext); extent: ``scan_extent`` of the plaintext
    JPEG (needed for ``scan``). An empty range means nothing can be hit (e.g. a scan shorter than 3 sectors).
    """
    if region == "file":
        return range(0, 8 * data_length)
    if region != "scan":
        raise CorruptionError(f"region must be one of {REGIONS}, got {region!r}")
    if extent is None:
        raise CorruptionError("region 'scan' needs the JPEG scan extent (start, end)")
    start, end = extent
    first, last = start // sector_size + 1, end // sector_size - 1
    if last < first:
        return range(0)
    return range(8 * first * sector_size, 8 * (last + 1) * sector_size)


def bit_offsets_to_positions(bits: np.ndarray, sector_size: int = 512) -> np.ndarray:
    """int64 (n, 3) rows (sector, byte_in_sector, bit) for absolute bit offsets (bit 0 = MSB)."""
    bits = np.asarray(bits, dtype=np.int64)
    byte = bits >> 3
    return np.stack([byte // sector_size, byte % sector_size, bits & 7], axis=1).reshape(-1, 3)


def positions_to_bit_offsets(positions: np.ndarray, sector_size: int = 512) -> np.ndarray:
    """Inverse of :func:`bit_offsets_to_positions`: int64 (n,) absolute bit offsets."""
    p = _check_positions(positions)
    return (p[:, 0] * sector_size + p[:, 1]) * 8 + p[:, 2]


def _iid_offsets(n_bits: int, ber: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.binomial(n_bits, ber)) if n_bits else 0
    return rng.choice(n_bits, size=n, replace=False) if n else np.empty(0, dtype=np.int64)


def _gilbert_elliott_offsets(
    n_bits: int, ber: float, rng: np.random.Generator, burst_length: float, burst_error_rate: float
) -> np.ndarray:
    h = float(burst_error_rate)
    if not 0.0 < h <= 1.0:
        raise CorruptionError(f"burst_error_rate must be in (0, 1], got {burst_error_rate!r}")
    if not float(burst_length) >= 1.0:
        raise CorruptionError(f"burst_length must be >= 1 (mean bits in the bad state), got {burst_length!r}")
    if ber > h:
        raise CorruptionError(f"gilbert_elliott needs ber <= burst_error_rate ({h}), got ber={ber}")
    if n_bits == 0 or ber == 0.0:
        return np.empty(0, dtype=np.int64)
    pi_bad = ber / h
    p_leave_bad = 1.0 / float(burst_length)
    if pi_bad >= 1.0:  # always bad
        bad_starts, bad_lengths = np.array([0]), np.array([n_bits])
    else:
        p_enter_bad = pi_bad * p_leave_bad / (1.0 - pi_bad)
        if p_enter_bad > 1.0:
            raise CorruptionError(
                f"gilbert_elliott: ber={ber} with burst_error_rate={h} needs burst_length >= "
                f"{pi_bad / (1 - pi_bad):.3g} bits, got {burst_length}"
            )
        # alternate good/bad sojourns (geometric, memoryless, so a stationary start is just a coin flip)
        start_bad = rng.random() < pi_bad
        mean_cycle = 1.0 / p_enter_bad + 1.0 / p_leave_bad
        chunk = int(n_bits / mean_cycle * 1.2) + 16
        lengths: list[np.ndarray] = []
        total = 0
        while total < n_bits:
            good = rng.geometric(p_enter_bad, size=chunk)
            bad = rng.geometric(p_leave_bad, size=chunk)
            pair = np.stack([bad, good] if start_bad else [good, bad], axis=1).reshape(-1)
            lengths.append(pair)
            total += int(pair.sum())
        runs = np.concatenate(lengths).astype(np.int64)
        ends = np.cumsum(runs)
        starts = ends - runs
        keep = starts < n_bits
        starts, ends = starts[keep], np.minimum(ends[keep], n_bits)
        is_bad = (np.arange(starts.size) % 2 == 0) == start_bad
        bad_starts, bad_lengths = starts[is_bad], (ends - starts)[is_bad]
    total_bad = int(bad_lengths.sum())
    n = int(rng.binomial(total_bad, h)) if total_bad else 0
    if n == 0:
        return np.empty(0, dtype=np.int64)
    k = np.sort(rng.choice(total_bad, size=n, replace=False))  # index into the concatenated bad bits
    run_end = np.cumsum(bad_lengths)
    run = np.searchsorted(run_end, k, side="right")
    return bad_starts[run] + (k - (run_end[run] - bad_lengths[run]))


def sample_flips(
    bits: range | int,
    ber: float,
    seed: int | np.random.Generator,
    *,
    sector_size: int = 512,
    model: str = "iid",
    burst_length: float = 64.0,
    burst_error_rate: float = 0.5,
) -> np.ndarray:
    """Sample the flipped bits of a bit-error channel over ``bits``.

    bits: the absolute bit offsets that may be hit (a ``range`` from :func:`region_bits`, or an int n for
    ``range(n)``); ber: long-run bit error rate in [0, 0.5]; seed: int or numpy Generator (deterministic);
    model: ``iid`` | ``gilbert_elliott`` (burst_length in bits, burst_error_rate = flip probability in
    the bad state; see the module docstring).
    Returns int64 (n, 3) rows (sector, byte_in_sector, bit), bit 0 = MSB, sorted, no duplicates.
    """
    if isinstance(bits, int | np.integer) and not isinstance(bits, bool):
        bits = range(int(bits))
    if not isinstance(bits, range) or bits.step != 1 or bits.start < 0:
        raise CorruptionError(f"bits must be a non-negative int or a range with step 1, got {bits!r}")
    ber = check_ber(ber)
    rng = as_generator(seed)
    n_bits = len(bits)
    if model == "iid":
        offsets = _iid_offsets(n_bits, ber, rng)
    elif model == "gilbert_elliott":
        offsets = _gilbert_elliott_offsets(n_bits, ber, rng, burst_length, burst_error_rate)
    else:
        raise CorruptionError(f"model must be one of {MODELS}, got {model!r}")
    return bit_offsets_to_positions(np.sort(offsets) + bits.start, sector_size)


def _check_positions(positions: np.ndarray) -> np.ndarray:
    p = np.asarray(positions, dtype=np.int64)
    if p.size == 0:
        return p.reshape(0, 3)
    if p.ndim != 2 or p.shape[1] != 3:
        raise CorruptionError(
            f"positions must be an (n, 3) array of (sector, byte, bit), got shape {p.shape}"
        )
    if (p < 0).any() or (p[:, 2] > 7).any():
        raise CorruptionError("positions must be non-negative with bit in 0..7 (0 = MSB)")
    return p


def flip_bits(data: bytes, positions: np.ndarray, sector_size: int = 512) -> bytes:
    """``data`` with the bits at ``positions`` (rows (sector, byte_in_sector, bit), bit 0 = MSB) inverted.

    A position listed twice flips back; replaying a recorded list reproduces the corrupted file exactly.
    """
    p = _check_positions(positions)
    buf = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    if p.shape[0]:
        if (p[:, 1] >= sector_size).any():
            raise CorruptionError(f"byte_in_sector must be < sector_size ({sector_size})")
        offsets = p[:, 0] * sector_size + p[:, 1]
        if int(offsets.max()) >= buf.size:
            raise CorruptionError(
                f"flip at byte {int(offsets.max())} is past the end of the data ({buf.size} bytes)"
            )
        np.bitwise_xor.at(buf, offsets, (0x80 >> p[:, 2]).astype(np.uint8))
    return buf.tobytes()


def region_sectors(bits: range, sector_size: int = 512) -> range:
    """The sectors (0-based, from the file start) that the bit range ``bits`` touches."""
    if len(bits) == 0:
        return range(0)
    return range(bits.start // (8 * sector_size), -(-bits.stop // (8 * sector_size)))


def sample_lost_sectors(
    sectors: range,
    seed: int | np.random.Generator,
    *,
    rate: float = 0.0,
    count: int = 0,
    run: int = 1,
) -> np.ndarray:
    """The lost sectors: runs of ``run`` consecutive sectors aligned to multiples of ``run``, lying wholly in
    ``sectors`` (e.g. :func:`region_sectors` of the hit region).

    count: exactly this many runs (all of them when the region holds fewer), drawn uniformly without
    replacement; rate: each run lost independently with this probability (ignored when ``count`` > 0).
    Returns int64 (n,) sector indices, sorted, ``n`` a multiple of ``run``.
    """
    rate, count, run = check_sector_loss(rate, count, run)
    rng = as_generator(seed)
    first_run, stop_run = -(-sectors.start // run), sectors.stop // run
    n_runs = max(0, stop_run - first_run)
    if n_runs == 0 or (count == 0 and rate == 0.0):
        return np.empty(0, dtype=np.int64)
    n = min(count, n_runs) if count else int(rng.binomial(n_runs, rate))
    runs = np.sort(rng.choice(n_runs, size=n, replace=False)).astype(np.int64) + first_run
    return (runs[:, None] * run + np.arange(run, dtype=np.int64)).reshape(-1)


def check_sector_loss(rate: float, count: int, run: int) -> tuple[float, int, int]:
    """(rate, count, run) checked: rate in [0, 1], integers count >= 0 and run >= 1, not rate and count."""
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise CorruptionError(f"sector_loss_rate must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise CorruptionError(f"sector_loss_rate must be in [0, 1], got {rate!r}")
    for name, value, low in (("sector_loss_count", count, 0), ("sector_loss_run", run, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise CorruptionError(f"{name} must be an integer >= {low}, got {value!r}")
    if rate and count:
        raise CorruptionError(f"give sector_loss_rate ({rate}) or sector_loss_count ({count}), not both")
    return rate, int(count), int(run)


def fill_sectors(data: bytes, sectors: np.ndarray, sector_size: int = 512, fill: int = 0) -> bytes:
    """``data`` with every byte of the given sectors (0-based indices from the start) set to ``fill``;
    a last partial sector is filled up to the end of the data, sectors past the end are ignored."""
    if isinstance(fill, bool) or not isinstance(fill, int | np.integer) or not 0 <= fill <= 255:
        raise CorruptionError(f"sector_fill must be a byte value 0..255 (0 zeroed, 255 erased), got {fill!r}")
    sectors = np.asarray(sectors, dtype=np.int64).reshape(-1)
    if sectors.size == 0:
        return bytes(data)
    if (sectors < 0).any():
        raise CorruptionError("lost sector indices must be non-negative")
    buf = bytearray(data)
    for start in (sectors[sectors * sector_size < len(buf)] * sector_size).tolist():
        stop = min(start + sector_size, len(buf))
        buf[start:stop] = bytes([fill]) * (stop - start)
    return bytes(buf)


def truncation_point(extent: tuple[int, int], fraction: float) -> int:
    """Byte offset where a file whose scan is ``extent`` = (start, end of scan = EOI offset) is cut at
    ``fraction`` in [0, 1] of its scan: ``start + floor(fraction * (end - start))``."""
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise CorruptionError(f"truncate must be a fraction of the scan in [0, 1], got {fraction!r}")
    start, end = extent
    return int(start + np.floor(fraction * (end - start)))
