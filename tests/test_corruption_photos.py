"""src.utils.photos and src.utils.images: bundled photos, folder listing, robust loading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.utils.images import ImageLoadError, load_rgb
from src.utils.photos import PhotoError, bundled_photos, list_images, mate_backgrounds


def test_bundled_photos_are_rgb_uint8():
    photos = bundled_photos()
    assert {"astronaut", "coffee", "chelsea", "rocket", "camera"} <= set(photos)
    for name, img in photos.items():
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
        assert img.std() > 10, name  # real content
    cam = photos["camera"]
    assert np.array_equal(cam[:, :, 0], cam[:, :, 2])  # grey repeated to RGB


def test_bundled_subset_and_unknown():
    assert list(bundled_photos(["chelsea"])) == ["chelsea"]
    with pytest.raises(PhotoError, match="unknown bundled photo"):
        bundled_photos(["lena"])


def test_list_images(tmp_path, chelsea):
    (tmp_path / "sub").mkdir()
    Image.fromarray(chelsea).save(tmp_path / "b.PNG")
    Image.fromarray(chelsea).save(tmp_path / "sub" / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(tmp_path) == [tmp_path / "b.PNG", tmp_path / "sub" / "a.jpg"]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "b.PNG"]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        list_images(tmp_path / "notes.txt")


def test_load_rgb_applies_exif_orientation(tmp_path, coffee):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    Image.fromarray(coffee).save(tmp_path / "o.jpg", quality=95, exif=exif.tobytes())
    img = load_rgb(tmp_path / "o.jpg")
    assert img.shape == (coffee.shape[1], coffee.shape[0], 3)
    ref = np.rot90(coffee, k=-1)
    assert np.mean(np.abs(img.astype(int) - ref.astype(int))) < 4


def test_load_rgb_modes(tmp_path, camera, astronaut):
    Image.fromarray(camera).save(tmp_path / "g.png")
    Image.fromarray(np.dstack([astronaut, np.full(astronaut.shape[:2], 128, np.uint8)])).save(
        tmp_path / "a.png"
    )
    Image.fromarray(camera.astype(np.uint16) * 257).save(tmp_path / "w.png")
    g, a, w = (load_rgb(tmp_path / n) for n in ("g.png", "a.png", "w.png"))
    assert g.shape == (512, 512, 3) and np.array_equal(g[:, :, 1], camera)
    assert np.array_equal(a, astronaut)
    assert w.dtype == np.uint8 and np.abs(w[:, :, 0].astype(int) - camera).max() <= 1


def test_load_rgb_names_a_bad_file(tmp_path, coffee):
    (tmp_path / "fake.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match=r"fake\.jpg"):
        load_rgb(tmp_path / "fake.jpg")
    Image.fromarray(coffee).save(tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes()[:3000])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg"):
        load_rgb(tmp_path / "cut.jpg")


def test_mate_backgrounds_lists_the_jpegs_of_the_folder(tmp_path, monkeypatch, chelsea):
    from src.utils import photos

    monkeypatch.setattr(photos, "MATE_BACKGROUNDS", tmp_path / "mate")
    assert mate_backgrounds() == []  # not installed
    (tmp_path / "mate" / "nature").mkdir(parents=True)
    for name in ("b.JPG", "nature/a.jpeg", "c.png"):
        Image.fromarray(chelsea).save(tmp_path / "mate" / name)
    (tmp_path / "mate" / "readme.txt").write_text("x")
    assert mate_backgrounds() == [tmp_path / "mate" / "b.JPG", tmp_path / "mate" / "nature" / "a.jpeg"]
