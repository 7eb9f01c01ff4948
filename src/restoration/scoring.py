"""The paper's table, per file and in all: what ``src.eval`` computes.

:func:`evaluate_file` corrupts one photo at the corruption size and :func:`score_file` scores a corrupted
file (made here, or read from a ``src.corrupt`` folder): it decodes it once and scores every method at
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

__all__ = [
    "csv_text",
    "eval_seed",
    "evaluate_file",
    "markdown_table",
    "pillow_view",
    "score_file",
    "spread_lines",
]

CSV_FIELDS = ("image", "ber", "seed", "scale", "factor", "width", "height", "method", "psnr_y", "ssim_y",
              "ssim_y_paper", "psnr_rgb", "ssim_rgb", "psnrb_y", "flips", "damaged")  # fmt: skip
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


def score_file(
    data: bytes,
    gt_full: np.ndarray,
    seed: int,
    flips: int,
    damaged: bool,
    decoder_options: Mapping[str, Any],
    sca_methods: Sequence[str],
    scales: Sequence[Size],
    factors: Sequence[float],
    restorer: Restorer | None = None,
    model_decoder: Mapping[str, Any] | None = None,
    model_sca: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Score every method on the corrupted JPEG ``data`` against uint8 (H, W, 3) ``gt_full`` (the decoded
    clean file) at every size of ``scales`` (= ``factors`` of the file's size; both listed in the rows).

    ``seed`` / ``flips`` / ``damaged`` (bytes differ from the clean file) are written into the rows.
    ``decoder_options``: the decode the rows are made from; ``sca_methods``: the SCA rows (code presets).
    ``restorer``: the model row, its input made with ``model_decoder`` / ``model_sca`` (default: the rows'
    decoder, SCA ``dc_thumb``). Returns (rows without image / BER fields, every method's output and ``gt``
    at the largest scale, for the pictures)."""
    decoded = decode(data, **dict(decoder_options))
    full = (decoded.width, decoded.height)
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
    native: dict[str, np.ndarray] = {}
    largest = max(scales, key=lambda s: s[0] * s[1])
    for (w, h), factor in zip(scales, factors, strict=True):
        size = (w, h)
        gt = resize_uint8(gt_full, size)
        scaled = {name: resize_uint8(img, size) for name, img in outputs.items()}
        if thumb is not None:
            scaled["thumbnail"] = resize_uint8(thumb, size)
        if restorer is not None and model is not None:
            scaled["model"] = restorer.run(model_input(model, size))
        for name, img in scaled.items():
            rows.append({"seed": seed, "scale": f"{w}x{h}", "factor": float(factor), "width": w, "height": h,
                         "method": name, "flips": flips, "damaged": int(bool(damaged)),
                         **all_metrics(img, gt)})  # fmt: skip
        if size == largest:
            native = {**scaled, "gt": gt}
    return rows, native


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
    factors: Sequence[float] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], int]:
    """Corrupt ``photo`` (uint8 at the corruption size) with ``corruptor`` and ``seed``, then
    :func:`score_file` at the sizes ``scales`` (``factors``: their factors of the corruption size, for the
    rows; default: width ratios). Returns (rows, outputs at the largest scale, number of flipped bits)."""
    sample = corruptor.corrupt(photo, seed)
    gt_full = decode_jpeg_rgb(sample.clean_jpeg)
    if factors is None:
        factors = [w / gt_full.shape[1] for w, _h in scales]
    damaged = sample.n_flips > 0 or sample.differing_bytes() > 0
    rows, native = score_file(sample.corrupted_jpeg, gt_full, seed, sample.n_flips, damaged, decoder_options,
                              sca_methods, scales, factors, restorer, model_decoder, model_sca)  # fmt: skip
    return rows, native, sample.n_flips


def _column_label(rows: list[dict[str, Any]], factor: float) -> str:
    """``WxH`` when every row of ``factor`` has that size, else ``x<factor>`` (files of several sizes)."""
    sizes = {r["scale"] for r in rows if r["factor"] == factor}
    return next(iter(sizes)) if len(sizes) == 1 else f"x{factor:g} (sizes vary)"


