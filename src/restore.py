"""Restore real corrupted JPEG files: ``python -m src.restore input=FILE_OR_FOLDER [thumbnail=IMAGE]
[output_dir=DIR] [ckpt_path=CKPT|null]``.

Per file: robust decode -> SCA (the ``sca`` group; ``dc_thumb`` anchors on the file's EXIF thumbnail or on
``thumbnail=``) -> GCA with the model of ``ckpt_path``, else the SCA image (whose garbage MCUs ``dc_thumb``
fills from the thumbnail). The model: by default the shipped generator ``weights/gca_refine.pt``
(``shipped_ckpt_path``; when the file is not there, one warning and SCA + thumbnail fill); ``ckpt_path=CKPT``
any checkpoint of ``src.train`` or exported generator (a missing file is an error); ``ckpt_path=null`` no GCA.
The model in use is printed first. Writes ``<stem>_restored.png`` (+ ``<stem>_sca.png`` when a model ran) into
``output_dir`` (folder inputs keep their sub-folders), never over an input, and prints what the decoder found.
A method that needs a thumbnail falls back to ``fallback_method`` (with a warning) for a file that has none
when no ``thumbnail=`` is given; GCA is then skipped too for a model that takes a thumbnail (the SCA image is
written), unless ``gca_input_thumbnail=true`` guides it with a thumbnail made from the SCA image.

:func:`load_restorer` and :class:`Restorer` (checkpoint -> callable on arrays) are shared with ``src.eval``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.utils.hydra_utils import set_project_root

log = logging.getLogger(__name__)
set_project_root()

JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")
THUMBNAIL_METHODS = ("dc_thumb",)  # SCA methods that need a thumbnail


class RestoreError(ValueError):
    """An input cannot be restored: missing path, not a JPEG, an unusable checkpoint or thumbnail."""


# ---------------------------------------------------------------------------------------------- inputs
def find_inputs(path: str | Path) -> list[Path]:
    """The JPEG files to restore: ``path`` itself, or every JPEG under a folder (recursive, sorted)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RestoreError(f"input {str(path)!r} does not exist")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in JPEG_SUFFIXES)
    if not files:
        raise RestoreError(f"input folder {str(path)!r} holds no JPEG file ({', '.join(JPEG_SUFFIXES)})")
    return files


def read_jpeg(path: Path) -> bytes:
    """The bytes of ``path``; :class:`RestoreError` unless they start with a JPEG SOI marker (FF D8)."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise RestoreError(
            f"{str(path)!r} is not a JPEG file (it starts with {data[:4].hex(' ') or 'nothing'})"
        )
    return data


def thumbnail_for(path: Path, thumbnail: str | None, input_root: Path) -> np.ndarray | None:
    """A user-supplied thumbnail for ``path``: ``thumbnail`` is an image file (used for every input) or a
    folder holding an image with the same relative path and stem. None when not given or not found."""
    if not thumbnail:
        return None
    from src.utils.photos import IMAGE_SUFFIXES, load_rgb

    t = Path(thumbnail).expanduser()
    if t.is_file():
        return load_rgb(t)
    if t.is_dir():
        rel = path.relative_to(input_root) if input_root.is_dir() else Path(path.name)
        for suffix in IMAGE_SUFFIXES:
            cand = t / rel.parent / f"{rel.stem}{suffix}"
            if cand.is_file():
                return load_rgb(cand)
        return None
    raise RestoreError(f"thumbnail {str(thumbnail)!r} does not exist")


# ---------------------------------------------------------------------------------------------- reports
def describe_decode(decoded: Any) -> str:
    """One paragraph on what the robust decoder found (size, sampling, MCU grid, resyncs, lost MCUs,
    events)."""
    from src.jpeg import MCU_ERROR, MCU_LOST, MCU_RESTART, MCU_RESYNC

    comps = ", ".join(f"{c.h}x{c.v}" for c in decoded.components)
    status = np.asarray(decoded.mcu_status)
    n_mcu = status.size
    parts = [
        f"{decoded.width}x{decoded.height}, {len(decoded.components)} component(s) sampled {comps}",
        f"MCU grid {decoded.mcu_cols}x{decoded.mcu_rows} ({decoded.mcu_width}x{decoded.mcu_height} px)",
        f"{int(np.count_nonzero(status & MCU_RESYNC))} resync(s)",
        f"{int(np.count_nonzero(status & MCU_LOST))} of {n_mcu} MCUs lost",
        f"{int(np.count_nonzero(status & MCU_ERROR))} decoded with errors",
        f"{int(np.count_nonzero(status & MCU_RESTART))} restart(s)",
    ]
    skipped = int(np.asarray(decoded.mcu_skipped_bits).sum())
    if skipped:
        parts.append(f"{skipped} bit(s) skipped")
    kinds = Counter(e.kind for e in decoded.events)
    if kinds:
        parts.append("events: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    else:
        parts.append("no decoder events (the scan decoded cleanly, or errors resynchronised silently)")
    return "; ".join(parts)


def describe_sca(comp: Any) -> str:
    """One line on SCA's findings: segments, shifted segments, garbage MCUs, trusted share."""
    shifted = sum(1 for s in comp.segments if getattr(s, "shift_mcus", 0))
    garbage = sum(int(b) - int(a) for a, b in comp.garbage)
    trust = float(np.mean(comp.trust)) if comp.trust is not None else float("nan")
    return (
        f"SCA {comp.method}: {len(comp.segments)} segment(s), {shifted} shifted, {garbage} garbage MCU(s), "
        f"{100 * trust:.1f}% of pixels trusted"
    )


