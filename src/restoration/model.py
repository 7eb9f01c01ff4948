"""The GCA model behind one callable: :class:`Restorer` (``restorer(sca, thumb, mask) -> uint8``).

Every path that runs a trained model (``src.eval``, ``src.restore``, the demo) calls it through
:meth:`Restorer.__call__` on full-size arrays; a tiled runner can replace :meth:`Restorer.forward` (same
tensors in, same tensor out) without touching the callers.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from src.gca import GCAGenerator, NetworkConfigError, count_parameters, load_generator
from src.restoration.errors import RestoreError
from src.restoration.inputs import ModelInput
from src.utils.images import to_uint8

log = logging.getLogger(__name__)


def pick_device(device: str | None) -> torch.device:
    """torch.device for ``auto`` (CUDA when available), ``cpu`` or ``cuda[:n]``."""
    if not device or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_tensor_image(img: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 or float -> float32 (C, H, W) in [0, 1] (uint8 divided by 255, as
    ``src.data.batch_to_float`` does); (H, W) -> (1, H, W)."""
    arr = img[:, :, None] if img.ndim == 2 else img
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


@dataclass
class Restorer:
    """A trained GCA generator as a function of arrays: ``restorer(sca, thumb, mask) -> uint8 (H, W, 3)``.

    ``generator``: a ``src.gca.GCAGenerator`` in eval mode on ``device`` (it pads any size itself).
    ``sca_options`` / ``decoder_options``: the SCA and decoder options the model was trained with (from the
    training run's config next to the file, see :func:`load_restorer`), None when unknown; the callers then
    make its input with them. ``source``: the file it was loaded from.
    """

    generator: GCAGenerator
    device: torch.device
    sca_options: dict[str, Any] | None = None
    decoder_options: dict[str, Any] | None = None
    source: str = ""

    @property
    def needs_thumbnail(self) -> bool:
        """Whether the model takes the thumbnail as an input."""
        return bool(self.generator.use_thumbnail)

    def describe(self) -> str:
        """One line: the file, the kind of model, its parameter count and device."""
        n = count_parameters(self.generator)
        return f"{self.source} (GCA generator, {n / 1e6:.2f} M parameters, {self.device})"

    def forward(self, sca: torch.Tensor, thumb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The model on (1, C, H, W) float32 tensors in [0, 1]: the final image (1, 3, H, W) in [0, 1]."""
        with torch.inference_mode():
            return self.generator(sca, thumb, mask)["output"]

    def __call__(self, sca: np.ndarray, thumb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The restored image uint8 (H, W, 3) of ``sca`` float32 (H, W, 3) in [0, 1], ``thumb`` uint8
        (H, W, 3) (the guide thumbnail upsampled to H x W) and ``mask`` float32 (H, W) (uint8 or float
        arrays are taken for any of them); the output is rounded by :func:`src.utils.images.to_uint8`."""
        args = (to_tensor_image(a)[None].to(self.device) for a in (sca, thumb, mask))
        out = self.forward(*args)
        return to_uint8(out[0].float().permute(1, 2, 0).cpu().numpy())

    def run(self, inputs: ModelInput) -> np.ndarray:
        """:meth:`__call__` on a :class:`src.restoration.ModelInput`."""
        return self(inputs.sca, inputs.thumb, inputs.mask)


def run_config(path: Path) -> dict[str, Any] | None:
    """The training run's config of a model file, if any, as plain containers: ``<stem>_config.yaml`` next to
    the file (a shipped model's copy, see ``scripts/ship_model.py``), else ``run_config.yaml`` written by
    ``src.train`` next to the run's ``checkpoints/`` folder."""
    for cand in (
        path.with_name(f"{path.stem}_config.yaml"),
        path.parent / "run_config.yaml",
        path.parent.parent / "run_config.yaml",
    ):
        if cand.is_file():
            return OmegaConf.to_container(OmegaConf.load(cand), resolve=True)  # type: ignore[return-value]
    return None


def load_restorer(path: str | Path, device: str | None = "auto") -> Restorer:
    """A :class:`Restorer` from a Lightning checkpoint of ``src.train`` or a generator exported with
    ``src.gca.export_generator`` (both read by ``src.gca.load_generator``), with the SCA / decoder options of
    its training run when its config is found (:func:`run_config`). Raises :class:`RestoreError` for a
    missing or unusable file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise RestoreError(f"checkpoint {str(path)!r} does not exist")
    dev = pick_device(device)
    try:
        generator = load_generator(p)
    # what torch.load and load_state_dict raise on a file that is not a GCA model (or a damaged one)
    except (NetworkConfigError, OSError, RuntimeError, EOFError, KeyError, pickle.UnpicklingError) as exc:
        raise RestoreError(
            f"{str(p)!r} is neither an exported generator nor a GCA checkpoint of src.train: {exc}"
        ) from exc
    cfg = run_config(p) or {}
    return Restorer(generator.eval().to(dev), dev, cfg.get("sca"), cfg.get("decoder"), source=str(p))
