"""Which thumbnail restore uses: a given one over the header's (``thumbnail_choice``), each checked against
the image (aligned or refused, and the report says which and why)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from test_configs import compose_config

from src.corruption import Corruptor, embed_thumbnail, make_thumbnail
from src.data.pipeline import prepare_photo
from src.restoration.restore import restore_bytes
from src.sca.thumb_check import to_display
from src.utils.images import decode_jpeg_rgb

DECODER = {"strategy": "paper"}
SCA = {"method": "dc_thumb"}


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([65.481, 128.553, 24.966]) / 255.0
    d = np.asarray(a, np.float64) @ w - np.asarray(b, np.float64) @ w
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-12)))


def stale_file(photo: np.ndarray, other: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(corrupted JPEG whose EXIF thumbnail shows ``other``, the clean decode, the right thumbnail)."""
    img = prepare_photo(photo, (512, 256))
    sample = Corruptor.from_preset("paper", ber=3e-5).corrupt(img, seed=2)
    assert len(sample.positions) > 0
    wrong = make_thumbnail(prepare_photo(other, (512, 256)))
    right = np.asarray(Image.fromarray(img).resize((160, 80), Image.Resampling.BICUBIC))
    return embed_thumbnail(sample.corrupted_jpeg, wrong), decode_jpeg_rgb(sample.clean_jpeg), right


def test_a_stale_header_thumbnail_is_refused_and_a_given_one_wins(coffee, chelsea):
    data, clean, right = stale_file(coffee, chelsea)
    header_only = restore_bytes(data, DECODER, SCA)
    assert header_only.method == "dc" and header_only.thumbnail_source == "none"
    assert any(line.startswith("header thumbnail refused") for line in header_only.report), header_only.report
    dc = y_psnr(header_only.restored, clean)
    given = restore_bytes(data, DECODER, SCA, thumbnail=right)
    assert given.method == "dc_thumb" and given.thumbnail_source == "given", given.report
    assert any(line.startswith("given thumbnail: thumbnail fits") for line in given.report), given.report
    assert y_psnr(given.restored, clean) >= dc + 2.0
    forced = restore_bytes(data, DECODER, SCA, thumbnail=right, thumbnail_choice="header")
    assert forced.method == "dc" and "given thumbnail not used (thumbnail_source=header)" in forced.report
    none = restore_bytes(data, DECODER, SCA, thumbnail=right, thumbnail_choice="none")
    assert none.method == "dc" and none.thumbnail_source == "none"
    np.testing.assert_array_equal(none.restored, header_only.restored)


def test_a_given_thumbnail_in_display_orientation_is_turned_back(coffee, chelsea):
    data, clean, right = stale_file(coffee, chelsea)
    shown = to_display(right, 6)  # as a viewer shows an Orientation=6 photo
    result = restore_bytes(data, DECODER, SCA, thumbnail=shown)
    assert result.thumbnail_source == "given" and result.compensated.thumbnail_fit.orientation == 6
    assert result.compensated.thumbnail_fit.thumbnail.shape[:2] == right.shape[:2]  # in stored orientation
    stored = restore_bytes(data, DECODER, SCA, thumbnail=right)
    assert y_psnr(result.restored, clean) >= y_psnr(stored.restored, clean) - 0.5


def test_cli_thumbnail_choice(tmp_path: Path, coffee, chelsea, capsys):
    from src.restore import restore

    data, _, right = stale_file(coffee, chelsea)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(data)
    Image.fromarray(right).save(tmp_path / "t.png")
    overrides = [f"input={tmp_path / 'in' / 'a.jpg'}", "ckpt_path=null", f"thumbnail={tmp_path / 't.png'}"]
    for choice, used in (("auto", "thumbnail: 160x80 (given)"), ("header", "thumbnail: none")):
        cfg = [*overrides, f"output_dir={tmp_path / choice}", f"thumbnail_choice={choice}"]
        out = restore(compose_config("restore", cfg, tmp_path / f"run_{choice}"))
        assert out["failed"] == {} and len(out["written"]) == 1
        printed = capsys.readouterr().out
        assert used in printed, printed
