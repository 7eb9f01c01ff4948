"""dc_thumb at large sizes (tracker issue 14): a 160-px header thumbnail is ~3 MCUs a pixel on an 8K frame,
too coarse for the segmentation's MCU-by-MCU shift tests; trusted as at 2K it made dc_thumb 10 dB worse
than the self-only dc. The segmentation then runs self-only (src.sca.compensate._segment_thumb)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from PIL import Image

from src.corruption import Corruptor
from src.jpeg import decode
from src.metrics.image_quality import psnr_y
from src.sca import compensate
from src.sca.thumbnail import decode_thumbnail
from src.utils.photos import bundled_photos

comp_mod = importlib.import_module("src.sca.compensate")


class _Grid:
    """The geometry fields of a Decoded that thumb_px_per_mcu reads (4:2:0: 16-px MCUs)."""

    def __init__(self, width: int, height: int, mcu: int = 16):
        self.width, self.height = width, height
        self.mcu_cols, self.mcu_rows = -(-width // mcu), -(-height // mcu)
        self.planes = [np.zeros((self.mcu_rows * mcu, self.mcu_cols * mcu), np.float32)]


def test_segmentation_uses_the_thumbnail_only_where_it_resolves_the_mcu():
    thumb = np.zeros((80, 160, 3), np.uint8)
    ref = object()
    assert comp_mod.thumb_px_per_mcu(thumb, _Grid(2048, 1024)) == pytest.approx(1.25)
    assert comp_mod._segment_thumb(ref, thumb, _Grid(2048, 1024)) is ref  # 2K: as before
    assert comp_mod.thumb_px_per_mcu(thumb, _Grid(8192, 4096)) == pytest.approx(0.3125)
    assert comp_mod._segment_thumb(ref, thumb, _Grid(8192, 4096)) is None
    assert comp_mod._segment_thumb(None, thumb, _Grid(2048, 1024)) is None


@pytest.fixture(scope="module")
def large_sample():
    """A bundled photo upscaled to 8192x4096 (33 MP), paper-preset corruption at BER 1e-5: the
    corrupted decode, its header thumbnail (160 px) and the clean decode (uint8 RGB)."""
    rgb = bundled_photos(["rocket"])["rocket"]
    big = np.asarray(Image.fromarray(rgb).resize((8192, 4096), Image.Resampling.BICUBIC))
    c = Corruptor.from_preset("paper", ber=1e-5)
    s = c.corrupt(c.encode(big), SEED)
    return decode(s.corrupted_jpeg), decode_thumbnail(s.thumbnail), decode(s.clean_jpeg).to_rgb()


SEED = 2


def test_dc_thumb_not_worse_than_dc_at_8k(large_sample):
    """Before the fix dc_thumb lost ~10 dB Y-PSNR to dc here; a coarse thumbnail may cost a little in the
    later stages but must not wreck the segmentation (1 dB: the spread of dc_thumb - dc on 8K bench
    photos after the fix)."""
    bad, thumb, gt = large_sample
    assert thumb is not None and max(thumb.shape[:2]) == 160
    dc = psnr_y(compensate(bad, thumb, "dc").rgb8, gt)
    dct = psnr_y(compensate(bad, thumb, "dc_thumb").rgb8, gt)
    assert dct >= dc - 1.0, (dc, dct)
