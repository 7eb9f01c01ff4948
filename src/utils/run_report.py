"""Results of training runs side by side, from their run folders alone (no wandb, no network): the library
behind ``python -m src.report``.

A run folder is what ``src.train`` writes (``summary.json``, ``metrics.csv``, ``.hydra/``); a multirun folder
holds one per job (``0/``, ``1/``, ...; an Optuna search adds ``optimization_results.yaml``). Every number
comes from those files: the curves and the best / last values from ``metrics.csv`` (steps are training
batches), the identity, timing and final test metrics from ``summary.json``, the overrides from ``.hydra/``
when the summary is missing (a run killed before its first validation).
"""

from __future__ import annotations

import io
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.utils.io import atomic_write_bytes, atomic_write_text
from src.utils.run_files import METRICS_CSV, SUMMARY_JSON, best_and_last, metrics_time_span, read_metrics
from src.utils.run_files import read_summary as read_summary_file

log = logging.getLogger(__name__)

#: the curve and the headline metric of the report (the paper's protocol)
MAIN_METRIC = "val/psnr_y"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"


class ReportError(ValueError):
    """No run folder under the given paths (the message names them)."""


@dataclass
class JobResult:
    """One training job as its run folder tells it."""

    path: Path
    label: str
    experiment: str | None
    overrides: dict[str, str]
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def value(self, key: str, which: str = "last", mode: str = "max") -> float | None:
        """``best`` / ``last`` of ``key`` from ``metrics.csv``; for ``last`` the summary's final value when
        the curve lacks it (test metrics of a run without a file logger, fast_dev_run)."""
        stats = best_and_last(self.series.get(key, []), mode)
        got = stats[which]
        if got is None:
            got = (self.summary.get("metrics") or {}).get(key)
        return got

    @property
    def status(self) -> str:
        return str(self.summary.get("status") or ("killed?" if self.series else "no data"))

    @property
    def wall_time_s(self) -> float | None:
        return self.summary.get("wall_time_s") or metrics_time_span(self.path / METRICS_CSV)

    @property
    def epochs(self) -> int | None:
        if self.summary.get("epochs") is not None:
            return int(self.summary["epochs"])
        epochs = self.series.get("epoch")
        return int(max(v for _, v in epochs)) + 1 if epochs else None

    @property
    def batches(self) -> int | None:
        if self.summary.get("batches") is not None:
            return int(self.summary["batches"])
        steps = [s for ser in self.series.values() for s, _ in ser]
        return max(steps) if steps else None  # the step of the last row (batches done then)


def _is_run(path: Path) -> bool:
    return (path / SUMMARY_JSON).is_file() or (path / METRICS_CSV).is_file()


def find_runs(paths: Iterable[str | os.PathLike], max_depth: int = 4) -> list[Path]:
    """Run folders at or under ``paths`` (a run, a multirun, a folder of either), in path order (job
    numbers numerically). Raises :class:`ReportError` when there is none."""
    found: list[Path] = []

    def key(p: Path) -> tuple:
        return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in p.parts)

    def walk(folder: Path, depth: int) -> None:
        if _is_run(folder):
            found.append(folder)
            return
        if depth >= max_depth:
            return
        for sub in sorted((p for p in folder.iterdir() if p.is_dir()), key=key):
            if sub.name.startswith(".") or sub.name in ("wandb", "checkpoints", "csv", "tables"):
                continue
            walk(sub, depth + 1)

    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder")
        walk(path, 0)
    if not found:
        raise ReportError(
            f"no run folder (summary.json or metrics.csv) under {', '.join(map(str, paths))}: "
            "give a src.train run or multirun folder"
        )
    return found


def _hydra_overrides(run: Path) -> list[str]:
    import yaml

    path = run / ".hydra" / "overrides.yaml"
    try:
        return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    except (OSError, ValueError, yaml.YAMLError):
        return []


def _hydra_experiment(run: Path) -> str | None:
    import yaml

    try:
        cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return cfg.get("experiment_name")


