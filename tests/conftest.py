"""Shared fixtures: real photos from scikit-image, wandb disabled, one torch thread, numba kernels warmed
once per session."""

from __future__ import annotations

import os

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("HYDRA_FULL_ERROR", "1")
# one intra-op thread (here and in the tools' subprocesses): the tests' tensors are small, and a 2-thread
# OpenMP pool on a busy 2-core machine spins at every barrier (12 Adam steps of a 0.15 M-parameter net: 39 s
# instead of 2.7 s under load); set OMP_NUM_THREADS to change it
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest

from src.corruption import Corruptor
from src.data.pipeline import PipelineSettings, make_sample
from src.sca.presets import sca_preset


@pytest.fixture(scope="session", autouse=True)
def numba_kernels() -> None:
    """Compile (fresh checkout) or load (later runs, from ``__pycache__``) the decoder and SCA kernels once,
    before the first test: one sample of the real pipeline on a noise texture at BER 1e-3, so the resync
    paths and every SCA method's kernels run. Tests then time and fail on their own work only."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)
    corruptor = Corruptor.from_preset("paper", ber=1e-3)
    for method in ("dc", "dc_thumb", "paper", "none"):
        make_sample(
            texture, corruptor, 0, PipelineSettings(corruption_size=None, scale=None, sca=sca_preset(method))
        )


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """512x512x3 uint8 RGB (NASA, public domain)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    """400x600x3 uint8 RGB (CC0)."""
    from skimage import data

    return data.coffee()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """300x451x3 uint8 RGB (CC0): odd width, exercises partial MCUs."""
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """512x512 uint8 grayscale (CC0)."""
    from skimage import data

    return data.camera()
