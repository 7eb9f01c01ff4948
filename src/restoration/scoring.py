"""The paper's table, per file and in all: what ``src.eval`` computes.

:func:`evaluate_file` corrupts one photo at the corruption size, decodes it once and scores every method at
every scale (outputs and ground truth bicubic-downscaled, as the paper's 1024x512 and 512x256 benchmarks were
made): ``pillow`` (what a standard decoder shows), ``robust`` (the robust decode, clipped), ``sca_<method>``
(the presets of ``src.sca.presets``), ``thumbnail`` (the header thumbnail upsampled) and ``model`` (the
:class:`src.restoration.Restorer` on :func:`src.restoration.model_input` at that scale: the input it was
trained on). :func:`markdown_table` and :func:`csv_text` turn the rows into ``table.md`` / ``metrics.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from src.jpeg import decode
from src.metrics import all_metrics
from src.restoration.inputs import ScaResult, model_input, prepare, sca_stage
from src.restoration.model import Restorer
from src.restoration.pictures import pillow_view
from src.sca.presets import sca_preset
from src.utils.images import Size, decode_jpeg_rgb, decode_thumbnail, resize_uint8
from src.utils.seeds import derive_seed

log = logging.getLogger(__name__)

__all__ = ["csv_text", "eval_seed", "evaluate_file", "markdown_table", "pillow_view"]

CSV_FIELDS = ("image", "ber", "seed", "scale", "width", "height", "method", "psnr_y", "ssim_y",
              "ssim_y_paper", "psnr_rgb", "ssim_rgb", "psnrb_y", "flips")  # fmt: skip
PSNR_CAP = 100.0  # dB: an exact restoration counts as 100 dB in the means (as src.metrics.tensor does)


def eval_seed(base: int, image_index: int, ber_index: int, k: int) -> int:
    """Corruption seed of (image, BER, repetition): fixed by the base seed, independent of the method."""
    return derive_seed(base, 3, image_index, ber_index, k)


def _model_result(
    data: bytes,
    decoded: Any,
    sca: Mapping[str, ScaResult],
    decoder_options: Mapping[str, Any],
    model_decoder: Mapping[str, Any],
    model_sca: Mapping[str, Any],
) -> ScaResult:
    """The SCA result the model's input is made from: a row's when the decoder and SCA options are the same,
    else a decode / SCA of its own."""
    if dict(model_decoder) != dict(decoder_options):
        return prepare(data, model_decoder, model_sca)
    for method, result in sca.items():
        if sca_preset(method) == dict(model_sca):
            return result
    return sca_stage(decoded, model_sca)


def evaluate_file(
    photo: np.ndarray,
    corruptor: Any,
    seed: int,
    decoder_options: Mapping[str, Any],
    sca_methods: Sequence[str],
    scales: Sequence[Size],
    restorer: Restorer | None = None,
    model_decoder: Mapping[str, Any] | None = None,
    model_sca: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], int]:
    """Score every method on one corrupted version of ``photo`` (uint8 at the corruption size).

    ``decoder_options``: the decode the rows are made from; ``sca_methods``: the SCA rows (code presets).
    ``restorer``: the model row, its input made with ``model_decoder`` / ``model_sca`` (default: the rows'
    decoder, SCA ``dc_thumb``). Returns (rows without image / BER fields, outputs at the smallest scale for
    the side-by-side picture, number of flipped bits)."""
    sample = corruptor.corrupt(photo, seed)
    data = sample.corrupted_jpeg
    decoded = decode(data, **dict(decoder_options))
    full = (decoded.width, decoded.height)
    gt_full = decode_jpeg_rgb(sample.clean_jpeg)
    outputs: dict[str, np.ndarray] = {"pillow": pillow_view(data, full), "robust": decoded.to_rgb(clip=True)}
    sca = {m: sca_stage(decoded, sca_preset(m)) for m in sca_methods}
    outputs.update({f"sca_{m}": r.sca8 for m, r in sca.items()})
    thumb = decode_thumbnail(decoded.thumbnail)
    model = None
    if restorer is not None:
        model_decoder = decoder_options if model_decoder is None else model_decoder
        model_sca = sca_preset("dc_thumb") if model_sca is None else model_sca
        model = _model_result(data, decoded, sca, decoder_options, model_decoder, model_sca)
    rows: list[dict[str, Any]] = []
    smallest: dict[str, np.ndarray] = {}
    for w, h in scales:
        size = (w, h)
        gt = resize_uint8(gt_full, size)
        scaled = {name: resize_uint8(img, size) for name, img in outputs.items()}
        if thumb is not None:
            scaled["thumbnail"] = resize_uint8(thumb, size)
        if restorer is not None and model is not None:
            scaled["model"] = restorer.run(model_input(model, size))
        for name, img in scaled.items():
            rows.append({"seed": seed, "scale": f"{w}x{h}", "width": w, "height": h, "method": name,
                         "flips": sample.n_flips, **all_metrics(img, gt)})  # fmt: skip
        if (w, h) == min(scales, key=lambda s: s[0] * s[1]):
            smallest = {**scaled, "gt": gt}
    return rows, smallest, sample.n_flips


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


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text (:data:`CSV_FIELDS`; floats with 6 significant digits)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
