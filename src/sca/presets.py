"""The SCA presets, defined here once: one options dict per method of ``compensate``.

``conf/sca/<method>.yaml`` extends these (Hydra's config store holds them as ``presets/sca/<method>``, see
``src.utils.hydra_utils.register_presets``), so the YAML only says what differs; library code (``src.eval``'s
SCA rows, ``src.restoration``) reads them here and never reads ``conf/``.

The tunables of ``dc`` / ``dc_thumb`` are every field of :class:`SegmentParams` and :class:`RefitParams` at
its code default, so any of them can be set on the command line (``sca.max_shift=8``); tuples are given as
lists (what Hydra holds; ``compensate`` turns lists back into tuples).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from src.sca.errors import SCAError
from src.sca.refit import RefitParams
from src.sca.segment import SegmentParams


def _defaults(params: type) -> dict[str, Any]:
    """The fields of a tunables record (a dataclass) at their defaults, tuples as lists."""
    out = {}
    for f in dataclasses.fields(params):
        value = f.default
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


#: ablation switches of ``compensate`` (all on by default)
_SWITCHES = {
    "refit": True,
    "detect_garbage": True,
    "end_check": True,
    "offset_steps": True,
    "first_row": True,
}
_TUNABLES = {**_defaults(SegmentParams), **_defaults(RefitParams), **_SWITCHES}

SCA_PRESETS: dict[str, dict[str, Any]] = {
    # no compensation: the robust decode, clipped (the paper's "robust decoder" row)
    "none": {"method": "none", "upsample": "fancy"},
    # the Two-ACIR SCA, reimplemented for ablations (src/sca/paper.py)
    "paper": {"method": "paper", "upsample": "fancy"},
    # ours, self-only: online segmentation, joint offset refit, garbage judged by continuity, interpolation
    # fill; no garbage-run MCUs given back to segments (the judge is not reliable enough without a thumbnail)
    "dc": {"method": "dc", "upsample": "fancy", **_TUNABLES, "max_extend": 0},
    # ours with the header thumbnail as an absolute anchor (offsets, segmentation residual, garbage judge,
    # fill); without a thumbnail it runs as dc (with these options) and reports method "dc"
    "dc_thumb": {"method": "dc_thumb", "upsample": "fancy", **_TUNABLES, "max_extend": 8},
}


def sca_preset(method: str) -> dict[str, Any]:
    """A copy of the options of SCA ``method`` (``compensate(decoded, thumbnail, **sca_preset(m))``)."""
    if method not in SCA_PRESETS:
        raise SCAError(f"unknown SCA method {method!r}; presets: {', '.join(SCA_PRESETS)}")
    return copy.deepcopy(SCA_PRESETS[method])