def load_job(run: Path, base: Path | None = None) -> JobResult:
    """A :class:`JobResult` from a run folder: what the job varied (the swept values of a multirun, else the
    overrides its name carries), its curves and its summary."""
    summary = read_summary_file(run)
    job = summary.get("job") or {}
    overrides = dict(job.get("swept") or {})
    if not overrides and not job.get("multirun"):
        name = str(summary.get("run_name") or "")
        experiment = str(summary.get("experiment") or "")
        words = name[len(experiment) :].split() if name.startswith(experiment) else name.split()
        overrides = dict(w.split("=", 1) for w in words if "=" in w)
    if not summary:  # killed before its first summary: the overrides Hydra saved
        from src.utils.run_identity import INFRASTRUCTURE_GROUPS

        pairs = [o.lstrip("+~").split("=", 1) for o in _hydra_overrides(run) if "=" in o]
        overrides = {k: v for k, v in pairs if k.split(".")[0] not in INFRASTRUCTURE_GROUPS}
    rel = run.relative_to(base) if base is not None and run.is_relative_to(base) else run
    label = str(rel) if str(rel) != "." else run.name
    return JobResult(
        path=run,
        label=label,
        experiment=summary.get("experiment") or _hydra_experiment(run),
        overrides={str(k): str(v) for k, v in overrides.items()},
        series=read_metrics(run / METRICS_CSV),
        summary=summary,
    )


def load_jobs(paths: Sequence[str | os.PathLike]) -> list[JobResult]:
    """Every run under ``paths``, labelled by its path relative to the first one."""
    base = Path(paths[0]) if len(paths) == 1 else Path(os.path.commonpath([str(Path(p)) for p in paths]))
    return [load_job(run, base) for run in find_runs(paths)]


# ---------------------------------------------------------------------------------------------- tables


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


JOB_COLUMNS = (
    "job", "experiment", "overrides", "val/psnr_y best", "val/psnr_y last", "val/ssim_y best",
    "val/ssim_y last", "SCA input val/psnr_y", "test/psnr_y", "test/ssim_y", "SCA input test/psnr_y",
    "test gain (dB)", "epochs", "batches", "wall time", "batches/s", "status",
)  # fmt: skip


def job_row(job: JobResult) -> list[str]:
    """One row of the jobs table (:data:`JOB_COLUMNS`). The SCA input is the network's input (its metrics,
    ``*_input``, are logged beside the output's); for ``experiment=sca_only`` the job IS the SCA image."""
    test, test_in = job.value("test/psnr_y"), job.value("test/psnr_y_input")
    gain = test - test_in if test is not None and test_in is not None else None
    bps = job.summary.get("batches_per_s")
    return [
        job.label,
        str(job.experiment or "-"),
        " ".join(f"{k}={v}" for k, v in job.overrides.items()) or "-",
        _fmt(job.value(MAIN_METRIC, "best")),
        _fmt(job.value(MAIN_METRIC, "last")),
        _fmt(job.value("val/ssim_y", "best"), 4),
        _fmt(job.value("val/ssim_y", "last"), 4),
        _fmt(job.value("val/psnr_y_input")),
        _fmt(test),
        _fmt(job.value("test/ssim_y"), 4),
        _fmt(test_in),
        _fmt(gain),
        _fmt(job.epochs),
        _fmt(job.batches),
        _duration(job.wall_time_s),
        _fmt(bps),
        job.status,
    ]


def optuna_table(folder: Path, jobs: Sequence[JobResult]) -> str | None:
    """The per-trial table of an Optuna search (``optimization_results.yaml`` in ``folder``): trial, the
    sampled parameters, the value returned to the sweeper (the best ``val/psnr_y`` of the trial), sorted
    best first; None when ``folder`` is not an Optuna sweep."""
    import yaml

    path = folder / "optimization_results.yaml"
    if not path.is_file():
        return None
    try:
        result = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    params = list((result.get("best_params") or {}).keys())
    trials = [j for j in jobs if j.path.parent == folder]
    metric = next(
        (j.summary.get("optimized_metric") for j in trials if j.summary.get("optimized_metric")), None
    )
    metric = metric or MAIN_METRIC

    def score(j: JobResult) -> float | None:
        best = j.summary.get("best") or {}
        if best.get("monitor") == metric and best.get("value") is not None:
            return float(best["value"])  # what src.train returned: the best checkpoint's score
        return j.value(metric, "best")

    rows = sorted(trials, key=lambda j: -(score(j) if score(j) is not None else -math.inf))
    best_value = result.get("best_value")

    def is_best(j: JobResult) -> bool:
        value = score(j)
        return best_value is not None and value is not None and abs(value - float(best_value)) < 1e-9

    body = [
        [j.label, *(j.overrides.get(p, "-") for p in params), _fmt(score(j)), "best" if is_best(j) else ""]
        for j in rows
    ]
    header = ["trial", *params, f"{metric} (best)", ""]
    text = _table(header, body)
    return f"Optuna: {len(trials)} trials, best {metric} = {_fmt(best_value)}\n\n{text}"