def markdown_table(
    rows: list[dict[str, Any]], bers: Sequence[float], factors: Sequence[float], scored: str | None = None
) -> str:
    """Per-image means by BER, method and scale (``factors`` of each file's size; the rows' ``factor``):
    Y-PSNR / Y-SSIM (paper protocol) and RGB PSNR / SSIM. ``scored``: a line saying what was scored (which
    split, holdout or folder), printed under the title.

    Files whose bytes the corruption left intact (rows with ``damaged`` 0; older rows: no bit flip) are left
    out of the means, so every method is averaged over the same damaged files; a per-image PSNR of inf counts
    as ``PSNR_CAP``.
    """

    def is_damaged(r: dict[str, Any]) -> bool:
        return bool(int(r["damaged"])) if "damaged" in r else int(r.get("flips", 1)) > 0

    corrupted = [r for r in rows if is_damaged(r)]
    n_clean = len({(r["image"], r["seed"], r["ber"]) for r in rows}) - len(
        {(r["image"], r["seed"], r["ber"]) for r in corrupted}
    )
    groups: dict[tuple[float, str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    methods: list[str] = []
    for r in corrupted:
        if r["method"] not in methods:
            methods.append(r["method"])
        for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            groups[(r["ber"], r["method"], r["factor"])][key].append(r[key])

    def mean(values: list[float]) -> float:
        return float(np.mean(np.minimum(np.asarray(values, dtype=np.float64), PSNR_CAP)))

    per_ber = defaultdict(set)
    for r in corrupted:
        per_ber[r["ber"]].add((r["image"], r["seed"]))
    labels = [_column_label(rows, f) for f in factors]
    lines = ["# Restoration of bitstream-corrupted JPEGs", ""]
    if scored:
        lines += [f"Scored: {scored}", ""]
    lines.append(
        f"Damaged files per BER: {', '.join(f'{b:g}: {len(per_ber[b])}' for b in bers)} ({n_clean} "
        "file(s) the corruption left intact left out). "
        "Per-image means. Y = BT.601 studio luma of uint8 RGB (the paper's protocol: rounded, peak 255, no "
        f"border crop); SSIM = 2-D Gaussian (sigma 1.5); a PSNR of inf counts as {PSNR_CAP:g} dB."
    )
    for title, (a, b) in (("Y-PSNR (dB) / Y-SSIM", ("psnr_y", "ssim_y")),
                          ("RGB PSNR (dB) / RGB SSIM", ("psnr_rgb", "ssim_rgb"))):  # fmt: skip
        for ber in bers:
            lines += ["", f"## BER {ber:g}: {title}", ""]
            lines.append("| method | " + " | ".join(labels) + " |")
            lines.append("|---|" + "---|" * len(factors))
            for m in methods:
                cells = []
                for f in factors:
                    g = groups.get((ber, m, f))
                    cells.append(f"{mean(g[a]):.2f} / {mean(g[b]):.4f}" if g else "-")
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += spread_lines(corrupted, bers, factors[0], labels[0], methods)
    return "\n".join(lines) + "\n"


def spread_lines(
    rows: list[dict[str, Any]], bers: Sequence[float], factor: float, label: str, methods: Sequence[str]
) -> list[str]:
    """Markdown lines: per BER and method, the Y-PSNR mean, 10th percentile and worst file (its name and
    seed) at the scale ``factor`` (headed ``label``): a mean alone hides the files a method breaks."""
    lines = ["", f"## Y-PSNR (dB) spread at {label}: mean / 10th percentile / worst file", ""]
    lines += ["| BER | method | mean | p10 | worst | worst file |", "|---|---|---|---|---|---|"]
    for ber in bers:
        for m in methods:
            sel = [r for r in rows if r["ber"] == ber and r["method"] == m and r["factor"] == factor]
            if not sel:
                continue
            values = np.minimum(np.asarray([r["psnr_y"] for r in sel], dtype=np.float64), PSNR_CAP)
            worst = sel[int(np.argmin(values))]
            lines.append(f"| {ber:g} | {m} | {values.mean():.2f} | {np.percentile(values, 10):.2f} | "
                         f"{values.min():.2f} | {worst['image']} (seed {worst['seed']}) |")  # fmt: skip
    return lines


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text (:data:`CSV_FIELDS`; floats with 6 significant digits)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
