"""`python -m src.corrupt` through a subprocess, and the demo's building blocks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.corruption import Corruptor, read_thumbnail, scan_extent
from src.data.corrupted_folder import run
from src.restoration import pictures

REPO = Path(__file__).resolve().parents[1]


def _cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "src.corrupt",
            f"hydra.run.dir={tmp_path / 'hydra'}",
            "progress=false",
            *overrides,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def input_dir(tmp_path, chelsea, coffee) -> Path:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(chelsea).save(d / "chelsea.png")
    Image.fromarray(coffee).save(d / "sub" / "coffee.jpg", quality=95)
    return d


def test_cli_tiny_run_is_complete_replayable_and_resumable(tmp_path, input_dir):
    out = tmp_path / "out"
    args = [f"input_dir={input_dir}", f"output_dir={out}", "size=[256,128]", "seeds_per_image=2",
            "corruption.ber=1e-4"]  # fmt: skip
    r = _cli(tmp_path, *args)
    assert r.returncode == 0, r.stderr
    assert "2 corrupted, 0 already done" in r.stdout
    for name in ("chelsea", "sub/coffee"):
        meta = json.loads((out / "meta" / f"{name}.json").read_text())
        assert meta["size"] == [256, 128] and meta["settings"]["ber"] == 1e-4
        assert [v["path"] for v in meta["variants"]] == [
            f"corrupted/{name}_s0.jpg",
            f"corrupted/{name}_s1.jpg",
        ]
        clean = (out / "clean" / f"{name}.jpg").read_bytes()
        im = Image.open(io.BytesIO(clean))
        assert im.size == (256, 128)
        assert Image.open(io.BytesIO(read_thumbnail(clean))).size == (160, 80)
        gt = np.asarray(Image.open(out / "gt" / f"{name}.png"))
        assert np.array_equal(gt, np.asarray(im.convert("RGB")))  # GT = the decoded clean JPEG
        assert meta["scan"] == list(scan_extent(clean))
        corr = Corruptor(**meta["settings"])
        for var in meta["variants"]:
            data = (out / var["path"]).read_bytes()
            assert len(data) == len(clean) and var["n_flips"] == len(var["positions"])
            assert corr.apply(clean, np.array(var["positions"]).reshape(-1, 3)) == data  # replay
            assert corr.corrupt(clean, var["seed"]).corrupted_jpeg == data  # re-run from the seed
    seeds = [v["seed"] for n in ("chelsea", "sub/coffee") for v in
             json.loads((out / "meta" / f"{n}.json").read_text())["variants"]]  # fmt: skip
    assert len(set(seeds)) == 4
    # resumable: a second run skips everything; other settings into the same folder are refused
    r2 = _cli(tmp_path, *args)
    assert r2.returncode == 0 and "0 corrupted, 2 already done" in r2.stdout
    r3 = _cli(tmp_path, *args, "seed=1")
    assert r3.returncode != 0 and "other settings" in r3.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "bad_ber"])
def test_cli_errors_are_one_line(tmp_path, case):
    (tmp_path / "empty").mkdir()
    arg = {
        "missing": f"input_dir={tmp_path / 'nope'}",
        "empty": f"input_dir={tmp_path / 'empty'}",
        "bad_ber": "corruption.ber=0.7",
    }[case]
    r = _cli(tmp_path, arg, f"output_dir={tmp_path / 'out'}")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("src.corrupt: error: ")
    assert r.returncode == 1
    assert {"missing": "nope", "empty": "holds no images", "bad_ber": "0.7"}[case] in lines[0]
    assert not (tmp_path / "out").exists()


def test_run_skips_unreadable_images(tmp_path, input_dir):
    (input_dir / "broken.jpg").write_bytes(b"\xff\xd8 this is no image")
    summary = run(Corruptor.from_preset("paper"), input_dir, tmp_path / "out", progress=False)
    assert summary.done == 2 and len(summary.failed) == 1 and summary.failed[0].endswith("broken.jpg")


def test_demo_contact_sheet(tmp_path, input_dir):
    summary = run(
        Corruptor.from_preset("paper", ber=1e-4), input_dir, tmp_path, size=(512, 256), progress=False
    )
    sheet = pictures.contact_sheet(summary.metas, tmp_path)
    # columns: clean | Pillow | robust decode | SCA, one row per photo
    assert sheet.size[0] == 4 * pictures.TILE[0] + 5 * 4
    assert sheet.size[1] == 2 * (pictures.TILE[1] + pictures.CAPTION + 4) + 4
    px = np.asarray(sheet).astype(np.float64)
    for row in range(2):
        y0 = 4 + row * (pictures.TILE[1] + pictures.CAPTION + 4)
        x0 = [4 + j * (pictures.TILE[0] + 4) for j in range(4)]
        cells = [px[y0 : y0 + pictures.TILE[1], x : x + pictures.TILE[0]] for x in x0]
        err_robust, err_sca = (np.abs(cells[k] - cells[0]).mean() for k in (2, 3))
        assert err_sca < err_robust / 2  # the SCA column is much closer to the clean one
    tile = pictures.view_tile(b"\xff\xd8\xff\xdb garbage")
    assert tile.size == pictures.TILE and np.asarray(tile)[-1, -1].tolist() == [128, 128, 128]  # error tile


def test_cli_keeps_a_camera_files_bytes_with_reencode_false(tmp_path, coffee, chelsea):
    """A real-looking camera file (EXIF with GPS, no JFIF) is corrupted as it is: clean/ is the input, the
    damage lies strictly inside the scan, and a PNG is listed as failed."""
    import piexif

    gps = {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400, 100))}
    payload = piexif.dump({"0th": {piexif.ImageIFD.Make: b"TestCam"}, "GPS": gps})
    buf = io.BytesIO()
    Image.fromarray(coffee).save(buf, "JPEG", quality=92, restart_marker_blocks=4)
    plain = buf.getvalue()
    camera = b"\xff\xd8\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + plain[20:]
    d = tmp_path / "in"
    d.mkdir()
    (d / "cam.jpg").write_bytes(camera)
    Image.fromarray(chelsea).save(d / "shot.png")
    out = tmp_path / "out"
    r = _cli(tmp_path, f"input_dir={d}", f"output_dir={out}", "reencode=false", "corruption.ber=2e-4")
    assert r.returncode == 0, r.stderr
    assert "1 corrupted, 0 already done, 1 unreadable" in r.stdout
    assert (out / "clean" / "cam.jpg").read_bytes() == camera
    bad = (out / "corrupted" / "cam.jpg").read_bytes()
    start, end = scan_extent(camera)
    lo, hi = (start // 512 + 1) * 512, (end // 512) * 512
    assert bad != camera and bad[:lo] == camera[:lo] and bad[hi:] == camera[hi:]
    assert piexif.load(bad)["GPS"] == gps and read_thumbnail(bad) is None
    meta = json.loads((out / "meta" / "cam.json").read_text())
    assert meta["reencode"] is False and meta["size"] == [600, 400]
    r2 = _cli(tmp_path, f"input_dir={d}", f"output_dir={out}", "size=[256,128]", "reencode=false")
    assert r2.returncode != 0 and "needs input_dir and size=null" in r2.stderr


@pytest.mark.parametrize("preset", ["erased_flash", "truncated", "sector_loss"])
def test_run_records_lost_sectors_and_truncation(tmp_path, input_dir, preset):
    from src.data.corrupted_folder import run

    corruptor = Corruptor.from_preset(preset, sector_size=512, sector_loss_run=2)
    summary = run(corruptor, input_dir, tmp_path / "out", size=(512, 256), progress=False)
    assert summary.done == 2
    for meta_path in summary.metas:
        meta = json.loads(meta_path.read_text())
        clean = (tmp_path / "out" / meta["files"]["clean"]).read_bytes()
        (var,) = meta["variants"]
        data = (tmp_path / "out" / var["path"]).read_bytes()
        assert corruptor.apply(clean, np.array(var["positions"]).reshape(-1, 3), var["lost_sectors"],
                               var["truncated_at"]) == data  # fmt: skip
        if preset == "truncated":
            assert len(data) == var["truncated_at"] < len(clean)
        else:
            assert var["lost_sectors"] and len(data) == len(clean)
