"""src.eval: the paper's table (methods x BER x scale) on a tiny run, with an exported generator."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
import numpy as np
import pytest
from PIL import Image
from test_configs import compose_config

from src.eval import evaluate
from src.restoration.pictures import GAP
from src.restoration.scoring import markdown_table, pillow_view


def test_table_csv_and_pictures(tmp_path: Path) -> None:
    model = hydra.utils.instantiate(compose_config("train", ["model=gca_refine_small"], tmp_path / "t").model)
    gen = model.export_generator(tmp_path / "gen.pt")
    cfg = compose_config(
        "eval",
        [
            f"ckpt_path={gen}", "device=cpu", "data.corruption_size=[256,128]", "data.splits.test=[coffee]",
            "bers=[1e-6,3e-4]", "scales=[1.0,0.5]", "save_images=1",
        ],
        tmp_path / "run",
    )  # fmt: skip
    result = evaluate(cfg)
    out = Path(result["output_dir"])
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    methods = ["pillow", "robust", "sca_paper", "sca_dc", "sca_dc_thumb", "thumbnail", "model"]
    assert len(rows) == 2 * 2 * len(methods)  # 1 image x 2 BERs x 2 scales x methods
    assert sorted({r["method"] for r in rows}) == sorted(methods)
    assert {r["scale"] for r in rows} == {"256x128", "128x64"}

    def value(ber: str, scale: str, method: str) -> float:
        (row,) = [r for r in rows if r["ber"] == ber and r["scale"] == scale and r["method"] == method]
        return float(row["psnr_y"])

    clean_flips = {r["flips"] for r in rows if r["ber"] == "1e-06"}
    hit_flips = {int(r["flips"]) for r in rows if r["ber"] == "0.0003"}
    assert min(hit_flips) > 0
    if clean_flips == {"0"}:  # no error: every decoder shows the clean file
        assert value("1e-06", "256x128", "robust") > 40 and value("1e-06", "256x128", "pillow") > 40
    for scale in ("256x128", "128x64"):
        assert value("0.0003", scale, "sca_dc_thumb") > value("0.0003", scale, "robust") + 3
    # the 160x80 thumbnail alone, upsampled: blurry but faithful at the corruption scale
    assert 20 < value("0.0003", "256x128", "thumbnail") < 40
    table = (out / "table.md").read_text()
    assert "## BER 0.0003: Y-PSNR (dB) / Y-SSIM" in table and "| sca_dc_thumb |" in table
    assert "| method | 256x128 | 128x64 |" in table
    assert (
        "Scored: split 'test' of data=samples (scikit-image's bundled photos): coffee; corrupted at 256x128"
        in table
    )
    pictures = sorted((out / "images").glob("*.png"))
    assert len(pictures) == 2  # first image of each BER
    w, h = Image.open(pictures[0]).size
    # pillow | robust | SCA | thumbnail / model | GT at the native 256x128, enlarged x2, two rows of three
    assert w == 3 * 512 + 2 * GAP and 2 * 256 < h < 2 * 256 + 200


def test_markdown_table_means_per_image() -> None:
    rows = [
        {"image": f"i{k}", "seed": 0, "ber": 1e-5, "method": "m", "scale": "8x4", "factor": 1.0, "width": 8,
         "height": 4, "psnr_y": v, "ssim_y": 0.5, "psnr_rgb": v - 1, "ssim_rgb": 0.4, "flips": flips,
         "damaged": int(flips > 0)}
        for k, (v, flips) in enumerate(((30.0, 2), (40.0, 5), (float("inf"), 1), (float("inf"), 0)))
    ]  # fmt: skip
    table = markdown_table(rows, [1e-5], [1.0])
    assert "| method | 8x4 |" in table
    # an exact restoration of a corrupted file counts as 100 dB; a file with no flip is left out
    assert "| m | 56.67 / 0.5000 |" in table
    assert "| m | 56.00 / 0.4000 |" in table  # RGB: (29 + 39 + 100) / 3
    assert "1e-05: 3" in table and "1 file(s) the corruption left intact left out" in table
    # the spread: mean, 10th percentile and the worst file of the damaged ones (i0 at 30 dB)
    assert "| 1e-05 | m | 56.67 | 32.00 | 30.00 | i0 (seed 0) |" in table


def test_pillow_view_of_garbage_is_grey() -> None:
    grey = pillow_view(b"\xff\xd8\xff\xdbnot really a jpeg", (32, 16))
    assert grey.shape == (16, 32, 3) and np.all(grey == 128)


def _find(picture: np.ndarray, panel: np.ndarray) -> bool:
    """Whether ``panel`` appears in ``picture`` at an offset (exact pixels)."""
    ph, pw = panel.shape[:2]
    for y in range(picture.shape[0] - ph + 1):
        for x in np.flatnonzero(np.all(picture[y, : picture.shape[1] - pw + 1] == panel[0, 0], axis=1)):
            if np.array_equal(picture[y : y + ph, x : x + pw], panel):
                return True
    return False


def test_eval_picture_crops_where_the_damage_is() -> None:
    from src.restoration.pictures import damage_window, eval_picture

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (512, 1024, 3), dtype=np.uint8)
    robust = gt.copy()
    robust[300:420, 700:900] = 0  # the damage, in the lower right
    images = {"robust": robust, "gt": gt}
    cw, ch = 400, 200
    picture = eval_picture(images, {"robust": 12.5}, ["robust", "gt"], (cw, ch), "t", focus="robust")
    assert picture.shape[1] == 2 * cw + GAP
    left, top = damage_window(np.abs(robust.astype(np.float32) - gt).mean(axis=2), (cw, ch))
    assert 900 - cw <= left <= 700 and 420 - ch <= top <= 300  # the window holds all the damage
    assert _find(picture, gt[top : top + ch, left : left + cw]) and _find(
        picture, robust[top : top + ch, left : left + cw]
    )
    whole = eval_picture(images, {"robust": 12.5}, ["robust", "gt"], None, "t")
    assert whole.shape[1] == 2 * 1024 + GAP and _find(whole, gt[:2])  # uncropped: the native size


def test_eval_scores_a_src_corrupt_folder(tmp_path: Path, capsys, caplog) -> None:
    """bench_dir=DIR scores every corrupted file a real `python -m src.corrupt` run made, against its gt/
    PNG, with the record's BER, seed and flips; table.md and the log say what was scored."""
    import json
    import logging
    import os
    import subprocess
    import sys

    from skimage import data

    from src.jpeg import decode
    from src.metrics import psnr_y

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(data.chelsea()).save(photos / "chelsea.png")
    Image.fromarray(data.coffee()).save(photos / "sub" / "coffee.png")
    bench = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "src.corrupt", f"input_dir={photos}", f"output_dir={bench}",
         "seeds_per_image=2", "corruption.ber=1e-4", "progress=false", f"hydra.run.dir={tmp_path / 'h'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    overrides = [f"bench_dir={bench}", "scales=[1.0,0.5]", "sca_methods=[dc_thumb]", "save_images=1"]
    cfg = compose_config("eval", overrides, tmp_path / "run")
    with caplog.at_level(logging.INFO, logger="src.eval"):
        result = evaluate(cfg)
    scored = f"every corrupted file of the src.corrupt folder {str(bench)!r}: 4 file(s) of 2 image(s)"
    assert scored in result["scored"] and f"scoring {result['scored']}" in caplog.text
    table = (Path(result["output_dir"]) / "table.md").read_text()
    assert f"Scored: {result['scored']}" in table and "## BER 0.0001: Y-PSNR" in table
    assert "| method | x1 (sizes vary) | x0.5 (sizes vary) |" in table  # 451x300 and 600x400 files
    rows = result["rows"]
    for name in ("chelsea", "sub/coffee"):
        meta = json.loads((bench / "meta" / f"{name}.json").read_text())
        gt = np.asarray(Image.open(bench / meta["files"]["gt"]).convert("RGB"))
        for var in meta["variants"]:
            (row,) = [r for r in rows if r["image"] == name and r["seed"] == var["seed"]
                      and r["method"] == "robust" and r["factor"] == 1.0]  # fmt: skip
            assert (
                row["flips"] == var["n_flips"]
                and row["ber"] == 1e-4
                and (row["width"], row["height"]) == gt.shape[1::-1]
            )
            robust = decode((bench / var["path"]).read_bytes(), strategy="paper").to_rgb()
            assert abs(row["psnr_y"] - psnr_y(robust, gt)) < 1e-6  # that file, against that ground truth
    (picture,) = sorted((Path(result["output_dir"]) / "images").glob("*.png"))
    assert picture.name.startswith("chelsea_ber0.0001_s") and Image.open(picture).size[0] == 3 * 451 + 2 * GAP
    captured = capsys.readouterr()
    assert (
        "preparing the numba decoder" in captured.out
        and "eval: 100%" in captured.err
        and "4/4" in captured.err
    )


