"""Compare training runs: ``python -m src.report DIR [DIR ...] [--out FOLDER] [--no-plot]``.

DIR is a ``src.train`` run folder, a multirun folder (an ablation grid or an Optuna search) or a folder of
them. Writes ``report.md`` (one row per job: experiment, overrides, best and last ``val/psnr_y`` and
``val/ssim_y``, test metrics, the SCA-input baseline, epochs, batches, wall time, batches/s; an Optuna
search also gets its per-trial table) and ``report.png`` (the metric per job and every job's ``val/psnr_y``
curve) into the first DIR (or ``--out``), from the run folders alone (``summary.json``, ``metrics.csv``):
no wandb, no network. Example::

    python -m src.train -m experiment=gca_refine sca=paper,dc,dc_thumb
    python -m src.report logs/train/multiruns/<date>_<time>
"""

from __future__ import annotations

import argparse
import sys
import time

from src.utils.run_report import ReportError, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", help="run or multirun folders of src.train")
    parser.add_argument(
        "--out", default=None, help="folder for report.md / report.png (default: the first DIR)"
    )
    parser.add_argument("--no-plot", action="store_true", help="write report.md only")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    try:
        md, png, jobs = write_report(args.dirs, args.out, plot=not args.no_plot)
    except (ReportError, OSError) as exc:
        print(f"src.report: {exc}", file=sys.stderr)
        return 2
    print(md.read_text())
    print(f"{len(jobs)} job(s) -> {md}{f' and {png}' if png else ''} in {time.perf_counter() - tic:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
