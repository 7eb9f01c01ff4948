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
            # every MCU the decoder lost is filled and untrusted
            mh, mw = bad.mcu_height, bad.mcu_width
            trust = result.trust
            for r, c in zip(*np.nonzero(lost), strict=True):
                assert trust[r * mh : (r + 1) * mh, c * mw : (c + 1) * mw].max() == 0.0
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
