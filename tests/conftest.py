"""Shared fixtures: real photos from scikit-image, wandb disabled."""

from __future__ import annotations

import os

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("HYDRA_FULL_ERROR", "1")

import numpy as np
import pytest


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
