"""The paper's table: ``python -m src.eval [ckpt_path=CKPT] [data=cityscapes data.root=...]``.

For each test image and each BER of ``bers``: corrupt at ``data.corruption_size`` (the paper: 2048x1024),
decode once, then score at every scale of ``scales`` (outputs and ground truth bicubic-downscaled, as the
paper's 1024x512 and 512x256 benchmarks were made):

- ``pillow``: what a standard decoder shows (Pillow with truncated images allowed; grey where it gives up),
- ``robust``: the robust decode, clipped,
- ``sca_<method>``: each SCA variant of ``sca_methods``,
- ``thumbnail``: the thumbnail alone, bicubic-upsampled to the scale,
- ``model``: GCA on the ``sca`` group's output at that scale, when ``ckpt_path`` is given.

Writes (atomically) ``metrics.csv`` (one row per image x BER x seed x scale x method), ``table.md`` (per-image
means: Y-PSNR / Y-SSIM in the paper's protocol, then RGB PSNR / SSIM) and side-by-side PNGs
(pillow | robust | SCA | model | GT at the smallest scale) under ``output_dir``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.utils.hydra_utils import extras, set_project_root, task_wrapper

log = logging.getLogger(__name__)
set_project_root()

CSV_FIELDS = ("image", "ber", "seed", "scale", "width", "height", "method", "psnr_y", "ssim_y",
              "ssim_y_paper", "psnr_rgb", "ssim_rgb", "psnrb_y", "flips")  # fmt: skip


def pillow_view(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3): what Pillow shows of a corrupted JPEG with truncated images allowed (it paints grey
    where it gives up); a uniform grey image if it raises."""
    from PIL import Image, ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
        if rgb.shape[1::-1] != tuple(size):
            raise ValueError(f"Pillow decoded {rgb.shape[1]}x{rgb.shape[0]}, expected {size}")
        return rgb
    except Exception as exc:  # Pillow may raise on spurious markers: that is the "standard decoder" result
        log.debug("Pillow failed on a corrupted file: %s", exc)
        return np.full((size[1], size[0], 3), 128, np.uint8)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def eval_seed(base: int, image_index: int, ber_index: int, k: int) -> int:
    """Corruption seed of (image, BER, repetition): fixed by the base seed, independent of the method."""
    ss = np.random.SeedSequence([int(base) & 0xFFFFFFFF, 3, int(image_index), int(ber_index), int(k)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """uint8 (H + 14, sum W + gaps, 3): the images in a row with a label strip above each."""
    from PIL import Image, ImageDraw

    h = max(im.shape[0] for im in images)
    gap, strip = 4, 14
    width = sum(im.shape[1] for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, h + strip), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for im, label in zip(images, labels, strict=True):
        canvas.paste(Image.fromarray(im), (x, strip))
        draw.text((x + 2, 1), label, fill=(0, 0, 0))
        x += im.shape[1] + gap
    return np.asarray(canvas)


PSNR_CAP = 100.0  # dB: an exact restoration counts as 100 dB in the means (as src.metrics.tensor does)


def markdown_table(
    rows: list[dict[str, Any]], bers: Sequence[float], scales: Sequence[tuple[int, int]]
) -> str:
    """Per-image means by BER, method and scale: Y-PSNR / Y-SSIM (paper protocol) and RGB PSNR / SSIM.

    Files that drew no bit flip (possible for small files at low BER) are left out of the means, so every
    method is averaged over the same corrupted files; a per-image PSNR of inf counts as ``PSNR_CAP``.
    """
    corrupted = [r for r in rows if int(r.get("flips", 1)) > 0]
    n_clean = len({(r["image"], r["seed"], r["ber"]) for r in rows}) - len(
        {(r["image"], r["seed"], r["ber"]) for r in corrupted}
    )
    groups: dict[tuple[float, str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    methods: list[str] = []
    for r in corrupted:
        if r["method"] not in methods:
            methods.append(r["method"])
        for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            groups[(r["ber"], r["method"], r["width"])][key].append(r[key])

    def mean(values: list[float]) -> float:
        return float(np.mean(np.minimum(np.asarray(values, dtype=np.float64), PSNR_CAP)))

    per_ber = defaultdict(set)
    for r in corrupted:
        per_ber[r["ber"]].add((r["image"], r["seed"]))
    lines = [
        "# Restoration of bitstream-corrupted JPEGs",
        "",
        f"Corrupted files per BER: {', '.join(f'{b:g}: {len(per_ber[b])}' for b in bers)} ({n_clean} "
        "file(s) that drew no bit flip left out). "
        "Per-image means. Y = BT.601 studio luma of uint8 RGB (the paper's protocol: rounded, peak 255, no "
        f"border crop); SSIM = 2-D Gaussian (sigma 1.5); a PSNR of inf counts as {PSNR_CAP:g} dB.",
    ]
    for title, (a, b) in (("Y-PSNR (dB) / Y-SSIM", ("psnr_y", "ssim_y")),
                          ("RGB PSNR (dB) / RGB SSIM", ("psnr_rgb", "ssim_rgb"))):  # fmt: skip
        for ber in bers:
            lines += ["", f"## BER {ber:g}: {title}", ""]
            lines.append("| method | " + " | ".join(f"{w}x{h}" for w, h in scales) + " |")
            lines.append("|---|" + "---|" * len(scales))
            for m in methods:
                cells = []
                for w, _h in scales:
                    g = groups.get((ber, m, w))
                    cells.append(f"{mean(g[a]):.2f} / {mean(g[b]):.4f}" if g else "-")
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The rows as CSV (atomic)."""
    from src.utils import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def sca_options(method: str) -> dict[str, Any]:
    """The options of SCA ``method`` as tuned in ``conf/sca/<method>.yaml`` (just the method if none)."""
    from src.utils.hydra_utils import CONFIG_DIR

    path = CONFIG_DIR / "sca" / f"{method}.yaml"
    if not path.is_file():
        return {"method": method}
    options = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return {**{k: v for k, v in options.items() if not str(k).startswith("_")}, "method": method}


def evaluate_file(
    photo: np.ndarray,
    corruptor: Any,
    seed: int,
    decoder_options: Mapping[str, Any],
    sca_methods: Sequence[str],
    model_sca: Mapping[str, Any],
    scales: Sequence[tuple[int, int]],
    restorer: Any = None,
    size_multiple: int = 1,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], int]:
    """Score every method on one corrupted version of ``photo`` (uint8 at the corruption size).

    Returns (rows without image / BER fields, outputs at the smallest scale for the side-by-side picture,
    number of flipped bits)."""
    from src.data.pipeline import decode_jpeg_rgb, decode_thumbnail, to_uint8
    from src.data.transforms import resize_float, resize_uint8
    from src.jpeg import decode
    from src.metrics import all_metrics
    from src.sca import compensate

    sample = corruptor.corrupt(photo, seed)
    decoded = decode(sample.corrupted_jpeg, **dict(decoder_options))
    full = (decoded.width, decoded.height)
    thumb = decode_thumbnail(decoded.thumbnail)
    gt_full = decode_jpeg_rgb(sample.clean_jpeg)
    outputs: dict[str, np.ndarray] = {
        "pillow": pillow_view(sample.corrupted_jpeg, full),
        "robust": decoded.to_rgb(clip=True),
    }
    comps: dict[str, Any] = {}
    for m in sca_methods:
        comps[m] = compensate(decoded, thumb, **sca_options(m))
        outputs[f"sca_{m}"] = to_uint8(np.clip(comps[m].rgb, 0, 1))
    model_method = str(model_sca.get("method", "dc_thumb"))
    if restorer is not None and (model_method not in comps or len(model_sca) > 1):
        comps["_model"] = compensate(decoded, thumb, **dict(model_sca))
    model_comp = comps.get("_model", comps.get(model_method))
    rows: list[dict[str, Any]] = []
    smallest: dict[str, np.ndarray] = {}
    for w, h in scales:
        size = (w, h)
        gt = resize_uint8(gt_full, size)
        scaled = {name: resize_uint8(img, size) for name, img in outputs.items()}
        if thumb is not None:
            scaled["thumbnail"] = resize_uint8(thumb, size)
        if restorer is not None and model_comp is not None:
            guide = scaled.get("thumbnail")
            if guide is None:
                guide = np.zeros((h, w, 3), np.uint8)
            sca_in = np.clip(resize_float(model_comp.rgb, size), 0, 1).astype(np.float32)
            mask = np.clip(resize_float(model_comp.trust, size, resample="box"), 0, 1).astype(np.float32)
            scaled["model"] = restorer(sca_in, guide, mask)
        for name, img in scaled.items():
            rows.append({"seed": seed, "scale": f"{w}x{h}", "width": w, "height": h, "method": name,
                         "flips": sample.n_flips, **all_metrics(img, gt)})  # fmt: skip
        if (w, h) == min(scales, key=lambda s: s[0] * s[1]):
            smallest = {**scaled, "gt": gt}
    return rows, smallest, sample.n_flips


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Build the table; returns {"rows": [...], "output_dir": str, "table": markdown}."""
    from src.data.pipeline import prepare_photo
    from src.data.sources import list_split, load_item
    from src.data.transforms import as_size, scaled_size
    from src.restore import load_restorer
    from src.utils import atomic_write_bytes, atomic_write_text

    data = cfg.data
    items = list_split(data.source, cfg.split, data.get("root"), _container(data.get("splits")),
                       _container(data.get("holdout")))  # fmt: skip
    if cfg.get("max_images"):
        items = items[: int(cfg.max_images)]
    corruption_size = as_size(_container(data.corruption_size), "data.corruption_size")
    if corruption_size is None:
        raise ValueError("src.eval needs data.corruption_size (all images are corrupted at one size)")
    scales = [scaled_size(corruption_size, float(s)) for s in cfg.scales]
    restorer = load_restorer(cfg.ckpt_path, cfg.get("device")) if cfg.get("ckpt_path") else None
    decoder_options = _container(cfg.get("decoder")) or {}
    model_sca = _container(cfg.get("sca")) or {"method": "dc_thumb"}
    if restorer is not None and restorer.sca_options:
        model_sca = restorer.sca_options  # the model's input must be made as in its training
    out_dir = Path(cfg.output_dir)
    bers = [float(b) for b in cfg.bers]
    rows: list[dict[str, Any]] = []
    for bi, ber in enumerate(bers):
        corruptor = hydra.utils.instantiate(cfg.corruption, ber=ber)
        for ii, item in enumerate(items):
            try:
                photo = prepare_photo(load_item(item, corruption_size), corruption_size)
            except (OSError, ValueError) as exc:  # an unreadable file in the dataset: skip, say so
                log.warning("skipping unreadable image %s: %s", item.path or item.key, exc)
                continue
            for k in range(int(cfg.seeds_per_image)):
                seed = eval_seed(cfg.seed, ii, bi, k)
                file_rows, pictures, flips = evaluate_file(
                    photo, corruptor, seed, decoder_options, list(cfg.sca_methods), model_sca, scales,
                    restorer, restorer.size_multiple if restorer else 1,
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
                    stem = Path(item.key).stem
                    atomic_write_bytes(out_dir / "images" / f"{stem}_ber{ber:g}_s{seed}.png", _png(picture))
        write_csv(out_dir / "metrics.csv", rows)  # after every BER: a partial table survives interruptions
    table = markdown_table(rows, bers, scales)
    atomic_write_text(out_dir / "table.md", table)
    print(table)
    log.info("wrote %s and %s", out_dir / "metrics.csv", out_dir / "table.md")
    return {"rows": rows, "output_dir": str(out_dir), "table": table}


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    extras(cfg)
    evaluate(cfg)


if __name__ == "__main__":
    main()
