"""Thumbnail check and alignment (src.sca.thumb_check) before SCA uses a thumbnail: stretched, letterboxed,
stale-crop, rotated and unrelated thumbnails of corrupted bundled photos. A thumbnail that can be aligned
gains over ``dc`` alone; one that cannot is refused and never makes the result worse than ``dc``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from src.corruption import Corruptor
from src.jpeg import decode
from src.sca import compensate
from src.sca.thumb_check import find_bars, fit_thumbnail, from_display, luma, to_display
from src.sca.thumbnail import decode_thumbnail
from src.utils.images import resize_cover
from src.utils.photos import bundled_photos


def resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC))


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    d = np.asarray(a, np.float64) @ w - np.asarray(b, np.float64) @ w
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-12)))


def letterbox(content: np.ndarray, width: int, height: int) -> np.ndarray:
    """``content`` centred on black bars in a (height, width) frame."""
    out = np.zeros((height, width, 3), np.uint8)
    h, w = content.shape[:2]
    y, x = (height - h) // 2, (width - w) // 2
    out[y : y + h, x : x + w] = content
    return out


def cases(name: str, size: tuple[int, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The image (a crop of a larger scene) and its mismatched thumbnails (alignable but ``unrelated``)."""
    photos = bundled_photos([name, "rocket"])
    w, h = size
    scene = resize(photos[name], w + w // 8, h + h // 6)  # the image is an in-camera crop of this scene
    img = np.ascontiguousarray(scene[h // 12 : h // 12 + h, w // 16 : w // 16 + w])
    tw, th = 160, round(160 * h / w)
    good = resize(img, tw, th)
    return img, {
        "stretched 4:3": resize(img, 160, 120),
        "letterboxed in 4:3": letterbox(good, 160, 120),
        "stale crop": resize(scene, 160, round(160 * scene.shape[0] / scene.shape[1])),
        "rotated (Orientation=6)": to_display(good, 6),
        "unrelated": resize(photos["rocket"], tw, th),
    }


@pytest.fixture(scope="module", params=[("astronaut", (768, 512)), ("chelsea", (768, 432))], ids=str)
def corrupted(request):
    name, size = request.param
    img, thumbs = cases(name, size)
    sample = Corruptor.from_preset("paper", ber=3e-5).corrupt(img, seed=1)
    assert len(sample.positions) >= 5
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    dc = y_psnr(compensate(bad, None, "dc").rgb * 255.0, gt)
    return bad, gt, dc, thumbs


@pytest.mark.parametrize(
    "case", ["stretched 4:3", "letterboxed in 4:3", "stale crop", "rotated (Orientation=6)", "unrelated"]
)
def test_mismatched_thumbnails_never_below_dc_and_gain_when_alignable(corrupted, case):
    bad, gt, dc, thumbs = corrupted
    thumb = thumbs[case]
    bad.orientation = 6 if "Orientation=6" in case else None
    result = compensate(bad, thumb, "dc_thumb")
    got = y_psnr(result.rgb * 255.0, gt)
    fit = result.thumbnail_fit
    if case == "unrelated":
        assert not fit.ok and result.method == "dc" and "does not match" in fit.reason
        assert got >= dc - 1e-6, (got, dc)
        return
    assert fit.ok and result.method == "dc_thumb", fit.reason
    assert got >= dc + 2.0, (case, got, dc, fit.reason)
    if "Orientation=6" in case:
        assert fit.orientation == 6
    if "letterboxed" in case:
        assert fit.bars[1] > 0 and fit.bars[3] > 0
        unchecked = y_psnr(compensate(bad, thumb, "dc_thumb", check_thumbnail=False).rgb * 255.0, gt)
        assert got > unchecked + 5.0, (got, unchecked)  # the bars wrecked the unchecked use
    bad.orientation = None


def test_a_fitting_thumbnail_is_used_as_it_is(astronaut):
    img = resize(astronaut, 512, 384)
    thumb = resize(img, 160, 120)
    fit = fit_thumbnail(thumb, luma(img))
    assert fit.ok and fit.identity and fit.thumbnail is thumb and fit.ncc > 0.95


def test_orientations_invert_and_bars_are_found(astronaut):
    a = astronaut[:40, :60]
    for o in range(1, 9):
        np.testing.assert_array_equal(from_display(to_display(a, o), o), a)
    assert to_display(a, 6).shape == (60, 40, 3)
    np.testing.assert_array_equal(to_display(a, 6)[0, :, 0], a[::-1, 0, 0])  # clockwise: left column on top
    framed = letterbox(resize(astronaut, 160, 90), 160, 120)
    assert find_bars(luma(framed)) == (0, 15, 0, 15)
    assert find_bars(luma(resize(astronaut, 160, 120))) == (0, 0, 0, 0)


def test_a_thumbnail_of_only_part_of_the_image_is_refused(astronaut):
    img = resize(astronaut, 768, 512)
    part = resize(img[:, :384], 80, 107)  # the left half only
    fit = fit_thumbnail(part, luma(img))
    assert not fit.ok and fit.thumbnail is None and fit.reason.startswith("thumbnail refused")


@pytest.mark.parametrize(
    "name, seed, size, ber",
    [("rocket", 3, (768, 512), 5e-5), ("coffee", 7, (768, 512), 5e-5), ("coffee", 1, (1024, 560), 1e-4)],
)
def test_the_files_own_thumbnail_is_not_misaligned_by_a_misplaced_dc_reference(name, seed, size, ber):
    """Files whose ``dc`` result misplaces segments by a few MCUs: the fit on it finds a small shift of the
    (correct) thumbnail that scores well there (used, it pulls SCA's segments after it), or no fit at all
    (coffee s1: refused as a mismatch). Judged on the results, the thumbnail as stored wins, and the check
    costs nothing against the unchecked use."""
    img = resize_cover(bundled_photos([name])[name], size)
    sample = Corruptor.from_preset("paper", ber=ber).corrupt(img, seed=seed)
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    thumb = decode_thumbnail(sample.thumbnail)
    # the final-shift repair (src.sca.consistency.repair_final_shift) puts rocket s3's dc result right
    # (21.9 -> 36.6 dB): off, the dc reference stays misplaced, the case this test is about
    opts = {"final_shift": False}
    dc = y_psnr(compensate(bad, None, "dc", **opts).rgb * 255.0, gt)
    result = compensate(bad, thumb, "dc_thumb", **opts)
    got = y_psnr(result.rgb * 255.0, gt)
    unchecked = y_psnr(compensate(bad, thumb, "dc_thumb", check_thumbnail=False, **opts).rgb * 255.0, gt)
    fit = result.thumbnail_fit
    assert fit.ok and fit.identity and result.method == "dc_thumb", fit.reason
    assert got >= unchecked - 0.1, (got, unchecked, fit.reason)
    assert got >= dc + 10.0, (got, dc)  # the dc reference was badly misplaced: the thumbnail matters here


def stale_thumbnail(img: np.ndarray) -> np.ndarray:
    """The thumbnail of a neighbouring frame of a burst: the right two thirds moved 4 thumbnail pixels
    (~19 image pixels) and a patch mirrored; most of it still fits, so the check keeps it."""
    th = resize(img, 160, 107).copy()
    th[:, 53:] = np.roll(th, 4, axis=1)[:, 53:]
    th[30:70, 20:60] = th[30:70, 20:60][:, ::-1]
    return th


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 11): a thumbnail that fits as a whole (correlation 0.8) but not in places steers the "
    "garbage judgement and the offsets there; the result is 0.7-1.4 dB below dc alone (3-5 dB without the "
    "fill choice)",
)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_thumbnail_stale_in_places_is_never_below_dc(astronaut, seed):
    img = resize_cover(astronaut, (768, 512))
    sample = Corruptor.from_preset("paper", ber=3e-5).corrupt(img, seed=seed)
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    dc = y_psnr(compensate(bad, None, "dc").rgb * 255.0, gt)
    result = compensate(bad, stale_thumbnail(img), "dc_thumb")
    assert result.thumbnail_fit.ok  # the check passes it: the failure is what SCA does with it
    assert y_psnr(result.rgb * 255.0, gt) >= dc - 0.1


def test_a_result_the_thumbnail_steers_wrong_gives_way_to_dc(astronaut):
    """The last guard of a checked thumbnail (``_no_worse_than_dc``): a ``dc_thumb`` result with a band
    of the image moved (a segment misplaced, as on a real scanner file where a thumbnail fitting at 0.99
    steered rows 56-60 wrong: 29.3 dB against 49.2 for dc) gives way to the ``dc`` result, which is
    closer to the thumbnail at its scale; the right ``dc_thumb`` result is kept."""
    from src.sca.compensate import _no_worse_than_dc

    img = resize_cover(astronaut, (768, 512))
    sample = Corruptor.from_preset("paper", ber=3e-5).corrupt(img, seed=2)
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    thumb = decode_thumbnail(sample.thumbnail)
    base = compensate(bad, None, "dc")
    good = compensate(bad, thumb, "dc_thumb")
    fit = good.thumbnail_fit
    assert fit.ok and good.method == "dc_thumb"
    kept = _no_worse_than_dc(good, base, thumb, fit)
    assert kept.method == "dc_thumb" and y_psnr(kept.rgb * 255.0, gt) > y_psnr(base.rgb * 255.0, gt)
    moved = good.rgb8.copy()
    moved[160:320] = np.roll(moved[160:320], 48, axis=1)  # 10 MCU rows, 3 MCUs to the right
    wrong = dataclasses.replace(good, rgb8=moved)
    back = _no_worse_than_dc(wrong, base, thumb, fit)
    assert back.method == "dc" and "the dc result kept" in back.thumbnail_fit.reason
    np.testing.assert_array_equal(back.rgb8, base.rgb8)


@pytest.mark.parametrize("seed", [1, 2])
def test_each_hole_of_a_checked_thumbnail_takes_the_fill_that_fits_around_it(astronaut, seed):
    """``choose_fill`` (on with the check): where a stale thumbnail is off, the holes there take the
    interpolation the trusted MCUs around them predict better (astronaut: +3-4 dB over the thumbnail fill
    everywhere); training's path (check off) keeps the thumbnail fill, bit for bit as before."""
    img = resize_cover(astronaut, (768, 512))
    sample = Corruptor.from_preset("paper", ber=3e-5).corrupt(img, seed=seed)
    bad = decode(sample.corrupted_jpeg)
    gt = decode(sample.clean_jpeg).to_rgb()
    stale = stale_thumbnail(img)
    chosen = y_psnr(compensate(bad, stale, "dc_thumb").rgb * 255.0, gt)
    everywhere = y_psnr(compensate(bad, stale, "dc_thumb", choose_fill=False).rgb * 255.0, gt)
    assert chosen > everywhere + 2.0, (chosen, everywhere)
    own = decode_thumbnail(sample.thumbnail)
    train = compensate(bad, own, "dc_thumb", check_thumbnail=False)
    assert np.array_equal(train.rgb8, compensate(bad, own, "dc_thumb", check_thumbnail=False,
                                                 choose_fill=False).rgb8)  # fmt: skip
