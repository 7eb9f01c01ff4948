"""The paper's table: ``python -m src.eval [ckpt_path=CKPT] [data=cityscapes data.root=...]``.

For each test image and each BER of ``bers``: corrupt at ``data.corruption_size`` (the paper: 2048x1024),
decode once, then score at every scale of ``scales`` (:func:`src.restoration.scoring.evaluate_file`): Pillow,
the robust decode, each SCA preset of ``sca_methods``, the thumbnail alone and, with ``ckpt_path``, the model
(its input made as in training, with the decoder / SCA options of its run config when known, else the
``decoder`` / ``sca`` groups).

Writes (atomically) ``metrics.csv`` (one row per image x BER x seed x scale x method), ``table.md`` (per-image
means: Y-PSNR / Y-SSIM in the paper's protocol, then RGB PSNR / SSIM) and side-by-side PNGs
(pillow | robust | SCA | model | GT at the smallest scale) under ``output_dir``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.data.errors import DatasetError
from src.data.pipeline import prepare_photo
from src.data.sources import list_split, load_item
from src.data.transforms import as_size, scaled_size
from src.restoration import inference_options, load_restorer, model_options
from src.restoration.pictures import side_by_side
from src.restoration.scoring import csv_text, eval_seed, evaluate_file, markdown_table
from src.sca.presets import sca_preset
from src.utils import atomic_write_text
from src.utils.cli import cli_errors
from src.utils.hydra_utils import extras, set_project_root, task_wrapper
from src.utils.images import ImageLoadError, write_png

log = logging.getLogger(__name__)
set_project_root()


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Build the table; returns {"rows": [...], "output_dir": str, "table": markdown}."""
    data = cfg.data
    items = list_split(data.source, cfg.split, data.get("root"), _plain(data.get("splits")),
                       _plain(data.get("holdout")))  # fmt: skip
    if cfg.get("max_images"):
        items = items[: int(cfg.max_images)]
    corruption_size = as_size(_plain(data.corruption_size), "data.corruption_size")
    if corruption_size is None:
        raise DatasetError("src.eval needs data.corruption_size (all images are corrupted at one size)")
    scales = [scaled_size(corruption_size, float(s)) for s in cfg.scales]
    restorer = load_restorer(cfg.ckpt_path, **inference_options(cfg)) if cfg.get("ckpt_path") else None
    decoder = _plain(cfg.get("decoder")) or {}
    sca = _plain(cfg.get("sca")) or sca_preset("dc_thumb")
    model_decoder, model_sca = model_options(restorer, decoder, sca)
    out_dir = Path(cfg.output_dir)
    bers = [float(b) for b in cfg.bers]
    rows: list[dict[str, Any]] = []
    for bi, ber in enumerate(bers):
        corruptor = hydra.utils.instantiate(cfg.corruption, ber=ber)
        for ii, item in enumerate(items):
            try:
                photo = prepare_photo(load_item(item, corruption_size), corruption_size)
            except (OSError, ImageLoadError) as exc:  # an unreadable file in the dataset: skip, say so
                log.warning("skipping unreadable image %s: %s", item.path or item.key, exc)
                continue
            for k in range(int(cfg.seeds_per_image)):
                seed = eval_seed(cfg.seed, ii, bi, k)
                file_rows, pictures, flips = evaluate_file(
                    photo, corruptor, seed, decoder, list(cfg.sca_methods), scales, restorer, model_decoder,
                    model_sca,
                )  # fmt: skip
                for r in file_rows:
                    r.update(image=item.key, ber=ber)
                rows += file_rows
                best = {r["method"]: r["psnr_y"] for r in file_rows if r["width"] == scales[0][0]}
                log.info("BER %g, %s (seed %d, %d flips): %s", ber, item.key, seed, flips,
                         ", ".join(f"{m} {v:.2f}" for m, v in best.items()))  # fmt: skip
                if ii < int(cfg.save_images) and k == 0:
                    names = ["pillow", "robust", f"sca_{model_sca.get('method', 'dc_thumb')}", "model", "gt"]
                    shown = [n for n in names if n in pictures]
                    picture = side_by_side([pictures[n] for n in shown], shown)
                    write_png(out_dir / "images" / f"{Path(item.key).stem}_ber{ber:g}_s{seed}.png", picture)
        # after every BER: a partial table survives interruptions
        atomic_write_text(out_dir / "metrics.csv", csv_text(rows))
    table = markdown_table(rows, bers, scales)
    atomic_write_text(out_dir / "table.md", table)
    print(table)
    log.info("wrote %s and %s", out_dir / "metrics.csv", out_dir / "table.md")
    return {"rows": rows, "output_dir": str(out_dir), "table": table}


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: a project error ends the program with a one-line message and exit code 1."""
    extras(cfg)
    with cli_errors("eval"):
        evaluate(cfg)


if __name__ == "__main__":
    main()
