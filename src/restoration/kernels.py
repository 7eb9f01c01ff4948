"""Compile (or load from numba's disk cache) the decoder and SCA kernels before the first real file, so a tool
can say so first and its progress bar measures files, not the JIT."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

#: what the tools print before the first compile
ANNOUNCE = (
    "preparing the numba decoder / SCA kernels: compiled on first use (about 20 s on an idle machine in a "
    "fresh checkout, minutes on a busy one), loaded from the disk cache afterwards (about 1 s) ..."
)


def warm_up(decoder_options: Mapping[str, Any], sca_options: Mapping[str, Any]) -> float:
    """Run the decoder with ``decoder_options`` and SCA with ``sca_options`` (the kernels a run needs, no
    others) on a small corrupted noise texture (256x128, paper preset at BER 1e-3, so the resync paths run).
    Returns seconds."""
    from src.corruption import Corruptor
    from src.restoration.inputs import prepare

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)
    sample = Corruptor.from_preset("paper", ber=1e-3).corrupt(texture, 0)
    result = prepare(sample.corrupted_jpeg, dict(decoder_options), dict(sca_options))
    result.decoded.to_rgb(clip=True)
    return time.perf_counter() - t0
