"""SCA: self-compensation and alignment of robust JPEG decodes (colour casts and MCU shifts).

``compensate(decoded, thumbnail=None, method="dc_thumb") -> Compensated``; methods in ``SCA_METHODS``.
numpy + numba only (no torch, no Hydra).
"""

from src.sca.compensate import SCA_METHODS, compensate
from src.sca.errors import SCAError
from src.sca.types import Compensated, Segment

__all__ = ["SCA_METHODS", "Compensated", "SCAError", "Segment", "compensate"]
