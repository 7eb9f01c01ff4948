"""src.eval: the paper's table (methods x BER x scale) on a tiny run, with an exported generator."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
import numpy as np
from PIL import Image
from test_configs import compose_config

from src.eval import evaluate
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
    pictures = sorted((out / "images").glob("*.png"))
    assert len(pictures) == 2  # first image of each BER
    w, h = Image.open(pictures[0]).size
    assert w == 5 * 384 + 4 * 6 and h == 192 + 28  # pillow | robust | SCA | model | GT, enlarged x3


def test_markdown_table_means_per_image() -> None:
    rows = [
        {"image": f"i{k}", "seed": 0, "ber": 1e-5, "method": "m", "width": 8, "height": 4,
         "psnr_y": v, "ssim_y": 0.5, "psnr_rgb": v - 1, "ssim_rgb": 0.4, "flips": flips}
        for k, (v, flips) in enumerate(((30.0, 2), (40.0, 5), (float("inf"), 1), (float("inf"), 0)))
    ]  # fmt: skip
    table = markdown_table(rows, [1e-5], [(8, 4)])
    # an exact restoration of a corrupted file counts as 100 dB; a file with no flip is left out
    assert "| m | 56.67 / 0.5000 |" in table
    assert "| m | 56.00 / 0.4000 |" in table  # RGB: (29 + 39 + 100) / 3
    assert "1e-05: 3" in table and "1 file(s) that drew no bit flip left out" in table


def test_pillow_view_of_garbage_is_grey() -> None:
    grey = pillow_view(b"\xff\xd8\xff\xdbnot really a jpeg", (32, 16))
    assert grey.shape == (16, 32, 3) and np.all(grey == 128)