def render_markdown(paths: Sequence[Path], jobs: Sequence[JobResult], png_name: str | None) -> str:
    """``report.md``: one row per job, the Optuna trial table(s), the figure."""
    parts = [
        "# Training runs",
        "",
        f"From {', '.join(f'`{p}`' for p in paths)}: {len(jobs)} job(s). Steps are training batches; "
        f"`best` is the highest value over the run's validations, `last` the final one; the SCA input is "
        "the network's input scored like the output; test metrics are those of the best checkpoint.",
        "",
        _table(JOB_COLUMNS, [job_row(j) for j in jobs]),
    ]
    folders = sorted({j.path.parent for j in jobs} | set(paths))
    for folder in folders:
        table = optuna_table(folder, jobs)
        if table:
            parts += ["", f"## Optuna search `{folder}`", "", table]
    if png_name:
        parts += ["", f"![{MAIN_METRIC} per job and over steps]({png_name})"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------- figure


def render_png(jobs: Sequence[JobResult]) -> bytes:
    """Two panels: the best ``val/psnr_y`` and the test value per job, each with its SCA input (black
    marks), and every
    job's ``val/psnr_y`` curve over training batches. PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(13, 4.8), dpi=100)
    x = list(range(len(jobs)))
    best = [j.value(MAIN_METRIC, "best") for j in jobs]
    test = [j.value("test/psnr_y") for j in jobs]
    sca = [j.value("val/psnr_y_input") for j in jobs]

    def nums(values: list[float | None]) -> list[float]:
        return [v if v is not None and math.isfinite(v) else math.nan for v in values]

    width = 0.38
    bars.bar([i - width / 2 for i in x], nums(best), width, label=f"{MAIN_METRIC} (best)")
    bars.bar([i + width / 2 for i in x], nums(test), width, label="test/psnr_y")
    sca_test = [j.value("test/psnr_y_input") for j in jobs]
    bars.scatter([i - width / 2 for i in x], nums(sca), marker="_", s=300, color="black", zorder=3,
                 label="its SCA input")  # fmt: skip
    bars.scatter([i + width / 2 for i in x], nums(sca_test), marker="_", s=300, color="black", zorder=3)
    finite = [v for v in nums(best) + nums(test) + nums(sca) + nums(sca_test) if not math.isnan(v)]
    if finite:
        bars.set_ylim(min(finite) - 1.0, max(finite) + 1.0)
    labels = [_short_label(j) for j in jobs]
    bars.set_xticks(x, labels, rotation=30 if len(jobs) > 4 else 0, ha="right" if len(jobs) > 4 else "center")
    bars.set_ylabel("Y-PSNR (dB)")
    bars.set_title("per job")
    bars.legend(fontsize=8)
    for job, label in zip(jobs, labels, strict=True):
        series = job.series.get(MAIN_METRIC, [])
        if series:
            marker = "." if len(series) < 30 else None
            curves.plot([s for s, _ in series], [v for _, v in series], marker=marker, label=label)
    curves.set_xlabel("training batches")
    curves.set_ylabel(MAIN_METRIC + " (dB)")
    curves.set_title(f"{MAIN_METRIC} over training")
    if any(job.series.get(MAIN_METRIC) for job in jobs):
        curves.legend(fontsize=7, ncol=2 if len(jobs) > 10 else 1)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _short_label(job: JobResult) -> str:
    tail = " ".join(f"{k.split('.')[-1]}={v}" for k, v in job.overrides.items())
    text = f"{job.label}: {tail}" if tail else f"{job.label}: {job.experiment or ''}"
    return text if len(text) <= 40 else text[:39] + "…"


def write_report(
    paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None, plot: bool = True
) -> tuple[Path, Path | None, list[JobResult]]:
    """Write ``report.md`` (and ``report.png``) into ``out_dir`` (default: the first path). Returns
    (markdown path, png path or None, jobs)."""
    paths = [Path(p) for p in paths]
    jobs = load_jobs(paths)
    out = Path(out_dir) if out_dir is not None else paths[0]
    png = None
    if plot:
        png = atomic_write_bytes(out / REPORT_PNG, render_png(jobs))
    md = atomic_write_text(out / REPORT_MD, render_markdown(paths, jobs, png.name if png else None))
    return md, png, jobs
