"""Restore real corrupted JPEG files: ``python -m src.restore input=FILE_OR_FOLDER [output=DIR]
[thumbnail=IMAGE] [ckpt_path=CKPT|null] [overwrite=true] [side_by_side=true]``.

Per file (:func:`src.restoration.restore_bytes`): robust decode -> SCA (the ``sca`` group; ``dc_thumb``
anchors on the file's EXIF thumbnail or on ``thumbnail=``) -> GCA with the model of ``ckpt_path``, else the
SCA image (whose garbage MCUs ``dc_thumb`` fills from the thumbnail). The model: by default the shipped
generator ``weights/gca_refine.pt`` (``ckpt_path: shipped``; when the file is not there, one warning and SCA
+ thumbnail fill); ``ckpt_path=CKPT`` any checkpoint of ``src.train`` or exported generator (a missing file is
an error); ``ckpt_path=null`` no GCA. A model's input is made with the decoder / SCA options it was trained
with when its run config is known. The model in use is printed first. A method that needs a thumbnail falls
back to ``fallback_method`` (with a warning) for a file that has none when no ``thumbnail=`` is given; GCA is
then skipped too for a model that takes a thumbnail (the SCA image is written), unless
``gca_input_thumbnail=true`` guides it with a thumbnail made from the SCA image.

Outputs (:mod:`src.restoration.outputs`), in ``output`` (= ``output_dir``; folder inputs keep their
sub-folders): ``<stem>_restored.png``, ``<stem>_sca.png`` when a model ran (``save_sca``), and with
``side_by_side=true`` ``<stem>_compare.png`` (Pillow's decode | restored | trust mask). ``a.jpg`` and
``a.jpeg`` of one folder get ``a_jpg_*`` and ``a_jpeg_*``. Before any work: the output folder is created
when missing and must take files, and no output may exist already unless ``overwrite=true`` (one-line errors);
nothing is ever written over an input. Each PNG is written atomically (a temporary file, then a rename) and
carries the input's EXIF block (orientation, time, GPS, ... as stored), ICC profile, XMP and DPI, plus an
``iTXt`` ``Source`` chunk with the input's name and SHA-256. The pixels stay in the **stored** orientation
and the EXIF Orientation tag is kept, so a viewer turns the PNG exactly as it turns the JPEG.

A folder run shows a progress bar, prints what the decoder found per file, one line per failed file (file:
reason; the other files are still restored) and ends with ``N restored, M failed``; the exit status is 1 when
any file failed. File names reach Hydra unharmed: the values of ``input``, ``output``, ``output_dir``,
``thumbnail`` and the checkpoint paths are quoted for Hydra before it parses them
(:func:`src.utils.cli.quote_path_overrides`), so one shell word per option is all that is needed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from src.errors import BitstreamRestoreError
from src.restoration import (
    RestoreError,
    Restorer,
    inference_options,
    load_restorer,
    model_options,
    restore_bytes,
)
from src.restoration.kernels import ANNOUNCE, warm_up
from src.restoration.outputs import (
    check_output_folder,
    jpeg_metadata,
    output_bases,
    output_path,
    refuse_existing,
    write_output,
)
from src.restoration.pictures import restore_comparison
from src.restoration.restore import find_inputs, given_thumbnail, read_jpeg
from src.utils.cli import cli_errors, quote_path_overrides
from src.utils.hydra_utils import set_project_root

log = logging.getLogger(__name__)
set_project_root()

#: the ``ckpt_path`` value that names the shipped model (``shipped_ckpt_path``)
SHIPPED = "shipped"
#: options whose values are file names (quoted for Hydra by :func:`main`)
PATH_OPTIONS = ("input", "output", "output_dir", "thumbnail", "ckpt_path", "shipped_ckpt_path")


def open_model(cfg: DictConfig) -> Restorer | None:
    """The GCA model of ``cfg.ckpt_path`` (None: no GCA), after printing which one is used.

    ``null`` or empty: no GCA. ``shipped`` (the default): the file ``shipped_ckpt_path``, or no GCA with one
    warning when that file is missing. Any other path: that file; missing or unusable: :class:`RestoreError`.
    """
    ckpt = cfg.get("ckpt_path")
    if not ckpt:
        print("model: none (ckpt_path=null): SCA + thumbnail fill")
        return None
    is_shipped = str(ckpt) == SHIPPED
    path = Path(str(cfg.shipped_ckpt_path if is_shipped else ckpt)).expanduser()
    if is_shipped and not path.exists():
        log.warning(
            "the shipped model %s is not there (see weights/README.md): restoring with SCA + thumbnail fill, "
            "no GCA (ckpt_path=CKPT uses another model, ckpt_path=null silences this)",
            path,
        )
        print("model: none (shipped model missing): SCA + thumbnail fill")
        return None
    restorer = load_restorer(path, **inference_options(cfg))
    print(f"model: {'shipped ' if is_shipped else ''}{restorer.describe()}")
    return restorer


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (whitespace runs collapsed)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def restore(cfg: DictConfig) -> dict[str, Any]:
    """Restore every input file; returns {"written": [paths], "failed": {path: message}, "restored": n}.

    Raises :class:`RestoreError` before any work for a bad input, output folder or model, or an earlier
    output in the way; a single-file input that cannot be restored raises too. In a folder, a file that
    fails is reported and listed in ``failed``; the others are still restored."""
    if cfg.get("input") in (None, "", "???"):
        raise RestoreError("no input given: python -m src.restore input=FILE_OR_FOLDER")
    files = find_inputs(cfg.input)
    input_root = Path(cfg.input).expanduser()
    out_dir = Path(str(cfg.get("output") or cfg.output_dir)).expanduser()
    check_output_folder(out_dir)
    overwrite = bool(cfg.get("overwrite"))
    kinds = ["restored"]
    if cfg.get("ckpt_path") and cfg.get("save_sca"):  # a model may run: its SCA input may be written too
        kinds.append("sca")
    if cfg.get("side_by_side"):
        kinds.append("compare")
    bases = output_bases(files, input_root)
    protected = list(files)
    if cfg.get("thumbnail") and Path(str(cfg.thumbnail)).expanduser().is_file():
        protected.append(Path(str(cfg.thumbnail)).expanduser())
    refuse_existing((output_path(out_dir, b, k) for b in bases.values() for k in kinds), overwrite, protected)
    restorer = open_model(cfg)
    decoder, sca = (OmegaConf.to_container(cfg[k], resolve=True) or {} for k in ("decoder", "sca"))
    decoder, sca = model_options(restorer, decoder, sca)  # type: ignore[arg-type]
    max_filled = None if cfg.get("gca_max_filled") is None else float(cfg.gca_max_filled)
    print(ANNOUNCE, flush=True)
    print(f"kernels ready ({warm_up(decoder, sca):.1f} s)", flush=True)
    written: list[str] = []
    failed: dict[str, str] = {}
    single = len(files) == 1 and not input_root.is_dir()
    bar = tqdm(files, desc="restore", unit="file", file=sys.stderr,
               disable=not cfg.get("progress", True) or len(files) < 2)  # fmt: skip
    for f in bar:
        try:
            data = read_jpeg(f)
            result = restore_bytes(
                data, decoder, sca, given_thumbnail(f, cfg.get("thumbnail"), input_root), restorer,
                str(cfg.get("fallback_method") or "dc"), bool(cfg.get("gca_input_thumbnail")), max_filled,
                str(cfg.get("thumbnail_choice") or "auto"),
            )  # fmt: skip
            metadata = jpeg_metadata(data) if cfg.get("keep_metadata", True) else None
            images = {"restored": result.restored}
            if "sca" in kinds and result.gca:
                images["sca"] = result.sca
            if "compare" in kinds:
                label = f"restored ({'GCA' if result.gca else 'SCA ' + result.method})"
                images["compare"] = restore_comparison(data, result.restored, result.compensated.trust, label,
                                                       int(cfg.get("side_by_side_width", 1024)))  # fmt: skip
            paths = []
            for kind, rgb in images.items():
                path = output_path(out_dir, bases[f], kind)
                refuse_existing([path], True, protected)
                meta = metadata if kind != "compare" else None
                level = int(cfg.get("png_compress_level", 1))
                paths.append(str(write_output(path, rgb, meta, f.name, overwrite, level)))
        except (BitstreamRestoreError, OSError) as exc:  # a bad file must not stop a folder; bugs raise
            if single:
                raise RestoreError(f"{f}: {one_line(exc)}") from exc
            bar.write(f"{f}: FAILED: {one_line(exc)}", file=sys.stderr)
            failed[str(f)] = one_line(exc)
            continue
        written += paths
        lines = [f"{f}:", *(f"  {line}" for line in result.report)]
        if metadata is not None:
            lines.append(f"  {metadata.describe()}")
        lines += [f"  -> {p}" for p in paths]
        bar.write("\n".join(lines), file=sys.stdout)
    n_ok = len(files) - len(failed)
    print(f"{n_ok} restored, {len(failed)} failed -> {out_dir}", flush=True)
    return {"written": written, "failed": failed, "restored": n_ok}


@hydra.main(version_base="1.3", config_path="../conf", config_name="restore")
def _main(cfg: DictConfig) -> None:
    """Hydra entry point: a project error ends the program with a one-line message and exit code 1, and so
    does a folder run in which any file failed (after its summary line)."""
    with cli_errors("restore"):
        result = restore(cfg)
    if result["failed"]:
        raise SystemExit(1)


def main() -> None:
    """``python -m src.restore``: file-name options quoted for Hydra (:data:`PATH_OPTIONS`), then Hydra."""
    sys.argv[1:] = quote_path_overrides(sys.argv[1:], PATH_OPTIONS)
    _main()


if __name__ == "__main__":
    main()
