"""SCA and decoder presets: defined once in code, extended by conf/sca and conf/decoder, usable without
conf/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from test_configs import CONF, ROOT, compose_config

from src.jpeg.presets import DECODER_PRESETS
from src.sca.presets import SCA_PRESETS, sca_preset


@pytest.mark.parametrize("method", sorted(SCA_PRESETS))
def test_sca_group_is_the_code_preset(method: str, tmp_path: Path) -> None:
    cfg = compose_config("restore", ["input=x.jpg", f"sca={method}"], tmp_path)
    assert OmegaConf.to_container(cfg.sca, resolve=True) == SCA_PRESETS[method]


@pytest.mark.parametrize("strategy", sorted(DECODER_PRESETS))
def test_decoder_group_is_the_code_preset(strategy: str, tmp_path: Path) -> None:
    cfg = compose_config("restore", ["input=x.jpg", f"decoder={strategy}"], tmp_path)
    assert OmegaConf.to_container(cfg.decoder, resolve=True) == DECODER_PRESETS[strategy]


def test_every_group_option_has_a_preset_and_every_tunable_is_overridable(tmp_path: Path) -> None:
    assert {p.stem for p in (CONF / "sca").glob("*.yaml")} == set(SCA_PRESETS)
    assert {p.stem for p in (CONF / "decoder").glob("*.yaml")} == set(DECODER_PRESETS)
    cfg = compose_config("restore", ["input=x.jpg", "sca.max_shift=8", "decoder.check_range=true"], tmp_path)
    assert cfg.sca.max_shift == 8 and cfg.decoder.check_range is True
    assert sca_preset("dc_thumb")["max_shift"] == 12  # a copy: the override did not reach the code


def test_presets_load_without_the_conf_folder(tmp_path: Path) -> None:
    """An installed wheel holds ``src`` only: the presets (what eval's SCA rows and the restoration path use)
    load without conf/."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "from src.sca.presets import sca_preset; from src.jpeg.presets import decoder_preset; "
        "from src.restoration import prepare; "
        "assert sca_preset('dc')['max_extend'] == 0 and decoder_preset('paper')['strategy'] == 'paper'; "
        "print(sca_preset('dc_thumb')['method'])"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "dc_thumb" and not (tmp_path / "conf").exists()
