"""SCA on scans with restart markers (src.sca.restart): lost MCUs filled and untrusted, every interval its
own segment, damaged interval ends filled; files of the simulator at DRI 1, 4 and a row-long interval."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.corruption import Corruptor, encode_jpeg
from src.jpeg import MCU_LOST, decode, decode_thumbnail
from src.sca import compensate
from src.utils.photos import bundled_photos

SIZE = (768, 384)  # 48 x 24 MCUs at 4:2:0


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    d = np.asarray(a, np.float64) @ w - np.asarray(b, np.float64) @ w
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-12)))


def photo(name: str) -> np.ndarray:
    rgb = bundled_photos([name])[name]
    return np.asarray(Image.fromarray(rgb).resize(SIZE, Image.Resampling.BICUBIC))


@pytest.mark.parametrize("dri", [1, 4, SIZE[0] // 16])
def test_restart_files_gain_over_the_plain_decode(dri):
    gains = {"dc": [], "dc_thumb": []}
    for name in ("astronaut", "chelsea"):
        sample = Corruptor.from_preset("paper", ber=1e-4, restart_interval=dri).corrupt(photo(name), seed=0)
        bad = decode(sample.corrupted_jpeg)
        assert bad.restart_interval == dri
        lost = (np.asarray(bad.mcu_status) & MCU_LOST) != 0
        assert lost.any()
        gt = decode(sample.clean_jpeg).to_rgb()
        plain = y_psnr(bad.to_rgb(), gt)
        thumb = decode_thumbnail(sample.thumbnail)
        for method, vals in gains.items():
            result = compensate(bad, thumb, method)
            # no MCU the decoder lost (its filler) is shown; a lost position is filled and untrusted, or
            # shows the interval's content realigned into it (the segment path's shift)
            mh, mw = bad.mcu_height, bad.mcu_width
            trust, source = result.trust, np.asarray(result.mcu_source).reshape(-1)
            lost_flat = lost.reshape(-1)
            assert not lost_flat[source[source >= 0]].any()
            for r, c in zip(*np.nonzero(lost), strict=True):
                m = r * bad.mcu_cols + c
                if source[m] < 0:
                    assert trust[r * mh : (r + 1) * mh, c * mw : (c + 1) * mw].max() == 0.0
                else:
                    assert source[m] != m and source[m] // dri == m // dri
            vals.append(y_psnr(result.rgb * 255.0, gt) - plain)
    assert min(gains["dc"]) > 0.0, gains
    # DRI 4: the floor (+3 dB over the plain decode); row-long intervals at this damage (a third of
    # the intervals hit) gain little yet: no harm is the floor there
    floor = {1: 1.0, 4: 3.0}.get(dri, 0.0)
    assert min(gains["dc_thumb"]) >= floor, gains


@pytest.mark.parametrize("dri", [1, 4, SIZE[0] // 16])
def test_clean_restart_files_come_back_unchanged(dri):
    for name in ("astronaut", "motorcycle"):
        dec = decode(encode_jpeg(photo(name), quality=75, restart_interval=dri))
        for method in ("dc", "dc_thumb"):
            result = compensate(dec, None, method)
            assert np.array_equal(result.rgb8, dec.to_rgb()) and result.trust.min() == 1.0, (name, method)


def test_restarts_option_turns_the_interval_path_off():
    sample = Corruptor.from_preset("paper", ber=1e-4, restart_interval=4).corrupt(photo("coffee"), seed=1)
    bad = decode(sample.corrupted_jpeg)
    thumb = decode_thumbnail(sample.thumbnail)
    on = compensate(bad, thumb, "dc_thumb")
    off = compensate(bad, thumb, "dc_thumb", restarts=False)
    assert on.trust.mean() < 1.0 and not np.array_equal(on.rgb8, off.rgb8)


@pytest.mark.slow
def test_restore_of_a_dri_file_with_a_spurious_marker_is_not_worse_than_pillow():
    """The bundled motorcycle at DRI 4 (as ``benchmarks.real_files`` builds it), hit at BER 1e-5: a bit error
    makes an FF byte a marker in interval 89, which the decoder removes without an MCU flag and decodes on
    (garbage to the interval's end) where libjpeg stops. The interval must count as damaged: the restore
    stays above Pillow's decode (it was 30.2 dB against 32.8)."""
    from src.jpeg.presets import decoder_preset
    from src.sca.presets import sca_preset
    from src.utils.images import decode_jpeg_rgb, decode_truncated

    rgb = bundled_photos(["motorcycle"])["motorcycle"]
    data = encode_jpeg(rgb, quality=85, restart_interval=4)
    bad = Corruptor.from_preset("paper", ber=1e-5).corrupt(data, 0).corrupted_jpeg
    dec = decode(bad, **decoder_preset("paper"))
    assert any(e.kind == "spurious_marker" for e in dec.events)
    truth = decode_jpeg_rgb(data)
    pillow = y_psnr(decode_truncated(bad), truth)
    for method in ("dc", "dc_thumb"):
        result = compensate(dec, None, **sca_preset(method))
        assert y_psnr(result.rgb8, truth) >= pillow, (method, y_psnr(result.rgb8, truth), pillow)


def test_data_left_before_a_restart_marker_marks_its_interval_damaged():
    """A hit that decodes to more MCUs than its interval held leaves data unread before the next RST, with
    no MCU flag. Bytes put before an RST marker of a clean encode are that case: the decoder reports
    ``leftover_data`` at the interval's last MCU (a clean encode never: it pads with under 8 bits), and SCA
    untrusts the interval's end while every other interval comes back as decoded."""
    dri = SIZE[0] // 16
    data = encode_jpeg(photo("chelsea"), quality=75, restart_interval=dri)
    clean = decode(data)
    assert not [e for e in clean.events if e.kind == "leftover_data"]
    sos = data.index(b"\xff\xda")
    rst = [i for i in range(sos, len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    k = 5  # before the 6th marker: the end of interval 5
    bad = decode(data[: rst[k]] + b"\x12\x34\x56" + data[rst[k] :])
    left = [e for e in bad.events if e.kind == "leftover_data"]
    assert [e.mcu for e in left] == [(k + 1) * dri - 1]
    assert np.array_equal(bad.to_rgb(), clean.to_rgb())  # the MCUs themselves decode right
    result = compensate(bad, None, "dc")
    mh, mw = bad.mcu_height, bad.mcu_width
    trust = result.trust.reshape(bad.mcu_rows, mh, bad.mcu_cols, mw).min(axis=(1, 3)).reshape(-1)
    assert trust[(k + 1) * dri - 1] == 0.0
    outside = np.ones(trust.size, bool)
    outside[k * dri : (k + 1) * dri] = False
    assert trust[outside].min() == 1.0


def test_long_interval_shows_the_content_realigned_after_a_silent_hit():
    """Intervals of two MCU rows (DRI 96): the decoder notices a hit only where the interval's data runs out,
    so the interval path alone fills most of the interval from the thumbnail; the segment path's realigned
    content is shown there (a shift inside the interval), judged against the thumbnail, and never worse."""
    gains = []
    for name, seed in (("coffee", 1), ("astronaut", 2), ("chelsea", 2)):
        ber = 1e-5 if name != "chelsea" else 3e-5
        sample = Corruptor.from_preset("paper", ber=ber, restart_interval=96).corrupt(photo(name), seed=seed)
        bad = decode(sample.corrupted_jpeg)
        assert bad.restart_interval == 96
        gt = decode(sample.clean_jpeg).to_rgb()
        thumb = decode_thumbnail(sample.thumbnail)
        alone = compensate(bad, thumb, "dc_thumb", segment_merge=False)
        merged = compensate(bad, thumb, "dc_thumb")
        gains.append(y_psnr(merged.rgb8, gt) - y_psnr(alone.rgb8, gt))
        source = np.asarray(merged.mcu_source).reshape(-1)
        shown = source >= 0
        # every shown MCU comes from its own interval; none is one the decoder lost
        assert (source[shown] // 96 == np.flatnonzero(shown) // 96).all()
        assert not ((np.asarray(bad.mcu_status).reshape(-1) & MCU_LOST) != 0)[source[shown]].any()
    assert min(gains) >= 0.0, gains
    assert max(gains) >= 1.0, gains  # coffee: +2.4 dB


def test_intact_mcus_before_a_late_decoder_event_are_shown():
    """DRI 4: a decoder notices a hit only at the interval's last MCU (``leftover_data``), so the MCUs
    before it (the damage window) may be intact or garbage. Bytes put before an RST marker of a clean
    encode leave every MCU intact: the window's MCUs fit the fill of their neighbours no worse than the
    fill's own error on the trusted ring, so they are shown as decoded (the whole window was filled).
    Without a thumbnail: with one, a fill that good may take an intact MCU at no cost."""
    dri = 4
    data = encode_jpeg(photo("astronaut"), quality=75, restart_interval=dri)
    sos = data.index(b"\xff\xda")
    rst = [i for i in range(sos, len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    ks = (60, 150, 230)  # intervals in the middle rows (288 in all)
    for k in sorted(ks, reverse=True):
        data = data[: rst[k]] + b"\x12\x34\x56" + data[rst[k] :]
    bad = decode(data)
    assert sorted(e.mcu for e in bad.events if e.kind == "leftover_data") == [(k + 1) * dri - 1 for k in ks]
    mh, mw = bad.mcu_height, bad.mcu_width
    result = compensate(bad, None, "dc")
    trust = result.trust.reshape(bad.mcu_rows, mh, bad.mcu_cols, mw).min(axis=(1, 3)).reshape(-1)
    for k in ks:
        assert trust[k * dri : (k + 1) * dri - 1].min() == 1.0, (k, trust[k * dri : (k + 1) * dri])


def test_dri4_restore_is_never_below_the_plain_decode():
    """DRI 4 at BER 1e-5 (a few hits, each noticed by the decoder at the end of its interval): without a
    thumbnail the interpolation fill of a whole damage window cost more than the intact MCUs in it
    (astronaut: 2 dB below the plain decode); the window's cut by expected error keeps every file at or
    above the plain decode, with or without the thumbnail."""
    for name in ("astronaut", "chelsea", "coffee"):
        for seed in (0, 1):
            corruptor = Corruptor.from_preset("paper", ber=1e-5, restart_interval=4)
            sample = corruptor.corrupt(photo(name), seed=seed)
            bad = decode(sample.corrupted_jpeg)
            gt = decode(sample.clean_jpeg).to_rgb()
            plain = y_psnr(bad.to_rgb(), gt)
            thumb = decode_thumbnail(sample.thumbnail)
            for method in ("dc", "dc_thumb"):
                got = y_psnr(compensate(bad, thumb, method).rgb8, gt)
                assert got >= plain, (name, seed, method, got, plain)


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 11, do no harm): motorcycle at DRI 4, seed 0, without a thumbnail: dc 31.97 dB "
    "against 33.37 for the plain decode (dc_thumb 41.90): two damage windows at the right edge (MCUs "
    "372-375, 278-279) are filled by interpolation, the interval's intact first MCU included, and the "
    "fill's error there is 1.2-1.7x the garbage's own (textured content, no neighbour on the right)",
)
def test_dri4_dc_on_a_textured_photo_is_not_below_the_plain_decode():
    sample = Corruptor.from_preset("paper", ber=1e-5, restart_interval=4).corrupt(photo("motorcycle"), seed=0)
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    assert y_psnr(compensate(bad, None, "dc").rgb8, gt) >= y_psnr(bad.to_rgb(), gt)


def test_offset_tails_of_quiet_intervals_are_a_silent_hit_signature():
    """``take_offset_tails``: in an interval without decoder events the segment path's DC offset is taken when
    it runs from inside the interval to its end (a bit error in a DC magnitude: the decoder notices
    nothing), not when it is carried over the restart marker from the interval before, comes with a move,
    or stops before the interval's end."""
    from src.sca.restart import take_offset_tails

    ri, n = 8, 40
    src, off, hole = np.arange(n), np.zeros((n, 3), np.float32), np.zeros(n, bool)
    seg_src, seg_off = np.arange(n), np.zeros((n, 3), np.float32)
    seg_off[3:8, 0] = -32.0  # interval 0: a hit at MCU 3, offset to the end
    seg_src[2] = -1  # ... the hit's garbage
    seg_off[8:16, 0] = -32.0  # interval 1: the same offset from its first MCU on (carried over)
    seg_off[19:22, 1] = 5.0  # interval 2: an offset that stops before the interval's end
    seg_off[28:32, 2] = 7.0  # interval 3: a tail with a move in it
    seg_src[26] = 27
    seg_off[36:40, 0] = 4.0  # interval 4: a tail, but the decoder saw damage there
    damaged = np.zeros(n, bool)
    damaged[32:40] = True
    s2, o2, h2 = take_offset_tails(src, off, hole, seg_src, seg_off, ri, damaged, tol=0.5)
    assert (o2[3:8, 0] == -32.0).all() and (o2[:3] == 0).all() and h2[2] and not h2[3:8].any()
    assert (o2[8:] == 0).all() and not h2[8:].any() and (s2 == np.where(h2, -1, np.arange(n))).all()