def test_eval_says_which_holdout_it_scores(tmp_path: Path, caplog) -> None:
    import logging

    from skimage import data

    root = tmp_path / "photos"
    root.mkdir()
    base = data.astronaut()
    for k in range(10):
        Image.fromarray(np.roll(base, 37 * k, axis=1)).save(root / f"p{k:02d}.png")
    overrides = ["data=folder", f"data.root={root}", "data.holdout={val: 0.1, test: 2}", "bers=[1e-4]",
                 "data.corruption_size=[256,128]", "scales=[1.0]", "sca_methods=[dc]", "save_images=0",
                 "progress=false"]  # fmt: skip
    cfg = compose_config("eval", overrides, tmp_path / "run")
    with caplog.at_level(logging.INFO, logger="src.eval"):
        result = evaluate(cfg)
    assert sorted({r["image"] for r in result["rows"]}) == ["p08.png", "p09.png"]
    expected = (
        f"split 'test' of data.source=folder at {str(root)!r}: images 9-10 of its 10 sorted files, the "
        "holdout cut (data.holdout={'val': 0.1, 'test': 2}: train 7, val 1, test 2; data.splits unset)"
    )
    assert result["scored"].startswith(expected) and expected in caplog.text
    assert f"Scored: {expected}" in result["table"]


def test_bench_dir_that_is_no_src_corrupt_folder_is_a_clear_error(tmp_path: Path) -> None:
    from src.data.corrupted_folder import InputError

    (tmp_path / "empty").mkdir()
    for folder, message in (
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "empty", "is not a src.corrupt folder"),
    ):
        with pytest.raises(InputError, match=message):
            evaluate(compose_config("eval", [f"bench_dir={folder}"], tmp_path / "run"))
