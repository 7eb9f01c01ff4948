"""src.restore on files made by the corruption simulator: CLI, folders, thumbnails, a generator, errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_configs import ROOT, compose_config

from src.corruption import Corruptor
from src.data.pipeline import decode_jpeg_rgb, prepare_photo
from src.metrics import psnr_y
from src.restore import RestoreError, restore


def _corrupt(photo: np.ndarray, path: Path, seed: int = 4, **overrides) -> tuple[Path, np.ndarray]:
    """Write a corrupted JPEG of ``photo`` at 256x128; returns (path, decoded clean JPEG)."""
    sample = Corruptor.from_preset("paper", ber=3e-4, **overrides).corrupt(
        prepare_photo(photo, (256, 128)), seed
    )
    assert sample.n_flips > 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sample.corrupted_jpeg)
    return path, decode_jpeg_rgb(sample.clean_jpeg)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _restore(tmp_path: Path, *overrides: str) -> dict:
    return restore(compose_config("restore", list(overrides), tmp_path / "run"))


def test_cli_restores_a_corrupted_file_and_leaves_it_untouched(tmp_path: Path, coffee: np.ndarray) -> None:
    src, clean = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    before = _digest(src)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "src.restore", f"input={src}", f"output_dir={out}",
           f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _digest(src) == before
    restored = np.asarray(Image.open(out / "coffee_restored.png").convert("RGB"))
    assert restored.shape == clean.shape
    assert (
        "MCU grid 16x8" in proc.stdout
        and "SCA dc_thumb" in proc.stdout
        and "thumbnail: 160x80" in proc.stdout
    )
    from src.jpeg import decode

    raw = decode(src.read_bytes()).to_rgb()
    assert psnr_y(restored, clean) > psnr_y(raw, clean) + 3  # SCA + thumbnail fill repair the decode


def test_folder_input_keeps_sub_folders(tmp_path: Path, coffee: np.ndarray, chelsea: np.ndarray) -> None:
    a, _ = _corrupt(coffee, tmp_path / "in" / "a.jpg")
    b, _ = _corrupt(chelsea, tmp_path / "in" / "sub" / "b.JPG")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    before = {p: _digest(p) for p in (a, b)}
    result = _restore(tmp_path, f"input={tmp_path / 'in'}", f"output_dir={tmp_path / 'in'}")
    assert sorted(Path(p).relative_to(tmp_path / "in").as_posix() for p in result["written"]) == [
        "a_restored.png", "sub/b_restored.png",
    ]  # fmt: skip
    assert result["failed"] == {} and {p: _digest(p) for p in (a, b)} == before


def test_missing_thumbnail_falls_back_or_uses_the_given_one(
    tmp_path: Path, coffee: np.ndarray, caplog
) -> None:
    src, clean = _corrupt(coffee, tmp_path / "in" / "nothumb.jpg", thumbnail_size=None)
    from src.restore import restore_bytes

    data = src.read_bytes()
    fallback = restore_bytes(data, {"strategy": "paper"}, {"method": "dc_thumb"})
    assert fallback["method"] == "dc" and fallback["thumbnail_source"] == "none"
    assert "needs a thumbnail" in caplog.text
    thumb = np.asarray(Image.fromarray(clean).resize((160, 80), Image.Resampling.BICUBIC))
    Image.fromarray(thumb).save(tmp_path / "thumb.png")
    result = _restore(
        tmp_path, f"input={src}", f"output_dir={tmp_path / 'out'}", f"thumbnail={tmp_path / 'thumb.png'}"
    )
    restored = np.asarray(Image.open(result["written"][0]).convert("RGB"))
    assert psnr_y(restored, clean) >= psnr_y(fallback["restored"], clean) - 0.5  # the guide does not hurt


def test_with_an_exported_generator(tmp_path: Path, coffee: np.ndarray) -> None:
    import hydra

    cfg = compose_config("train", ["model=gca_refine_small"], tmp_path / "train")
    module = hydra.utils.instantiate(cfg.model)
    gen = module.export_generator(tmp_path / "gen.pt")
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    result = _restore(
        tmp_path, f"input={src}", f"output_dir={tmp_path / 'out'}", f"ckpt_path={gen}", "device=cpu"
    )
    assert sorted(Path(p).name for p in result["written"]) == ["coffee_restored.png", "coffee_sca.png"]
    restored, sca = (np.asarray(Image.open(p)) for p in sorted(result["written"]))
    assert restored.shape == sca.shape == (128, 256, 3) and not np.array_equal(restored, sca)


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RestoreError, match="does not exist"):
        _restore(tmp_path, f"input={tmp_path / 'missing.jpg'}")
    (tmp_path / "fake.jpg").write_bytes(b"GIF89a not a jpeg")
    with pytest.raises(RestoreError, match="is not a JPEG file"):
        _restore(tmp_path, f"input={tmp_path / 'fake.jpg'}", f"output_dir={tmp_path / 'out'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RestoreError, match="holds no JPEG"):
        _restore(tmp_path, f"input={tmp_path / 'empty'}")
    with pytest.raises(RestoreError, match=r"checkpoint .* does not exist"):
        _restore(tmp_path, f"input={tmp_path / 'fake.jpg'}", f"ckpt_path={tmp_path / 'none.ckpt'}")
    # the command line: exit code 1 and a one-line message, no traceback
    cmd = [sys.executable, "-m", "src.restore", f"input={tmp_path / 'missing.jpg'}",
           f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 1 and "src.restore: error:" in proc.stderr and "Traceback" not in proc.stderr
