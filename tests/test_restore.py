"""src.restore on files made by the corruption simulator: CLI, folders, thumbnails, a generator, the shipped
default model (present or missing), errors."""

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
from src.data.pipeline import prepare_photo
from src.metrics import psnr_y
from src.restoration import RestoreError, load_restorer, restore_bytes
from src.restore import restore
from src.utils.images import decode_jpeg_rgb


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
    """``src.restore`` in-process; GCA runs whatever the damage (``gca_max_filled=null``) unless overridden:
    these small test files are far more damaged than the shipped model's guard lets through."""
    if not any(o.startswith("gca_max_filled=") for o in overrides):
        overrides = (*overrides, "gca_max_filled=null")
    return restore(compose_config("restore", list(overrides), tmp_path / "run"))


def _random_module(tmp_path: Path):
    """A ``gca_refine_small`` module with every generator weight perturbed: an untrained residual generator
    returns its SCA input exactly, and the tests must see the model act."""
    import hydra
    import torch

    torch.manual_seed(0)
    module = hydra.utils.instantiate(compose_config("train", ["model=gca_refine_small"], tmp_path).model)
    with torch.no_grad():
        for param in module.net.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return module


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ``gca_refine_small`` generator exported in int8, as the shipped model is."""
    from src.gca import export_generator

    tmp = tmp_path_factory.mktemp("tiny")
    return export_generator(_random_module(tmp / "t").net, tmp / "gca_refine.pt", dtype="int8")


def test_cli_restores_a_corrupted_file_and_leaves_it_untouched(tmp_path: Path, coffee: np.ndarray) -> None:
    src, clean = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    before = _digest(src)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "src.restore", f"input={src}", f"output_dir={out}",
           f"hydra.run.dir={tmp_path / 'hydra'}", "gca_max_filled=null"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PROJECT_ROOT"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**env, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the default model is the repository's weights/gca_refine.pt, found from any working folder
    shipped = ROOT / "weights" / "gca_refine.pt"
    if shipped.is_file():
        assert f"model: shipped {shipped} (GCA generator" in proc.stdout and f"GCA: {shipped}" in proc.stdout
    else:
        assert "model: none (shipped model missing)" in proc.stdout
        assert f"the shipped model {shipped} is not there" in proc.stdout + proc.stderr
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
    result = _restore(tmp_path, f"input={tmp_path / 'in'}", f"output_dir={tmp_path / 'in'}", "ckpt_path=null")
    assert sorted(Path(p).relative_to(tmp_path / "in").as_posix() for p in result["written"]) == [
        "a_restored.png", "sub/b_restored.png",
    ]  # fmt: skip
    assert result["failed"] == {} and {p: _digest(p) for p in (a, b)} == before


def test_missing_thumbnail_falls_back_or_uses_the_given_one(
    tmp_path: Path, coffee: np.ndarray, caplog
) -> None:
    src, clean = _corrupt(coffee, tmp_path / "in" / "nothumb.jpg", thumbnail_size=None)
    data = src.read_bytes()
    fallback = restore_bytes(data, {"strategy": "paper"}, {"method": "dc_thumb"})
    assert fallback.method == "dc" and fallback.thumbnail_source == "none"
    assert "needs a thumbnail" in caplog.text
    thumb = np.asarray(Image.fromarray(clean).resize((160, 80), Image.Resampling.BICUBIC))
    Image.fromarray(thumb).save(tmp_path / "thumb.png")
    result = _restore(
        tmp_path,
        f"input={src}",
        f"output_dir={tmp_path / 'out'}",
        f"thumbnail={tmp_path / 'thumb.png'}",
        "ckpt_path=null",
    )
    restored = np.asarray(Image.open(result["written"][0]).convert("RGB"))
    assert psnr_y(restored, clean) >= psnr_y(fallback.restored, clean) - 0.5  # the guide does not hurt


def test_with_an_exported_generator(tmp_path: Path, coffee: np.ndarray) -> None:
    gen = _random_module(tmp_path / "train").export_generator(tmp_path / "gen.pt")
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    result = _restore(
        tmp_path, f"input={src}", f"output_dir={tmp_path / 'out'}", f"ckpt_path={gen}", "device=cpu"
    )
    assert sorted(Path(p).name for p in result["written"]) == ["coffee_restored.png", "coffee_sca.png"]
    restored, sca = (np.asarray(Image.open(p)) for p in sorted(result["written"]))
    assert restored.shape == sca.shape == (128, 256, 3) and not np.array_equal(restored, sca)


def test_default_model_is_the_shipped_file_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("restore", ["input=x.jpg"], tmp_path / "run")
    assert cfg.ckpt_path == "shipped" and Path(cfg.shipped_ckpt_path) == ROOT / "weights" / "gca_refine.pt"


def test_shipped_model_is_used_when_present(
    tmp_path: Path, coffee: np.ndarray, tiny_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    result = _restore(
        tmp_path, f"input={src}", f"output_dir={tmp_path / 'out'}", f"shipped_ckpt_path={tiny_export}",
        "device=cpu",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"model: shipped {tiny_export} (GCA generator, 0.15 M parameters, cpu)" in out
    assert f"GCA: {tiny_export}" in out
    assert sorted(Path(p).name for p in result["written"]) == ["coffee_restored.png", "coffee_sca.png"]
    restored, sca = (np.asarray(Image.open(p)) for p in sorted(result["written"]))
    assert restored.shape == sca.shape == (128, 256, 3) and not np.array_equal(restored, sca)


def test_missing_shipped_model_falls_back_and_null_disables(
    tmp_path: Path, coffee: np.ndarray, tiny_export: Path, capsys: pytest.CaptureFixture[str], caplog
) -> None:
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    missing = tmp_path / "weights" / "gca_refine.pt"
    fallback = _restore(
        tmp_path, f"input={src}", f"output_dir={tmp_path / 'a'}", f"shipped_ckpt_path={missing}"
    )
    out = capsys.readouterr().out
    assert "model: none (shipped model missing): SCA + thumbnail fill" in out and "GCA" not in out
    assert [r.message for r in caplog.records if "is not there" in r.message] == [
        f"the shipped model {missing} is not there (see weights/README.md): restoring with SCA + thumbnail "
        "fill, no GCA (ckpt_path=CKPT uses another model, ckpt_path=null silences this)"
    ]
    assert [Path(p).name for p in fallback["written"]] == ["coffee_restored.png"]
    # ckpt_path=null: no GCA even with a shipped model there, and the same SCA + thumbnail fill image
    off = _restore(tmp_path, f"input={src}", f"output_dir={tmp_path / 'b'}",
                   f"shipped_ckpt_path={tiny_export}", "ckpt_path=null")  # fmt: skip
    assert "model: none (ckpt_path=null)" in capsys.readouterr().out
    assert _digest(Path(off["written"][0])) == _digest(Path(fallback["written"][0]))


def test_default_model_without_any_thumbnail(
    tmp_path: Path, coffee: np.ndarray, tiny_export: Path, caplog
) -> None:
    """A file without thumbnail and no thumbnail=: SCA falls back to dc and GCA is skipped (the SCA image is
    written); gca_input_thumbnail=true runs GCA guided by a thumbnail made from the SCA image."""
    src, _ = _corrupt(coffee, tmp_path / "in" / "nothumb.jpg", thumbnail_size=None)
    common = (f"input={src}", f"shipped_ckpt_path={tiny_export}", "device=cpu")
    skipped = _restore(tmp_path, *common, f"output_dir={tmp_path / 'a'}")
    assert [Path(p).name for p in skipped["written"]] == ["nothumb_restored.png"]
    assert "GCA skipped: the model needs a thumbnail" in caplog.text
    restorer = load_restorer(tiny_export, "cpu")
    data = src.read_bytes()
    result = restore_bytes(data, {"strategy": "paper"}, {"method": "dc_thumb"}, restorer=restorer)
    assert result.method == "dc" and not result.gca
    assert np.array_equal(result.restored, result.sca)
    assert any(line.startswith("GCA skipped: the model needs a thumbnail") for line in result.report)
    no_model = _restore(tmp_path, f"input={src}", "ckpt_path=null", f"output_dir={tmp_path / 'c'}")
    assert _digest(Path(skipped["written"][0])) == _digest(Path(no_model["written"][0]))  # the SCA image
    guided = restore_bytes(data, {"strategy": "paper"}, {"method": "dc_thumb"}, restorer=restorer,
                           gca_input_thumbnail=True)  # fmt: skip
    assert guided.gca and guided.restored.shape == (128, 256, 3)
    assert f"GCA: {tiny_export} (guided by a thumbnail made from the SCA image)" in guided.report
    both = _restore(tmp_path, *common, f"output_dir={tmp_path / 'b'}", "gca_input_thumbnail=true")
    assert sorted(Path(p).name for p in both["written"]) == ["nothumb_restored.png", "nothumb_sca.png"]


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


def test_gca_is_skipped_above_the_filled_share(tmp_path: Path, coffee: np.ndarray, tiny_export: Path) -> None:
    """Damage heavier than ``gca_max_filled`` (share of pixels SCA filled) keeps the SCA image and says so."""
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    restorer = load_restorer(tiny_export, "cpu")
    args = (src.read_bytes(), {"strategy": "paper"}, {"method": "dc_thumb"})
    ran = restore_bytes(*args, restorer=restorer, gca_max_filled=None)
    filled = float(np.mean(ran.compensated.trust < 1.0))
    assert ran.gca and 0.0 < filled < 1.0
    kept = restore_bytes(*args, restorer=restorer, gca_max_filled=filled / 2)
    assert not kept.gca and np.array_equal(kept.restored, kept.sca)
    assert any(line.startswith(f"GCA skipped: SCA filled {100 * filled:.1f} %") for line in kept.report)
    assert restore_bytes(*args, restorer=restorer, gca_max_filled=min(1.0, filled * 2)).gca


SHIPPED = ROOT / "weights" / "gca_refine.pt"


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped model in weights/")
def test_shipped_model_beats_its_sca_input_on_held_out_photos() -> None:
    """The shipped generator on photos it never saw (scikit-image's coffee, chelsea, astronaut are held out
    by scripts/model_photos.py), corrupted at 1024x512 with the paper preset at BER 1e-5, 2 seeds each:
    Y-PSNR above SCA dc_thumb on average, and never far below it (measured: +0.43 dB mean, -0.24 dB worst)."""
    from skimage import data as skdata

    restorer = load_restorer(SHIPPED, "cpu")
    gains = []
    for name in ("coffee", "chelsea", "astronaut"):
        for seed in (1, 2):
            sample = Corruptor.from_preset("paper").corrupt(
                prepare_photo(getattr(skdata, name)(), (1024, 512)), seed
            )
            gt = decode_jpeg_rgb(sample.clean_jpeg)
            out = restore_bytes(
                sample.corrupted_jpeg, {"strategy": "paper"}, {"method": "dc_thumb"}, restorer=restorer
            )
            assert out.gca
            gains.append(psnr_y(out.restored, gt) - psnr_y(out.sca, gt))
    assert np.mean(gains) > 0.2 and min(gains) > -0.5, gains


# ------------------------------------------------------------------------------ the CLI a forensic user meets
def _cli(tmp_path: Path, *overrides: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m src.restore`` in a child process (no model: these tests are about files and messages)."""
    cmd = [sys.executable, "-m", "src.restore", f"hydra.run.dir={tmp_path / 'hydra'}", "ckpt_path=null",
           *overrides]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PROJECT_ROOT"}
    return subprocess.run(cmd, cwd=cwd or tmp_path, capture_output=True, text=True, timeout=600,
                          env={**env, "PYTHONPATH": str(ROOT)})  # fmt: skip


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_cli_folder_run_distinct_names_failures_summary_and_no_overwrite(
    tmp_path: Path, coffee: np.ndarray, chelsea: np.ndarray
) -> None:
    """a.jpg and a.jpeg get distinct outputs; a bad file is one line on stderr while the others are restored;
    the run ends with "N restored, M failed" and exit status 1; a second run refuses to replace the outputs
    (one line naming the file and overwrite=true) and leaves them untouched; overwrite=true replaces them."""
    inp = tmp_path / "in"
    _corrupt(coffee, inp / "a.jpg")
    _corrupt(chelsea, inp / "a.jpeg", seed=5)
    _corrupt(coffee, inp / "sub" / "b.JPG", seed=6)
    (inp / "broken.jpg").write_bytes(b"GIF89a this is no JPEG")
    out = tmp_path / "out"
    first = _cli(tmp_path, f"input={inp}", f"output={out}")
    assert first.returncode == 1, first.stderr[-2000:]
    assert first.stdout.strip().splitlines()[-1] == f"3 restored, 1 failed -> {out}"
    failures = [line for line in first.stderr.splitlines() if "FAILED" in line]
    bad = inp / "broken.jpg"
    assert len(failures) == 1 and failures[0].endswith(
        f"{bad}: FAILED: {str(bad)!r} is not a JPEG file (it starts with 47 49 46 38)"
    )
    assert "Traceback" not in first.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a_jpeg_restored.png", "a_jpg_restored.png", "sub/b_restored.png",
    ]  # fmt: skip
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary file left behind
    # a progress bar over the folder (stderr), and the kernel line before the first file's report
    assert "restore: 100%" in first.stderr and "4/4" in first.stderr
    assert first.stdout.index("preparing the numba decoder") < first.stdout.index(f"{inp / 'a.jpeg'}:")
    a_jpg = np.asarray(Image.open(out / "a_jpg_restored.png"))
    a_jpeg = np.asarray(Image.open(out / "a_jpeg_restored.png"))
    assert a_jpg.shape == a_jpeg.shape and not np.array_equal(a_jpg, a_jpeg)  # two photos, two outputs
    before = _mtimes(out)
    again = _cli(tmp_path, f"input={inp}", f"output={out}")
    assert again.returncode == 1 and _mtimes(out) == before
    (line,) = again.stderr.strip().splitlines()
    assert line == (
        f"src.restore: error: {str(out / 'a_jpeg_restored.png')!r} exists (and 2 more), from an earlier run: "
        "pass overwrite=true to replace it, or choose another output_dir"
    )
    assert "preparing the numba" not in again.stdout  # refused before any work
    forced = _cli(tmp_path, f"input={inp}", f"output={out}", "overwrite=true", "progress=false")
    assert forced.returncode == 1 and "3 restored, 1 failed" in forced.stdout
    assert "restore:" not in forced.stderr  # progress=false: no bar
    assert all(_mtimes(out)[k] > v for k, v in before.items())


