"""Restore real corrupted JPEG files: ``python -m src.restore input=FILE_OR_FOLDER [thumbnail=IMAGE]
[output_dir=DIR] [ckpt_path=CKPT|null]``.

Per file (:func:`src.restoration.restore_bytes`): robust decode -> SCA (the ``sca`` group; ``dc_thumb``
anchors on the file's EXIF thumbnail or on ``thumbnail=``) -> GCA with the model of ``ckpt_path``, else the
SCA image (whose garbage MCUs ``dc_thumb`` fills from the thumbnail). The model: by default the shipped
generator ``weights/gca_refine.pt`` (``ckpt_path: shipped``; when the file is not there, one warning and SCA
+ thumbnail fill); ``ckpt_path=CKPT`` any checkpoint of ``src.train`` or exported generator (a missing file is
an error); ``ckpt_path=null`` no GCA. A model's input is made with the decoder / SCA options it was trained
with when its run config is known. The model in use is printed first. Writes ``<stem>_restored.png`` (+
``<stem>_sca.png`` when a model ran) into ``output_dir`` (folder inputs keep their sub-folders), never over an
input, and prints what the decoder found. A method that needs a thumbnail falls back to ``fallback_method``
(with a warning) for a file that has none when no ``thumbnail=`` is given; GCA is then skipped too for a model
that takes a thumbnail (the SCA image is written), unless ``gca_input_thumbnail=true`` guides it with a
thumbnail made from the SCA image.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.errors import BitstreamRestoreError
from src.restoration import (
    RestoreError,
    Restorer,
    inference_options,
    load_restorer,
    model_options,
    restore_bytes,
)
from src.restoration.restore import find_inputs, given_thumbnail, read_jpeg
from src.utils.cli import cli_errors
from src.utils.hydra_utils import set_project_root
from src.utils.images import write_png

log = logging.getLogger(__name__)
set_project_root()

#: the ``ckpt_path`` value that names the shipped model (``shipped_ckpt_path``)
SHIPPED = "shipped"


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


def restore(cfg: DictConfig) -> dict[str, Any]:
    """Restore every input file; returns {"written": [paths], "failed": {path: message}}."""
    if cfg.get("input") in (None, "", "???"):
        raise RestoreError("no input given: python -m src.restore input=FILE_OR_FOLDER")
    files = find_inputs(cfg.input)
    input_root = Path(cfg.input).expanduser()
    inputs = {f.resolve() for f in files}
    out_dir = Path(cfg.output_dir).expanduser()
    restorer = open_model(cfg)
    decoder, sca = (OmegaConf.to_container(cfg[k], resolve=True) or {} for k in ("decoder", "sca"))
    decoder, sca = model_options(restorer, decoder, sca)  # type: ignore[arg-type]
    max_filled = None if cfg.get("gca_max_filled") is None else float(cfg.gca_max_filled)
    written: list[str] = []
    failed: dict[str, str] = {}
    for f in files:
        rel = f.relative_to(input_root) if input_root.is_dir() else Path(f.name)
        try:
            result = restore_bytes(
                read_jpeg(f), decoder, sca, given_thumbnail(f, cfg.get("thumbnail"), input_root), restorer,
                str(cfg.get("fallback_method") or "dc"), bool(cfg.get("gca_input_thumbnail")), max_filled,
            )  # fmt: skip
        except (BitstreamRestoreError, OSError) as exc:  # a bad file must not stop a folder; bugs raise
            log.error("%s: %s", f, exc)
            print(f"{f}: FAILED: {exc}")
            failed[str(f)] = str(exc)
            continue
        outputs = [(f"{rel.stem}_restored.png", result.restored)]
        if result.gca and cfg.get("save_sca"):
            outputs.append((f"{rel.stem}_sca.png", result.sca))
        for name, rgb in outputs:
            path = out_dir / rel.parent / name
            if path.resolve() in inputs:
                raise RestoreError(f"refusing to write {str(path)!r}: it is one of the inputs")
            written.append(str(write_png(path, rgb)))
        print(f"{f}:")
        for line in result.report:
            print(f"  {line}")
        print(f"  -> {out_dir / rel.parent / outputs[0][0]}")
    if failed and not written:
        raise RestoreError(f"no file could be restored ({len(failed)} failed): {next(iter(failed.values()))}")
    return {"written": written, "failed": failed}


@hydra.main(version_base="1.3", config_path="../conf", config_name="restore")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: a project error ends the program with a one-line message and exit code 1."""
    with cli_errors("restore"):
        restore(cfg)


if __name__ == "__main__":
    main()
