"""``python -m src.report``: the report of a real run folder (fast, one in-process ``debug=limit`` run), clear
errors; the multirun grid and the Optuna search are reported in tests/test_sweeps.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_configs import SMALL_DATA, compose_config

from src.report import main as report_main
from src.train import train
from src.utils.run_files import read_metrics
from src.utils.run_report import JOB_COLUMNS, load_jobs


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    overrides = ["experiment=gca_refine", "model=gca_refine_small", *SMALL_DATA, "trainer=cpu", "debug=limit"]
    overrides += ["logger=csv", "seed=7", "extras.print_config=false"]
    train(compose_config("train", overrides, run))
    return run


def test_report_of_a_run_folder(run_dir: Path, capsys) -> None:
    assert report_main([str(run_dir)]) == 0
    md = (run_dir / "report.md").read_text()
    png = (run_dir / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    table = [line for line in md.splitlines() if line.startswith("| ")]
    header, row = (table[0], table[1]) if "---" not in table[1] else (table[0], table[2])
    cells = dict(zip(JOB_COLUMNS, [c.strip() for c in row.strip("|").split(" | ")], strict=True))
    assert header.count("|") == len(JOB_COLUMNS) + 1
    # the numbers are those of the run's own files
    series = read_metrics(run_dir / "metrics.csv")["val/psnr_y"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(series) == 3  # debug=limit: 3 epochs, a validation after each
    assert cells["val/psnr_y best"] == f"{max(v for _, v in series):.2f}"
    assert cells["val/psnr_y last"] == f"{series[-1][1]:.2f}"
    assert cells["test/psnr_y"] == f"{summary['metrics']['test/psnr_y']:.2f}"
    assert cells["SCA input test/psnr_y"] == f"{summary['metrics']['test/psnr_y_input']:.2f}"
    assert cells["epochs"] == "3" and cells["batches"] == "3" and cells["status"] == "finished"
    assert cells["experiment"] == "gca_refine" and "seed=7" in cells["overrides"]
    assert float(cells["batches/s"]) > 0
    assert "1 job(s)" in capsys.readouterr().out


def test_report_reads_a_run_killed_before_its_summary(run_dir: Path, tmp_path: Path) -> None:
    """Only metrics.csv and .hydra/ (killed before the first summary): best / last still come out."""
    import shutil

    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(run_dir / "metrics.csv", killed / "metrics.csv")
    (job,) = load_jobs([killed])
    assert job.status == "killed?" and job.value("val/psnr_y", "best") is not None and job.batches == 3


def test_report_without_runs_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert report_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("src.report: no run folder") and "\n" not in err