def test_cli_file_names_with_spaces_quotes_commas_and_equals(tmp_path: Path, coffee: np.ndarray) -> None:
    """One shell word per option is enough: input, output and thumbnail names with spaces, parentheses,
    commas, '=', both quote characters, '#' and '${' reach the tool as they are (no Hydra quoting)."""
    weird = """it's "my" photo (1), v=2 #3 ${x}"""
    src, clean = _corrupt(coffee, tmp_path / "in dir (a)" / f"{weird}.jpg", thumbnail_size=None)
    thumb = tmp_path / 'thumb, "t" = (1).png'
    Image.fromarray(clean).resize((160, 80), Image.Resampling.BICUBIC).save(thumb)
    out = tmp_path / "out dir (b), c=d 'e'"
    proc = _cli(tmp_path, f"input={src}", f"output={out}", f"thumbnail={thumb}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "thumbnail: 160x80 (given)" in proc.stdout
    restored = out / f"{weird}_restored.png"
    assert restored.is_file() and proc.stdout.strip().endswith(f"1 restored, 0 failed -> {out}")
    from src.jpeg import decode

    raw = decode(src.read_bytes()).to_rgb()
    assert psnr_y(np.asarray(Image.open(restored).convert("RGB")), clean) > psnr_y(raw, clean) + 3
    # a value the user quoted for Hydra themselves is passed through unchanged
    again = _cli(tmp_path, f'input="{src.parent}"', f"output={out}", f"thumbnail={thumb}", "overwrite=true")
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.parametrize(
    "name",
    ["plain.jpg", "a b.jpg", "a (1).jpg", "a,b.jpg", "a=b.jpg", "it's.jpg", 'say "hi".jpg', "a${x}.jpg",
     "back\\slash.jpg", "end\\", 'q\\"x', "a\\${x}", "ä ö #1.jpg", "  lead.jpg", "[1] {2}.jpg", "null.jpg"],
)  # fmt: skip
def test_quoted_path_overrides_parse_back_to_the_name(tmp_path: Path, name: str) -> None:
    from src.restore import PATH_OPTIONS
    from src.utils.cli import quote_path_overrides

    args = quote_path_overrides([f"input={name}", "ckpt_path=null", "+output=x y", "--", "a b"], PATH_OPTIONS)
    assert args[1] == "ckpt_path=null" and args[-2:] == ["--", "a b"]
    cfg = compose_config("restore", args[:3], tmp_path)
    assert cfg.input == name and cfg.ckpt_path is None and cfg.output == "x y"


def test_output_folder_errors_come_before_any_work(tmp_path: Path, coffee: np.ndarray) -> None:
    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = _cli(tmp_path, f"input={src}", f"output={blocker / 'out'}")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"src.restore: error: cannot create the output folder {str(blocker / 'out')!r}: Not a directory"
    ]
    with pytest.raises(RestoreError, match=r"output folder .* is a file"):
        _restore(tmp_path, f"input={src}", f"output={blocker}", "ckpt_path=null")
    if os.geteuid() != 0:  # root writes into read-only folders
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(RestoreError, match=r"output folder .* is not writable: Permission denied"):
            _restore(tmp_path, f"input={src}", f"output={locked}", "ckpt_path=null")


