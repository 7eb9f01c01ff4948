"""Presets live in code (src.corruption.presets): the Hydra YAML files are their generated mirror, and
``Corruptor.from_preset`` works from an installed package without any ``conf/`` folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.corruption import PRESETS, Corruptor
from src.corruption.presets import preset_yaml, write_mirror

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def test_yaml_files_are_the_generated_mirror_of_the_presets():
    yaml_names = {p.stem for p in (CONF / "corruption").glob("*.yaml")}
    assert yaml_names == set(PRESETS)
    stale = write_mirror(CONF / "corruption", check=True)
    assert stale == [], f"run `python -m src.corruption conf/corruption` (stale: {stale})"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_hydra_builds_each_preset_as_from_preset(name):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="corrupt", overrides=[f"corruption={name}"])
    built = instantiate(cfg.corruption)
    assert built.settings() == Corruptor.from_preset(name).settings() == Corruptor(**PRESETS[name]).settings()


def test_a_changed_preset_makes_the_mirror_stale(tmp_path, monkeypatch):
    write_mirror(tmp_path)
    assert write_mirror(tmp_path, check=True) == []
    monkeypatch.setitem(PRESETS, "paper", PRESETS["paper"] | {"ber": 2e-5})
    assert write_mirror(tmp_path, check=True) == ["paper.yaml"]
    (tmp_path / "old_preset.yaml").write_text("_target_: src.corruption.Corruptor\n")
    assert "old_preset.yaml" in write_mirror(tmp_path, check=True)
    assert "ber: 2.0e-05" in preset_yaml("paper")


def test_corruptor_defaults_are_the_paper_preset():
    assert Corruptor().settings() == Corruptor.from_preset("paper").settings()


def test_from_preset_needs_no_conf_folder(tmp_path, coffee):
    """What a wheel holds (``src*`` only): presets, a corruption and the mirror CLI work from there."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (tmp_path / "conf").exists()
    code = (
        "import json, numpy as np\n"
        "from src.corruption import Corruptor, PRESETS\n"
        "rgb = np.load('photo.npy')\n"
        "out = {n: Corruptor.from_preset(n, ber=1e-4).corrupt(rgb, 1).corrupted_jpeg.hex()[:4000]"
        " for n in PRESETS}\n"
        "print(json.dumps(out))\n"
    )
    import numpy as np

    np.save(tmp_path / "photo.npy", coffee[:128, :256])
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    for name in PRESETS:
        assert (
            got[name]
            == Corruptor.from_preset(name, ber=1e-4)
            .corrupt(coffee[:128, :256], 1)
            .corrupted_jpeg.hex()[:4000]
        )
    cli = subprocess.run(
        [sys.executable, "-m", "src.corruption", "mirror"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and len(list((tmp_path / "mirror").glob("*.yaml"))) == len(PRESETS)


def test_unknown_preset_and_setting():
    from src.corruption import CorruptionError

    with pytest.raises(
        CorruptionError, match=r"unknown corruption preset 'nope'; known presets: \['android_fde'"
    ):
        Corruptor.from_preset("nope")
    with pytest.raises(CorruptionError, match=r"unknown Corruptor setting\(s\) \['colour'\]"):
        Corruptor.from_preset("paper", colour=1)


def test_presets_are_not_shared_mutable_state():
    from src.corruption import preset_settings

    preset_settings("truncated")["truncate"].append(0.5)
    assert PRESETS["truncated"]["truncate"] == [0.0, 1.0]
