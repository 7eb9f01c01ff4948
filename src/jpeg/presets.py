"""The decoder presets, defined here once: one options dict per resync strategy of ``decode``.

``conf/decoder/<strategy>.yaml`` extends these (Hydra's config store holds them as
``presets/decoder/<strategy>``, see ``src.utils.hydra_utils.register_presets``), so the YAML only says what
differs; every option of :data:`src.jpeg.decoder.DEFAULT_OPTIONS` is in each preset at its default, so any
can be set on the command line (``decoder.check_range=true``).
"""

from __future__ import annotations

import copy
from typing import Any

from src.jpeg.decoder import DEFAULT_OPTIONS, STRATEGIES
from src.jpeg.errors import JPEGError

DECODER_PRESETS: dict[str, dict[str, Any]] = {
    strategy: {"strategy": strategy, **DEFAULT_OPTIONS} for strategy in STRATEGIES
}


def decoder_preset(strategy: str) -> dict[str, Any]:
    """A copy of the options of decoder ``strategy`` (``decode(data, **decoder_preset(s))``)."""
    if strategy not in DECODER_PRESETS:
        raise JPEGError(f"unknown decoder strategy {strategy!r}; presets: {', '.join(DECODER_PRESETS)}")
    return copy.deepcopy(DECODER_PRESETS[strategy])
