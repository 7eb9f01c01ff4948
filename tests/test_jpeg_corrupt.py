"""Robust decoder on corrupted files: parity with the pure-Python paper algorithm, restart-marker resync,
strategies, bounded work."""

from __future__ import annotations

import numpy as np
import pytest

from src.corruption import Corruptor
from src.jpeg import (
    MCU_ERROR,
    MCU_LOST,
    MCU_RESTART,
    MCU_RESYNC,
    decode,
    parse_header,
)
from src.jpeg.oracle import paper_decode, pillow_jpeg

PARITY_BERS = (1e-4, 3e-4, 1e-3)  # per bit of the scan's inner sectors; 256x256 crops hold ~80-150 kbit


@pytest.fixture(scope="module")
def crops(astronaut, coffee, chelsea) -> list[np.ndarray]:
    return [astronaut[:256, :256], coffee[100:356, 100:356], chelsea[:256, 100:356]]


def _corrupted(crops, ber, seed, idx, **kw):
    return Corruptor.from_preset("paper", ber=ber, **kw).corrupt(crops[idx], seed=seed)


def _assert_parity(d, ref) -> None:
    np.testing.assert_array_equal(d.mcu_skipped_bits, ref["skipped"])
    np.testing.assert_array_equal((d.mcu_status & MCU_LOST) != 0, ref["lost"])
    for ours, dc, theirs in zip(d.coefficients, d.dc, ref["coef"], strict=True):
        np.testing.assert_array_equal(ours[..., 1:], theirs[..., 1:])
        np.testing.assert_array_equal(dc, theirs[..., 0])