# ---------------------------------------------------------------------------------------------- models
@dataclass
class Restorer:
    """A trained GCA generator as a function of arrays: ``restorer(sca, thumb, mask) -> uint8 (H, W, 3)``.

    ``sca`` float32 (H, W, 3) in [0, 1]; ``thumb`` uint8 (H, W, 3) (the thumbnail upsampled to H x W);
    ``mask`` float32 (H, W). ``module`` is a ``src.gca.GCAGenerator`` (called as ``module(sca, thumb, mask)``,
    it pads any size itself) or a LightningModule (called with the batch dict, inputs edge-padded here to
    multiples of ``size_multiple``). ``sca_options`` / ``decoder_options``: what the model was trained on
    (from the run's run_config.yaml), when known.
    """

    module: Any
    device: Any
    size_multiple: int = 1
    sca_options: dict[str, Any] | None = None
    decoder_options: dict[str, Any] | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_thumbnail(self) -> bool:
        """Whether the model takes the thumbnail as an input (True when it cannot tell)."""
        net = getattr(self.module, "net", self.module)
        return bool(getattr(net, "use_thumbnail", True))

    def describe(self) -> str:
        """One line: the file, the kind of model, its parameter count and device."""
        kind = "GCA generator" if hasattr(self.module, "required_multiple") else type(self.module).__name__
        n = sum(p.numel() for p in self.module.parameters())
        return f"{self.source} ({kind}, {n / 1e6:.2f} M parameters, {self.device})"

    def __call__(self, sca: np.ndarray, thumb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = sca.shape[:2]
        is_generator = hasattr(self.module, "required_multiple")
        m = 1 if is_generator else max(1, int(self.size_multiple))
        ph, pw = (-h) % m, (-w) % m

        def prep(x: np.ndarray) -> torch.Tensor:
            arr = x[:, :, None] if x.ndim == 2 else x
            t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()
            if x.dtype == np.uint8:
                t = t / 255.0
            t = t[None].to(self.device)
            return F.pad(t, (0, pw, 0, ph), mode="replicate") if (ph or pw) else t

        inputs = {"sca": prep(sca), "thumb": prep(thumb), "mask": prep(mask.astype(np.float32))}
        with torch.inference_mode():
            out = self.module(**inputs) if is_generator else self.module(inputs)
        if isinstance(out, Mapping):
            out = out.get("output", out.get("refined", out.get("coarse")))
            if out is None:
                raise RestoreError(f"the model returned no 'refined' or 'coarse' image ({self.source})")
        img = out[0, :, :h, :w].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        return img


def pick_device(device: str | None) -> Any:
    """torch.device for ``auto`` (CUDA when available), ``cpu`` or ``cuda[:n]``."""
    import torch

    if not device or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _run_config(ckpt: Path) -> DictConfig | None:
    """The training run's config, if any: ``<stem>_config.yaml`` next to the file (a shipped model's copy,
    see benchmarks/ship_model.py), else ``run_config.yaml`` written by ``src.train`` next to the run's
    ``checkpoints/`` folder."""
    for cand in (
        ckpt.with_name(f"{ckpt.stem}_config.yaml"),
        ckpt.parent / "run_config.yaml",
        ckpt.parent.parent / "run_config.yaml",
    ):
        if cand.is_file():
            return OmegaConf.load(cand)
    return None


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def load_restorer(path: str | Path, device: str | None = "auto") -> Restorer:
    """A :class:`Restorer` from a Lightning checkpoint of ``src.train`` or a generator exported with
    ``src.gca.export_generator`` (both read by ``src.gca.load_generator``). A checkpoint of another module is
    rebuilt from the run's ``run_config.yaml`` (its model config) instead. The training run's SCA / decoder
    options come along when run_config.yaml is found. Raises :class:`RestoreError` for a missing or unusable
    file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RestoreError(f"checkpoint {str(path)!r} does not exist")
    dev = pick_device(device)
    run_cfg = _run_config(p)
    sca = _container(run_cfg.get("sca")) if run_cfg is not None else None
    dec = _container(run_cfg.get("decoder")) if run_cfg is not None else None
    size_multiple = int((run_cfg.get("size_multiple") if run_cfg is not None else None) or 1)
    from src.gca import load_generator

    try:
        generator = load_generator(p)
    except Exception as first:  # not an export / GCA checkpoint: rebuild the module from its run config
        if run_cfg is None or run_cfg.get("model") is None:
            raise RestoreError(
                f"{str(p)!r} is neither an exported generator nor a GCA checkpoint ({first}), and no "
                "run_config.yaml (written by src.train next to checkpoints/) says how to rebuild it"
            ) from first
        import torch

        try:
            payload = torch.load(p, map_location="cpu", weights_only=False)
            module = hydra.utils.instantiate(run_cfg.model)
            module.load_state_dict(payload["state_dict"])
        except Exception as exc:
            raise RestoreError(f"cannot load {str(p)!r} with its run config: {exc}") from exc
        return Restorer(module.eval().to(dev), dev, size_multiple or 128, sca, dec, source=str(p))
    return Restorer(generator.eval().to(dev), dev, size_multiple, sca, dec, source=str(p))


# ---------------------------------------------------------------------------------------------- one file
def restore_bytes(
    data: bytes,
    decoder_options: Mapping[str, Any],
    sca_options: Mapping[str, Any],
    thumbnail: np.ndarray | None = None,
    restorer: Restorer | None = None,
    fallback_method: str = "dc",
    gca_input_thumbnail: bool = False,
    gca_max_filled: float | None = None,
) -> dict[str, Any]:
    """Restore one corrupted JPEG. Returns ``restored`` uint8 (H, W, 3), ``sca`` uint8 (H, W, 3), the
    ``decoded`` and ``compensated`` objects, the ``method`` used, ``thumbnail_source`` (header / given /
    none), ``gca`` (whether the model ran) and ``report`` (text lines).

    Without any thumbnail, a model that takes one is skipped (``restored`` is the SCA image) unless
    ``gca_input_thumbnail``: then it is guided by a thumbnail made from the SCA image. With
    ``gca_max_filled``, GCA is also skipped when SCA had to fill more than that share of the pixels (trust
    below 1): damage heavier than the model was trained on (``restored`` is the SCA image)."""
    from src.data.pipeline import decode_thumbnail, thumbnail_of, to_uint8
    from src.data.transforms import resize_uint8
    from src.jpeg import decode
    from src.sca import compensate

    decoded = decode(data, **dict(decoder_options))
    header_thumb = decode_thumbnail(decoded.thumbnail)
    thumb, thumb_source = (header_thumb, "header") if header_thumb is not None else (thumbnail, "given")
    if thumb is None:
        thumb_source = "none"
    options = dict(sca_options)
    method = str(options.get("method", "dc_thumb"))
    report = [describe_decode(decoded)]
    if thumb is None and method in THUMBNAIL_METHODS:
        log.warning(
            "SCA method %r needs a thumbnail but the file has none and no thumbnail= was given: using %r",
            method,
            fallback_method,
        )
        report.append(f"no thumbnail: SCA method {method} -> {fallback_method}")
        method = fallback_method
        options["method"] = method
    report.append(
        "thumbnail: "
        + (f"{thumb.shape[1]}x{thumb.shape[0]} ({thumb_source})" if thumb is not None else "none")
    )
    comp = compensate(decoded, thumb, **options)
    report.append(describe_sca(comp))
    sca = to_uint8(np.clip(comp.rgb, 0, 1))
    restored = sca
    gca = False
    filled = float(np.mean(comp.trust < 1.0))
    if restorer is not None and gca_max_filled is not None and filled > gca_max_filled:
        log.warning(
            "SCA filled %.1f %% of the image: GCA skipped (gca_max_filled=%s)", 100 * filled, gca_max_filled
        )
        report.append(
            f"GCA skipped: SCA filled {100 * filled:.1f} % of the pixels, above gca_max_filled="
            f"{gca_max_filled} (heavier damage than the model was trained on; raise it to run GCA anyway)"
        )
    elif restorer is not None and thumb is None and restorer.needs_thumbnail and not gca_input_thumbnail:
        log.warning("no thumbnail: GCA skipped (the model needs one); give thumbnail=IMAGE")
        report.append(
            "GCA skipped: the model needs a thumbnail (give thumbnail=IMAGE, or gca_input_thumbnail=true)"
        )
    elif restorer is not None:
        size = (decoded.width, decoded.height)
        guide = thumb if thumb is not None else thumbnail_of(sca)
        restored = restorer(
            comp.rgb.astype(np.float32), resize_uint8(guide, size), comp.trust.astype(np.float32)
        )
        gca = True
        made = " (guided by a thumbnail made from the SCA image)" if thumb is None else ""
        report.append(f"GCA: {restorer.source}{made}")
    return {
        "restored": restored,
        "sca": sca,
        "decoded": decoded,
        "compensated": comp,
        "method": method,
        "thumbnail_source": thumb_source,
        "gca": gca,
        "report": report,
    }


def _write_png(path: Path, rgb: np.ndarray, inputs: set[Path]) -> None:
    import io

    from PIL import Image

    from src.utils import atomic_write_bytes

    if path.resolve() in inputs:
        raise RestoreError(f"refusing to write {str(path)!r}: it is one of the inputs")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def open_model(cfg: DictConfig) -> Restorer | None:
    """The GCA model of ``cfg.ckpt_path`` (None: no GCA), after printing which one is used.

    ``ckpt_path`` null or empty: no GCA. The shipped model (``ckpt_path`` is ``shipped_ckpt_path``, the
    default) when its file is missing: one warning, no GCA. Any other missing or unusable file:
    :class:`RestoreError`.
    """
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        print("model: none (ckpt_path=null): SCA + thumbnail fill")
        return None
    path = Path(str(ckpt)).expanduser()
    shipped = cfg.get("shipped_ckpt_path")
    is_shipped = bool(shipped) and path.resolve() == Path(str(shipped)).expanduser().resolve()
    if is_shipped and not path.exists():
        log.warning(
            "the shipped model %s is not there (see weights/README.md): restoring with SCA + thumbnail fill, "
            "no GCA (ckpt_path=CKPT uses another model, ckpt_path=null silences this)",
            path,
        )
        print("model: none (shipped model missing): SCA + thumbnail fill")
        return None
    restorer = load_restorer(path, cfg.get("device"))
    print(f"model: {'shipped ' if is_shipped else ''}{restorer.describe()}")
    return restorer


def restore(cfg: DictConfig) -> dict[str, Any]:
    """Restore every input file; returns {"written": [paths], "failed": {path: message}}."""
    if cfg.get("input") in (None, "", "???"):
        raise RestoreError("no input given: python -m src.restore input=FILE_OR_FOLDER")
    files = find_inputs(cfg.input)
    input_root = Path(cfg.input).expanduser()
    inputs = {f.resolve() for f in files}
    out_dir = Path(cfg.output_dir).expanduser()
    restorer = open_model(cfg)
    if restorer is not None and cfg.get("size_multiple"):
        restorer.size_multiple = int(cfg.size_multiple)
    decoder_options = OmegaConf.to_container(cfg.decoder, resolve=True) if cfg.get("decoder") else {}
    sca_options = OmegaConf.to_container(cfg.sca, resolve=True) if cfg.get("sca") else {"method": "dc_thumb"}
    if restorer is not None and restorer.sca_options and restorer.sca_options != sca_options:
        log.info("using the SCA options the model was trained with: %s", restorer.sca_options)
        sca_options = restorer.sca_options
    written: list[str] = []
    failed: dict[str, str] = {}
    for f in files:
        rel = f.relative_to(input_root) if input_root.is_dir() else Path(f.name)
        target = out_dir / rel.parent
        try:
            data = read_jpeg(f)
            result = restore_bytes(
                data,
                decoder_options,  # type: ignore[arg-type]
                sca_options,  # type: ignore[arg-type]
                thumbnail_for(f, cfg.get("thumbnail"), input_root),
                restorer,
                str(cfg.get("fallback_method") or "dc"),
                bool(cfg.get("gca_input_thumbnail")),
                None if cfg.get("gca_max_filled") is None else float(cfg.gca_max_filled),
            )
        except Exception as exc:  # one bad file must not stop a folder
            from src.jpeg import JPEGError

            if not isinstance(exc, RestoreError | JPEGError | OSError | ValueError):
                raise
            log.error("%s: %s", f, exc)
            print(f"{f}: FAILED: {exc}")
            failed[str(f)] = str(exc)
            continue
        out = target / f"{rel.stem}_restored.png"
        _write_png(out, result["restored"], inputs)
        written.append(str(out))
        if result["gca"] and cfg.get("save_sca"):
            sca_path = target / f"{rel.stem}_sca.png"
            _write_png(sca_path, result["sca"], inputs)
            written.append(str(sca_path))
        print(f"{f}:")
        for line in result["report"]:
            print(f"  {line}")
        print(f"  -> {out}")
    if failed and not written:
        raise RestoreError(f"no file could be restored ({len(failed)} failed): {next(iter(failed.values()))}")
    return {"written": written, "failed": failed}


@hydra.main(version_base="1.3", config_path="../conf", config_name="restore")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: a :class:`RestoreError` ends the program with a one-line message and exit code 1."""
    try:
        restore(cfg)
    except RestoreError as exc:
        raise SystemExit(f"src.restore: error: {exc}") from None


if __name__ == "__main__":
    main()
