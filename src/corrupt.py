"""Make a corrupted-JPEG benchmark folder: ``python -m src.corrupt [input_dir=...] [corruption=xts] ...``.

For every input image (a folder, recursive, or scikit-image's bundled photos when ``input_dir=null``),
optionally resized/cropped to ``size`` (e.g. ``[2048,1024]``, the paper's), it writes under ``output_dir``
``clean/``, ``corrupted/``, ``gt/`` and ``meta/`` (see :mod:`src.data.corrupted_folder`, the library that
does the work). Re-running skips finished items (resumable; all writes are atomic).
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from src.data.corrupted_folder import InputError, run
from src.utils.cli import cli_errors
from src.utils.hydra_utils import set_project_root

log = logging.getLogger(__name__)
set_project_root()  # conf/paths/default.yaml reads PROJECT_ROOT


def corrupt(cfg: DictConfig) -> None:
    """Corrupt the inputs of ``cfg`` into ``cfg.output_dir`` and print what was done."""
    summary = run(
        hydra.utils.instantiate(cfg.corruption),
        cfg.input_dir,
        cfg.output_dir,
        size=cfg.size,
        resize_mode=cfg.resize_mode,
        seeds_per_image=cfg.seeds_per_image,
        seed=cfg.seed,
        recursive=cfg.recursive,
        limit=cfg.limit,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        reencode=cfg.get("reencode", True),
    )
    print(
        f"{summary.done} corrupted, {summary.skipped} already done, {len(summary.failed)} unreadable "
        f"-> {summary.output_dir}"
    )
    if summary.failed and not (summary.done or summary.skipped):
        raise InputError("no input image could be read")


@hydra.main(version_base="1.3", config_path="../conf", config_name="corrupt")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: a project error ends the program with a one-line message and exit code 1."""
    with cli_errors("corrupt"):
        corrupt(cfg)


if __name__ == "__main__":
    main()