def test_outputs_are_written_atomically_and_never_replace_a_file(tmp_path: Path) -> None:
    from src.utils.io import atomic_write_bytes

    target = tmp_path / "x.png"
    atomic_write_bytes(target, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first" and sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    atomic_write_bytes(target, b"third")
    assert target.read_bytes() == b"third"


def test_output_names_are_distinct_per_folder(tmp_path: Path) -> None:
    from src.restoration.outputs import output_bases

    names = ["a.jpg", "a.jpeg", "A.JPG", "b.jpg", "sub/a.jpg", "c.jfif"]
    files = [tmp_path / n for n in names]
    bases = output_bases(files, tmp_path)
    assert {f.relative_to(tmp_path).as_posix(): b.as_posix() for f, b in bases.items()} == {
        "a.jpg": "a_jpg", "a.jpeg": "a_jpeg", "A.JPG": "A_JPG_2", "b.jpg": "b", "sub/a.jpg": "sub/a",
        "c.jfif": "c",
    }  # fmt: skip
    assert output_bases([tmp_path / "x.jpg"], tmp_path / "x.jpg") == {tmp_path / "x.jpg": Path("x")}


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _camera_like_jpeg(photo: np.ndarray) -> tuple[bytes, bytes, dict]:
    """A 256x128 JPEG of ``photo`` as a phone writes it: EXIF with Orientation 6 (turn 90 degrees clockwise to
    view), capture time, GPS position, and an sRGB ICC profile. Returns (JPEG, ICC profile, piexif dict)."""
    import io

    import piexif
    from PIL import ImageCms

    exif = {
        "0th": {piexif.ImageIFD.Make: b"TestCam", piexif.ImageIFD.Orientation: 6,
                piexif.ImageIFD.DateTime: b"2026:12:01 10:11:12"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2026:12:01 10:11:12"},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (24, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E", piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (3, 1))},
    }  # fmt: skip
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(prepare_photo(photo, (256, 128))).save(
        buf, "JPEG", quality=90, exif=piexif.dump(exif), icc_profile=icc, dpi=(300, 300), xmp=XMP
    )
    return buf.getvalue(), icc, exif


