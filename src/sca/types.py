"""Result types of the SCA stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


class Segment(NamedTuple):
    """A run of decoded MCUs that share one MCU shift and one DC offset per component.

    ``start_mcu``/``end_mcu``: raster indices [start, end) in the DECODED MCU sequence.
    ``shift_mcus``: decoded index minus true (output) index, so decoded MCU i belongs at i - shift_mcus.
    ``offsets``: per component, in sample units (0..255 scale), the value that was ADDED by the corruption and
    that the compensation subtracts (for the ``paper`` method: per RGB channel, the removed segment mean).
    """

    start_mcu: int
    end_mcu: int
    shift_mcus: int
    offsets: tuple[float, ...]


@dataclass
class Compensated:
    """Output of :func:`src.sca.compensate`.

    rgb: float32 (H, W, 3) in [0, 1] (made from ``rgb8`` on first access when the method gave only that:
    the 25 MB float image of a 2K frame costs ~10 ms and most callers use the 8-bit one).
    trust: float32 (H, W) in [0, 1], 1 = content restored from the bitstream, 0 = filled (thumbnail or
    interpolation). segments: the segmentation in decoded MCU indices. garbage: decoded raster MCU
    ranges [start, end) judged garbage. method: the method that made it (``dc`` when ``dc_thumb`` had
    no thumbnail).
    mcu_source: int64 (mcu_rows * mcu_cols,) decoded MCU shown at each output MCU position (-1:
    filled) and mcu_offsets: float32 (N, ncomp) offset removed there (sample units); None for methods
    without an MCU map.
    rgb8: the same image as uint8 (H, W, 3) when the method renders 8-bit levels (``rgb == rgb8 / 255``
    exactly; saves the caller a float -> uint8 pass), else None.
    thumbnail_fit: for ``dc_thumb`` with a thumbnail, the :class:`src.sca.thumb_check.ThumbFit` that checked
    and aligned it (``method`` is ``dc`` when it was refused; ``thumbnail_fit.reason`` says why).
    """

    _rgb: np.ndarray | None
    trust: np.ndarray
    segments: list[Segment] = field(default_factory=list)
    garbage: list[tuple[int, int]] = field(default_factory=list)
    method: str = "dc_thumb"
    mcu_source: np.ndarray | None = None
    mcu_offsets: np.ndarray | None = None
    rgb8: np.ndarray | None = None
    thumbnail_fit: Any = None  # src.sca.thumb_check.ThumbFit: how the thumbnail was checked (dc_thumb)

    def __post_init__(self) -> None:
        if self._rgb is None and self.rgb8 is None:
            raise ValueError("Compensated needs rgb or rgb8")

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            # one pass: cast to float32 and scale (the same float32 products as astype then *=)
            self._rgb = np.multiply(self.rgb8, np.float32(1.0 / 255.0), dtype=np.float32)
        return self._rgb
