"""The paper's table: ``python -m src.eval [ckpt_path=CKPT] [data=cityscapes data.root=...]``, or on a folder
made by ``src.corrupt``: ``python -m src.eval bench_dir=DIR [ckpt_path=CKPT]``.

Two sources of corrupted files:

- **a dataset split** (default): for each image of ``split`` of the ``data`` group and each BER of ``bers``,
  corrupt at ``data.corruption_size`` (the paper: 2048x1024) with the ``corruption`` group,
  ``seeds_per_image`` times (seeds fixed by ``seed``).
- **a benchmark folder** (``bench_dir=DIR``, made by ``python -m src.corrupt``): every corrupted variant its
  ``meta/*.json`` lists (:func:`src.data.corrupted_folder.load_benchmark`), scored against its ``gt/`` PNG
  (the decoded clean file), with the BER, seed and flips the record gives; ``data``, ``split``, ``bers``,
  ``corruption`` and ``seeds_per_image`` are not used.

Each file is decoded once, then scored at every factor of ``scales`` (of its own size;
:func:`src.restoration.scoring.score_file`): Pillow, the robust decode, each SCA preset of ``sca_methods``,
the thumbnail alone and, with ``ckpt_path``, the model (its input made as in training, with the decoder /
SCA options of its run config when known, else the ``decoder`` / ``sca`` groups). What is scored (which split
of which source and how it was cut, or which folder) is logged first and written at the top of ``table.md``.

Writes (atomically) ``metrics.csv`` (one row per image x BER x seed x scale x method), ``table.md`` (per-image
means: Y-PSNR / Y-SSIM in the paper's protocol, then RGB PSNR / SSIM) and, for the first ``save_images``
images of every BER, ``images/<name>_ber<BER>_s<seed>.png``: pillow | robust | SCA | thumbnail | model |
ground truth at the file's own (largest scored) size, cut to ``picture_crop`` where the restoration (the
model, else SCA) is worst, each panel labelled with its Y-PSNR. A progress bar runs over the files
(``progress=false`` hides it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from src.data.corrupted_folder import load_benchmark
from src.data.errors import DatasetError
from src.data.pipeline import prepare_photo
from src.data.sources import SPLITS, list_split, load_item
from src.data.transforms import as_size, scaled_size
from src.restoration import inference_options, load_restorer, model_options
from src.restoration.kernels import ANNOUNCE, warm_up
from src.restoration.pictures import eval_picture
from src.restoration.scoring import csv_text, eval_seed, markdown_table, score_file
from src.sca.presets import sca_preset
from src.utils import atomic_write_text
from src.utils.cli import cli_errors
from src.utils.hydra_utils import extras, set_project_root, task_wrapper
from src.utils.images import ImageLoadError, decode_jpeg_rgb, load_rgb, write_png

log = logging.getLogger(__name__)
set_project_root()


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


@dataclass
class Case:
    """One corrupted file to score: ``key`` (image name), ``ber``, ``seed``, the JPEG bytes ``data``, the
    ground truth uint8 (H, W, 3) ``gt``, ``flips`` (bit flips), ``damaged`` (bytes differ from the clean
    file), ``picture`` (whether its picture is saved)."""

    key: str
    ber: float
    seed: int
    data: bytes
    gt: np.ndarray
    flips: int
    damaged: bool
    picture: bool


def describe_split(data: DictConfig, split: str, items: list, total: int) -> str:
    """What a dataset run scores, in words: the split, the source, how the split was made (bundled names,
    a sub-folder, or ``data.holdout``'s cut of the sorted files), and how many images (``total`` before
    ``max_images``)."""
    source, root = data.source, data.get("root")
    splits, holdout = _plain(data.get("splits")) or {}, _plain(data.get("holdout"))
    capped = f" (the first {len(items)} of {total}: max_images)" if len(items) < total else ""
    if source == "samples":
        names = ", ".join(i.key for i in items)
        return f"split '{split}' of data=samples (scikit-image's bundled photos): {names}{capped}"
    if splits.get(split):
        folder = str(Path(str(root)) / str(splits[split]))
        return f"split '{split}' of data.source={source}: the sub-folder {folder!r}, {total} images{capped}"
    sizes = {s: len(list_split(source, s, root, splits or None, holdout)) for s in SPLITS}
    n_all = sum(sizes.values())
    first = {"train": 0, "val": sizes["train"], "test": sizes["train"] + sizes["val"]}[split]
    where = f" at {str(root)!r}" if root else ""
    return (
        f"split '{split}' of data.source={source}{where}: images {first + 1}-{first + sizes[split]} of its "
        f"{n_all} sorted files, the holdout cut (data.holdout={holdout or {'val': 0.1, 'test': 0.1}}: "
        f"train {sizes['train']}, val {sizes['val']}, test {sizes['test']}; data.splits unset){capped}"
    )


def dataset_cases(cfg: DictConfig) -> tuple[Iterator[Case], int, list[float], str, Any]:
    """(cases, their number, BERs, what is scored, corruption size) of a dataset split (the default
    source)."""
    data = cfg.data
    items = list_split(data.source, cfg.split, data.get("root"), _plain(data.get("splits")),
                       _plain(data.get("holdout")))  # fmt: skip
    total = len(items)
    if cfg.get("max_images"):
        items = items[: int(cfg.max_images)]
    scored = describe_split(data, str(cfg.split), items, total)
    corruption_size = as_size(_plain(data.corruption_size), "data.corruption_size")
    if corruption_size is None:
        raise DatasetError("src.eval needs data.corruption_size (all images are corrupted at one size)")
    scored += f"; corrupted at {corruption_size[0]}x{corruption_size[1]} by the corruption group"
    bers = [float(b) for b in cfg.bers]
    n_seeds = int(cfg.seeds_per_image)

    def cases() -> Iterator[Case]:
        for bi, ber in enumerate(bers):
            corruptor = hydra.utils.instantiate(cfg.corruption, ber=ber)
            for ii, item in enumerate(items):
                try:
                    photo = prepare_photo(load_item(item, corruption_size), corruption_size)
                except (OSError, ImageLoadError) as exc:  # an unreadable file in the dataset: skip, say so
                    log.warning("skipping unreadable image %s: %s", item.path or item.key, exc)
                    continue
                for k in range(n_seeds):
                    seed = eval_seed(cfg.seed, ii, bi, k)
                    sample = corruptor.corrupt(photo, seed)
                    yield Case(item.key, ber, seed, sample.corrupted_jpeg, decode_jpeg_rgb(sample.clean_jpeg),
                               sample.n_flips, sample.n_flips > 0 or sample.differing_bytes() > 0,
                               ii < int(cfg.save_images) and k == 0)  # fmt: skip

    return cases(), len(items) * len(bers) * n_seeds, bers, scored, corruption_size


def folder_cases(cfg: DictConfig) -> tuple[Iterator[Case], int, list[float], str]:
    """(cases, their number, BERs, what is scored) of the ``src.corrupt`` folder ``cfg.bench_dir``: every
    corrupted variant of every record (the first ``max_images`` records when set)."""
    root = Path(str(cfg.bench_dir)).expanduser()
    metas = load_benchmark(root)
    total = len(metas)
    if cfg.get("max_images"):
        metas = metas[: int(cfg.max_images)]
    n_variants = sum(len(m["variants"]) for m in metas)
    bers = sorted({float(v.get("ber") or 0.0) for m in metas for v in m["variants"]})
    capped = f" (the first {len(metas)} of {total}: max_images)" if len(metas) < total else ""
    scored = (f"every corrupted file of the src.corrupt folder {str(root)!r}: {n_variants} file(s) of "
              f"{len(metas)} image(s){capped}, against its gt/ PNGs")  # fmt: skip
    shown: dict[float, int] = {}

    def cases() -> Iterator[Case]:
        for meta in metas:
            gt = load_rgb(root / meta["files"]["gt"])
            for var in meta["variants"]:
                ber = float(var.get("ber") or 0.0)
                picture = var.get("variant", 0) == 0 and shown.get(ber, 0) < int(cfg.save_images)
                if picture:
                    shown[ber] = shown.get(ber, 0) + 1
                damaged = int(var.get("n_flips", 0)) > 0 or int(var.get("differing_bytes", 1)) > 0
                data = (root / var["path"]).read_bytes()
                yield Case(meta["name"], ber, int(var["seed"]), data, gt, int(var.get("n_flips", 0)), damaged,
                           picture)  # fmt: skip

    return cases(), n_variants, bers, scored


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Build the table; returns {"rows": [...], "output_dir": str, "table": markdown, "scored": str}."""
    factors = [float(s) for s in cfg.scales]
    if cfg.get("bench_dir"):
        cases, n_cases, bers, scored = folder_cases(cfg)
    else:
        cases, n_cases, bers, scored, _size = dataset_cases(cfg)
    log.info("scoring %s", scored)
    restorer = load_restorer(cfg.ckpt_path, **inference_options(cfg)) if cfg.get("ckpt_path") else None
    decoder = _plain(cfg.get("decoder")) or {}
    sca = _plain(cfg.get("sca")) or sca_preset("dc_thumb")
    model_decoder, model_sca = model_options(restorer, decoder, sca)
    out_dir = Path(cfg.output_dir)
    crop = as_size(_plain(cfg.get("picture_crop")), "picture_crop")
    names = ["pillow", "robust", f"sca_{model_sca.get('method', 'dc_thumb')}", "thumbnail", "model", "gt"]
    print(ANNOUNCE, flush=True)
    log.info("kernels ready (%.1f s)", warm_up(decoder, sca))
    rows: list[dict[str, Any]] = []
    last_ber = None
    bar = tqdm(cases, total=n_cases, desc="eval", unit="file", file=sys.stderr,
               disable=not cfg.get("progress", True))  # fmt: skip
    for case in bar:
        if last_ber is not None and case.ber != last_ber:  # a partial table survives interruptions
            atomic_write_text(out_dir / "metrics.csv", csv_text(rows))
        last_ber = case.ber
        full = case.gt.shape[1::-1]
        scales = [scaled_size(full, f) for f in factors]
        file_rows, pictures = score_file(case.data, case.gt, case.seed, case.flips, case.damaged, decoder,
                                         list(cfg.sca_methods), scales, factors, restorer, model_decoder,
                                         model_sca)  # fmt: skip
        for r in file_rows:
            r.update(image=case.key, ber=case.ber)
        rows += file_rows
        first = {r["method"]: r["psnr_y"] for r in file_rows if r["factor"] == factors[0]}
        log.info("BER %g, %s (seed %d, %d flips): %s", case.ber, case.key, case.seed, case.flips,
                 ", ".join(f"{m} {v:.2f}" for m, v in first.items()))  # fmt: skip
        if case.picture:
            largest = max(scales, key=lambda s: s[0] * s[1])
            psnr = {r["method"]: r["psnr_y"] for r in file_rows if (r["width"], r["height"]) == largest}
            shown = [n for n in names if n in pictures]
            title = f"{case.key}, BER {case.ber:g}, seed {case.seed}, {case.flips} flips"
            focus = next((n for n in ("model", names[2]) if n in pictures), "robust")  # the restoration
            picture = eval_picture(pictures, psnr, shown, crop, title, focus)
            stem = Path(case.key).with_suffix("").as_posix().replace("/", "_")
            write_png(out_dir / "images" / f"{stem}_ber{case.ber:g}_s{case.seed}.png", picture)
    atomic_write_text(out_dir / "metrics.csv", csv_text(rows))
    table = markdown_table(rows, bers, factors, scored)
    atomic_write_text(out_dir / "table.md", table)
    print(table)
    log.info("scored %s", scored)
    log.info("wrote %s and %s", out_dir / "metrics.csv", out_dir / "table.md")
    return {"rows": rows, "output_dir": str(out_dir), "table": table, "scored": scored}


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: a project error ends the program with a one-line message and exit code 1."""
    extras(cfg)
    with cli_errors("eval"):
        evaluate(cfg)


if __name__ == "__main__":
    main()