def test_cli_carries_exif_and_icc_into_the_png_in_stored_orientation(
    tmp_path: Path, coffee: np.ndarray
) -> None:
    """Orientation, capture time, GPS and the ICC profile of a corrupted camera-like file come back in the
    PNG (eXIf / iCCP); the pixels stay in stored orientation (256x128, not turned) with the tag kept."""
    import piexif

    jpeg, icc, exif = _camera_like_jpeg(coffee)
    sample = Corruptor.from_preset("paper", ber=3e-4).corrupt(jpeg, 4)
    assert sample.n_flips > 0 and piexif.load(sample.corrupted_jpeg)["GPS"] == exif["GPS"]
    src = tmp_path / "in" / "IMG_0001.jpg"
    src.parent.mkdir()
    src.write_bytes(sample.corrupted_jpeg)
    out = tmp_path / "out"
    proc = _cli(tmp_path, f"input={src}", f"output={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "metadata: EXIF" in proc.stdout
    assert f"ICC profile {len(icc)} B, XMP {len(XMP)} B, 300x300 dpi -> PNG" in proc.stdout
    with Image.open(out / "IMG_0001_restored.png") as png:
        assert png.size == (256, 128)  # stored orientation
        assert png.info["icc_profile"] == icc
        xmp = png.info["xmp"]  # the iTXt XML:com.adobe.xmp chunk (bytes or text, by Pillow version)
        assert (xmp if isinstance(xmp, bytes) else xmp.encode()) == XMP
        assert tuple(round(v) for v in png.info["dpi"]) == (300, 300)
        back = piexif.load(png.info["exif"])  # Pillow gives the eXIf chunk with the APP1 prefix
        source = png.text["Source"]
    for ifd in ("0th", "Exif", "GPS"):
        for tag, value in exif[ifd].items():
            assert back[ifd][tag] == value, (ifd, tag)
    assert back["0th"][piexif.ImageIFD.Orientation] == 6
    assert b"eXIfMM\x00*" in (out / "IMG_0001_restored.png").read_bytes()  # bare TIFF data
    assert source == f"IMG_0001.jpg (sha256 {hashlib.sha256(sample.corrupted_jpeg).hexdigest()})"
    # Pillow's own EXIF reader sees the same tags, and exif_transpose turns the PNG as it turns the JPEG
    from PIL import ImageOps

    with Image.open(out / "IMG_0001_restored.png") as png:
        assert png.getexif()[274] == 6 and ImageOps.exif_transpose(png).size == (128, 256)
    bare = _cli(tmp_path, f"input={src}", f"output={tmp_path / 'bare'}", "keep_metadata=false")
    with Image.open(tmp_path / "bare" / "IMG_0001_restored.png") as png:
        assert bare.returncode == 0 and "exif" not in png.info and "icc_profile" not in png.info


def test_side_by_side_picture(tmp_path: Path, coffee: np.ndarray) -> None:
    """side_by_side=true: <stem>_compare.png = Pillow's decode | restored | trust mask, labelled; a 256-px
    image is enlarged x2 (pixels kept square), a large one shrunk to side_by_side_width."""
    from src.restoration.pictures import GAP, pillow_view

    src, _ = _corrupt(coffee, tmp_path / "in" / "coffee.jpg")
    result = _restore(
        tmp_path, f"input={src}", f"output={tmp_path / 'out'}", "ckpt_path=null", "side_by_side=true"
    )
    assert sorted(Path(p).name for p in result["written"]) == ["coffee_compare.png", "coffee_restored.png"]
    compare = np.asarray(Image.open(tmp_path / "out" / "coffee_compare.png").convert("RGB"))
    restored = np.asarray(Image.open(tmp_path / "out" / "coffee_restored.png").convert("RGB"))
    strip = compare.shape[0] - 256
    assert compare.shape[1] == 3 * 512 + 2 * GAP and 20 <= strip <= 80  # one label line above the panels
    panels = [compare[strip:, k * (512 + GAP) : k * (512 + GAP) + 512] for k in range(3)]
    x2 = np.repeat(np.repeat(restored, 2, axis=0), 2, axis=1)
    assert np.array_equal(panels[1], x2)
    pillow = pillow_view(src.read_bytes(), (256, 128))
    assert np.array_equal(panels[0], np.repeat(np.repeat(pillow, 2, axis=0), 2, axis=1))
    trust = restore_bytes(src.read_bytes(), {"strategy": "paper"}, {"method": "dc_thumb"}).compensated.trust
    white = float(np.mean(panels[2][..., 0] > 127))
    assert abs(white - float(np.mean(trust > 0.5))) < 0.01 and 0.0 < white < 1.0
    assert np.any(compare[:strip] < 128)  # label text drawn
    small = _restore(tmp_path, f"input={src}", f"output={tmp_path / 'small'}", "ckpt_path=null",
                     "side_by_side=true", "side_by_side_width=128")  # fmt: skip
    assert (
        Image.open(next(p for p in small["written"] if p.endswith("_compare.png"))).size[0]
        == 3 * 128 + 2 * GAP
    )


def test_an_icc_profile_that_is_not_rgb_is_not_carried(coffee: np.ndarray) -> None:
    """The PNGs are RGB: a profile for other data (here Lab) would misdescribe them; the report says so."""
    import io

    from PIL import ImageCms

    from src.restoration.outputs import jpeg_metadata

    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(coffee).save(buf, "JPEG", icc_profile=lab)
    meta = jpeg_metadata(buf.getvalue())
    assert meta.icc_profile is None and meta.note == "ICC profile for 'Lab' data not carried: the PNG is RGB"
    rgb, _, _ = _camera_like_jpeg(coffee)
    assert jpeg_metadata(rgb).icc_profile is not None and jpeg_metadata(b"\xff\xd8 junk").note is not None