@pytest.mark.parametrize("ber", PARITY_BERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paper_strategy_equals_the_pure_python_oracle(crops, ber, seed):
    """27 corrupted files (3 photos x 3 BERs x 3 seeds): same skipped bits, lost MCUs, coefficients and
    planes."""
    total_skipped = 0
    for idx in range(len(crops)):
        s = _corrupted(crops, ber, seed, idx)
        assert len(s.positions) > 0
        ref = paper_decode(s.corrupted_jpeg, fill="grey")
        d = decode(s.corrupted_jpeg, "paper", fill="grey", idct="float", max_retry_bits=None)
        _assert_parity(d, ref)
        for ours, theirs in zip(d.planes, ref["planes"], strict=True):
            np.testing.assert_allclose(ours, theirs, atol=2e-3)
        # the default options (DC fill, islow IDCT, retry cap) give the same decode on such files
        dd = decode(s.corrupted_jpeg)
        _assert_parity(dd, paper_decode(s.corrupted_jpeg, fill="dc"))
        total_skipped += int(ref["skipped"].sum())
    assert total_skipped > 0  # the files really exercised the bit slide


def test_resync_events_and_flags_match_skipped_bits(crops):
    s = _corrupted(crops, 1e-3, 5, 0)
    d = decode(s.corrupted_jpeg)
    resync = (d.mcu_status & MCU_RESYNC) != 0
    np.testing.assert_array_equal(resync, d.mcu_skipped_bits > 0)
    retries = [e for e in d.events if e.kind == "retry"]
    assert len(retries) == resync.sum() > 0
    for e in retries:
        r, c = divmod(e.mcu, d.mcu_cols)
        assert d.mcu_bitpos[r, c] == e.bitpos
        assert f"skipped {d.mcu_skipped_bits[r, c]} bits" in e.detail
    ok = d.mcu_bitpos.ravel()[d.mcu_bitpos.ravel() >= 0]
    assert (np.diff(ok) > 0).all()  # decoding only moves forward


@pytest.mark.parametrize("strategy", ["paper", "strict", "aligned"])
@pytest.mark.parametrize("ber", [1e-6, 1e-5, 1e-4])
def test_every_strategy_decodes_to_the_end(astronaut, strategy, ber):
    c = Corruptor.from_preset("paper", ber=ber)
    for seed in range(3):
        s = c.corrupt(astronaut, seed=seed)
        d = decode(s.corrupted_jpeg, strategy)
        assert d.mcu_status.shape == (d.mcu_rows, d.mcu_cols)
        assert all(np.isfinite(p).all() for p in d.planes)
        lost = (d.mcu_status & MCU_LOST) != 0
        assert (d.mcu_bitpos[~lost] >= 0).all() and (d.mcu_bitpos[lost] == -1).all()
        rgb = d.to_rgb()
        assert rgb.shape == (512, 512, 3)
        if len(s.positions) == 0:
            np.testing.assert_array_equal(rgb, decode(s.clean_jpeg).to_rgb())


def test_spurious_markers_are_skipped_and_reported(crops):
    found = 0
    for seed in range(12):
        s = _corrupted(crops, 1e-3, seed, 1)
        d = decode(s.corrupted_jpeg)
        hdr = parse_header(s.corrupted_jpeg)
        scan = s.corrupted_jpeg[hdr.scan_start : hdr.scan_end]
        pairs = i = 0
        while i < len(scan) - 1:  # FF xx pairs, read pairwise like the decoder (FF FF counts once)
            if scan[i] == 0xFF:
                pairs += scan[i + 1] != 0
                i += 2
            else:
                i += 1
        assert d.count("spurious_marker") == pairs
        found += pairs
    assert found > 0


def _rst_offsets(data: bytes) -> list[int]:
    hdr = parse_header(data)
    return [
        i for i in range(hdr.scan_start, hdr.scan_end - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7
    ]


def _dri_file(astronaut) -> tuple[bytes, int]:
    img = astronaut[:128, :256]  # 4:2:0: 16 MCU columns, 8 MCU rows
    return pillow_jpeg(img, 75, "4:2:0", restart_blocks=16), 16


def _garble(data: bytes, lo: int, hi: int, seed: int) -> bytes:
    """Random bytes (no 0xFF, so no new markers) over the 16-byte-aligned blocks inside [lo, hi)."""
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    a = -(-lo // 16) * 16
    e = a + 16 if a + 16 <= hi else hi
    b[a:e] = rng.integers(0, 255, e - a, dtype=np.uint8).tobytes()
    return bytes(b)


@pytest.mark.parametrize("strategy", ["paper", "strict", "aligned"])
def test_dri_one_corrupted_interval_recovers_at_next_restart(astronaut, strategy):
    data, _ = _dri_file(astronaut)
    clean = decode(data, strategy)
    rst = _rst_offsets(data)
    assert len(rst) == 7
    k = 3  # corrupt interval 3 (between RST2 and RST3): MCU row 3
    bad = _garble(data, rst[k - 1] + 2 + 8, rst[k] - 4, seed=1)
    d = decode(bad, strategy)
    assert bad != data
    for p_clean, p_bad, c in zip(clean.planes, d.planes, d.components, strict=True):
        rows = 8 * c.v  # plane rows per MCU row
        np.testing.assert_array_equal(p_bad[: k * rows], p_clean[: k * rows])
        np.testing.assert_array_equal(p_bad[(k + 1) * rows :], p_clean[(k + 1) * rows :])
        assert not np.array_equal(p_bad[k * rows : (k + 1) * rows], p_clean[k * rows : (k + 1) * rows])
    assert (d.mcu_status[k + 1 :, 0] & MCU_RESTART).all()


def test_dri_lost_marker_loses_one_interval_only(astronaut):
    data, ri = _dri_file(astronaut)
    clean = decode(data)
    rst = _rst_offsets(data)
    b = bytearray(data)
    b[rst[3] + 1] = 0x12  # RST3 destroyed: interval 4's data is appended to interval 3's
    b[rst[3]] = 0x34
    d = decode(bytes(b))
    lost = (d.mcu_status & MCU_LOST) != 0
    assert lost[4].all() and lost.sum() == ri  # interval 4 has no marker -> filled
    assert d.count("restart_resync") == 1 and d.count("lost_interval") == 1
    for p_clean, p_bad, c in zip(clean.planes, d.planes, d.components, strict=True):
        rows = 8 * c.v
        np.testing.assert_array_equal(p_bad[: 4 * rows], p_clean[: 4 * rows])
        np.testing.assert_array_equal(p_bad[5 * rows :], p_clean[5 * rows :])


def test_dri_stale_duplicate_marker_is_skipped(astronaut):
    data, _ = _dri_file(astronaut)
    clean = decode(data)
    rst = _rst_offsets(data)
    # a stale copy of RST1 just before RST2
    b = data[: rst[2]] + b"\xff\xd1" + data[rst[2] :]
    d = decode(b)
    assert d.count("restart_resync") == 1
    assert "stale" in next(e.detail for e in d.events if e.kind == "restart_resync")
    for p_clean, p_bad in zip(clean.planes, d.planes, strict=True):
        np.testing.assert_array_equal(p_bad, p_clean)


def test_strict_fills_the_rest_of_the_interval_after_the_first_error(crops):
    s = _corrupted(crops, 1e-3, 0, 0)
    d = decode(s.corrupted_jpeg, "strict")
    paper = decode(s.corrupted_jpeg, "paper")
    lost = ((d.mcu_status & MCU_LOST) != 0).ravel()
    first = int(np.flatnonzero(lost)[0])
    assert lost[first:].all() and not lost[:first].any()
    assert d.count("error_fill") + d.count("eof_fill") == 1
    assert (d.mcu_skipped_bits == 0).all()
    # up to the first error both strategies decoded the same bits
    np.testing.assert_array_equal(d.mcu_bitpos.ravel()[:first], paper.mcu_bitpos.ravel()[:first])


def test_strict_stops_at_a_spurious_marker_like_libjpeg(crops):
    data = pillow_jpeg(crops[0], 75)
    hdr = parse_header(data)
    mid = (hdr.scan_start + hdr.scan_end) // 2
    bad = data[:mid] + b"\xff\xc4" + data[mid:]  # a marker inside the scan data
    d = decode(bad, "strict")
    assert d.count("spurious_marker") == 1
    lost = ((d.mcu_status & MCU_LOST) != 0).ravel()
    assert 0 < lost.sum() < lost.size and lost[np.flatnonzero(lost)[0] :].all()
    p = decode(bad, "paper")  # the paper's decoder drops the pair and carries on
    assert ((p.mcu_status & MCU_LOST) == 0).all()


def test_retry_cap_and_work_budget_bound_the_work(crops):
    s = _corrupted(crops, 1e-3, 2, 0)
    free = decode(s.corrupted_jpeg, max_retry_bits=None)
    big = int(free.mcu_skipped_bits.max())
    assert big > 4
    capped = decode(s.corrupted_jpeg, max_retry_bits=2)
    assert (capped.mcu_skipped_bits <= 3).all()
    err = (capped.mcu_status & MCU_ERROR) != 0
    assert err.any() and capped.count("retry_cap") == err.sum()
    garbage = bytearray(pillow_jpeg(crops[0], 75))
    hdr = parse_header(bytes(garbage))
    rng = np.random.default_rng(0)
    garbage[hdr.scan_start : hdr.scan_end] = rng.integers(
        0, 256, hdr.scan_end - hdr.scan_start, dtype=np.uint8
    ).tobytes()
    g = decode(bytes(garbage), work_factor=0.0, work_min_bits=0, max_retry_bits=None)
    assert g.count("retry_budget") == 1  # no budget: from the first failure on, errors are accepted
    assert ((g.mcu_status & MCU_ERROR) != 0).any() and g.count("retry") == 0
    unbounded = decode(bytes(garbage), max_retry_bits=None)
    assert unbounded.count("retry") > 0 and unbounded.count("retry_budget") == 0


@pytest.mark.parametrize("quality", [50, 95])
def test_plausibility_checks_never_fire_on_clean_files(astronaut, coffee, camera, quality):
    checks = {"check_dc_category": True, "check_ac_size": True, "check_zrl": True, "check_range": True}
    for img in (astronaut, coffee, camera):
        data = pillow_jpeg(img, quality, "4:4:4")
        d = decode(data, **checks)
        assert (d.mcu_status == 0).all() and d.events == []


def test_plausibility_checks_notice_more_corruption(crops):
    checks = {"check_dc_category": True, "check_ac_size": True, "check_zrl": True, "check_range": True}
    plain = checked = 0
    for seed in range(6):
        s = _corrupted(crops, 3e-4, seed, seed % 3)
        plain += int((decode(s.corrupted_jpeg).mcu_skipped_bits > 0).sum())
        checked += int((decode(s.corrupted_jpeg, **checks).mcu_skipped_bits > 0).sum())
    assert checked > plain


def test_aligned_resumes_right_after_a_cipher_block_boundary(crops):
    from src.jpeg.bitstream import unstuff

    seen = 0
    for seed in range(8):
        s = _corrupted(crops, 1e-3, seed, seed % 3)
        d = decode(s.corrupted_jpeg, "aligned")
        hdr = parse_header(s.corrupted_jpeg)
        off = unstuff(np.frombuffer(s.corrupted_jpeg, np.uint8), hdr.scan_start, hdr.scan_end, True)[5]
        window = d.options["aligned_window"]
        for e in (e for e in d.events if e.kind == "aligned_resync"):
            r, c = divmod(e.mcu, d.mcu_cols)
            assert d.mcu_bitpos[r, c] == e.bitpos and d.mcu_status[r, c] & MCU_RESYNC
            byte = int(off[e.bitpos >> 3])
            # the resume bit lies within `window` bits after the first byte of a 16-byte block
            first = int(np.searchsorted(off, byte - byte % 16))
            assert 0 <= e.bitpos - 8 * first < window
            seen += 1
    assert seen > 0


def test_decoder_presets_are_plain_option_dicts(crops):
    """Each strategy's preset (src.jpeg.presets, which conf/decoder/<strategy>.yaml extends) is valid
    decode input."""
    from src.jpeg.presets import DECODER_PRESETS

    s = _corrupted(crops, 3e-4, 0, 0)
    for name, options in DECODER_PRESETS.items():
        assert decode(s.corrupted_jpeg, **options).strategy == options["strategy"] == name
    assert set(DECODER_PRESETS) == {"paper", "strict", "aligned"}


@pytest.mark.slow
@pytest.mark.parametrize("ber", [1e-5, 1e-4])
def test_paper_parity_on_full_size_photos(astronaut, coffee, chelsea, ber):
    """30 more files at the photos' full size (512x512, 400x600, 300x451)."""
    c = Corruptor.from_preset("paper", ber=ber)
    for img in (astronaut, coffee, chelsea):
        for seed in range(5):
            s = c.corrupt(img, seed=100 + seed)
            ref = paper_decode(s.corrupted_jpeg, fill="dc")
            _assert_parity(decode(s.corrupted_jpeg, max_retry_bits=None), ref)


@pytest.mark.parametrize("run_bytes", [64 * 2, 4096, 16384])
def test_erased_run_is_one_gap_with_the_lost_mcus_placed_at_it(astronaut, run_bytes):
    """A run of 0xFF bytes (erased flash page, sector read back as FF) inside the scan: its MCUs are
    reported lost AT the run and every MCU after it sits at its own index (not hundreds of MCUs early)."""
    from src.corruption import encode_jpeg

    img = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))  # 512x1024
    clean = encode_jpeg(img, quality=90)
    ref = decode(clean)
    hdr = parse_header(clean)
    at = hdr.scan_start + (hdr.scan_end - hdr.scan_start) // 3
    bad = clean[:at] + b"\xff" * run_bytes + clean[at + run_bytes :]
    d = decode(bad)
    runs = [e for e in d.events if e.kind == "erased_run"]
    assert len(runs) == 1 and d.count("spurious_marker") == 0 and d.count("eof_fill") == 0
    lost = np.flatnonzero((d.mcu_status.ravel() & MCU_LOST) != 0)
    g = runs[0].mcu
    assert lost.size > 0 and lost[0] == g and (np.diff(lost) == 1).all()  # one hole, at the run
    assert lost[-1] < d.mcu_cols * d.mcu_rows - 1  # nothing lost at the end any more
    assert f"{lost.size} MCUs" in runs[0].detail
    # the MCUs after the hole are the clean file's (AC identical; DC is offset: the predictor is lost)
    rows, cols = d.mcu_rows, d.mcu_cols
    y_ref = (
        ref.coefficients[0].reshape(rows, 2, cols, 2, 64).transpose(0, 2, 1, 3, 4).reshape(rows * cols, -1)
    )
    y_bad = d.coefficients[0].reshape(rows, 2, cols, 2, 64).transpose(0, 2, 1, 3, 4).reshape(rows * cols, -1)
    ac = np.ones(64, bool)
    ac[0] = False
    after = np.arange(lost[-1] + 3, rows * cols)
    same = (y_ref[after].reshape(-1, 4, 64)[..., ac] == y_bad[after].reshape(-1, 4, 64)[..., ac]).all(
        axis=(1, 2)
    )
    assert same.mean() > 0.99
    # the run's bytes were the data of about as many MCUs as the hole holds
    bits_per_mcu = (hdr.scan_end - hdr.scan_start) * 8 / (rows * cols)
    assert 0.5 < lost.size * bits_per_mcu / (run_bytes * 8) < 2.0
    # short FF runs are no erased media: the spurious markers are reported one by one as before
    short = clean[:at] + b"\xff" * 16 + clean[at + 16 :]
    assert decode(short).count("erased_run") == 0
