"""The GCA model behind one callable: :class:`Restorer` (``restorer(sca, thumb, mask) -> uint8``).

Every path that runs a trained model (``src.eval``, ``src.restore``, the demo) calls it through
:meth:`Restorer.__call__` on full-size arrays. :meth:`Restorer.forward` runs the generator whole or by tiles
(``tile``: :func:`src.gca.tiling.tiled_forward`, bounded memory, the same image up to float rounding), on
``device``, in float32 or under bf16 / fp16 autocast (``precision``). The entry points pass their config's
``device`` / ``precision`` / ``tile`` / ``tile_overlap`` / ``tile_batch`` through :func:`inference_options`.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from src.gca import GCAGenerator, NetworkConfigError, count_parameters, load_generator
from src.gca.tiling import TileSettings, TilingError, tiled_forward
from src.restoration.errors import RestoreError
from src.restoration.inputs import ModelInput
from src.utils.images import to_uint8

log = logging.getLogger(__name__)


#: ``precision`` values: autocast dtype (None = float32)
PRECISIONS: dict[str, torch.dtype | None] = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}
#: the config keys :func:`inference_options` reads (``tile: null`` = untiled)
INFERENCE_OPTIONS = ("device", "precision", "tile", "tile_overlap", "tile_batch")


def pick_device(device: str | torch.device | None) -> torch.device:
    """torch.device for ``auto`` (CUDA when available), ``cpu`` or ``cuda[:n]``; :class:`RestoreError` for
    another value or a CUDA device that is not there."""
    if isinstance(device, torch.device):
        return device
    if not device or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise RestoreError(f"device must be auto, cpu or cuda[:N]; got {device!r}")
    if dev.type == "cuda" and (
        not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()
    ):
        raise RestoreError(f"device={device} but this machine has no such CUDA device (use auto or cpu)")
    return dev


def check_precision(precision: Any, device: torch.device) -> str:
    """``precision`` as a key of :data:`PRECISIONS` (``32`` float32, ``bf16``, ``16`` fp16: CUDA only);
    :class:`RestoreError` for another value or one the device cannot run."""
    key = str(precision).strip().lower().removesuffix("-mixed").removesuffix("-true")
    key = {"fp32": "32", "float32": "32", "bfloat16": "bf16", "fp16": "16", "float16": "16"}.get(key, key)
    if key not in PRECISIONS:
        raise RestoreError(f"precision must be 32, bf16 or 16; got {precision!r}")
    if key == "16" and device.type != "cuda":
        raise RestoreError("precision=16 (fp16) needs a CUDA device; on CPU use 32 or bf16")
    if key == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RestoreError(
            f"precision=bf16 is not supported by {torch.cuda.get_device_name(device)}; use 32 or 16"
        )
    return key


def tile_settings(tile: Any, tile_overlap: Any = None, tile_batch: Any = 1) -> TileSettings | None:
    """The :class:`~src.gca.tiling.TileSettings` of the ``tile`` options (None: untiled, for ``tile`` null
    or 0); ``tile_overlap`` null / ``auto`` = exact; :class:`RestoreError` for a bad value."""
    if tile in (None, 0, "null", "none") or tile is False:
        return None
    overlap = None if tile_overlap in (None, "auto") else tile_overlap
    try:
        return TileSettings(tile=tile, overlap=overlap, batch=tile_batch)
    except TilingError as exc:
        raise RestoreError(str(exc)) from exc


def inference_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`load_restorer` found in an entry point's config (the keys of
    :data:`INFERENCE_OPTIONS` that it has)."""
    return {k: cfg[k] for k in INFERENCE_OPTIONS if k in cfg}


def to_tensor_image(img: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 or float -> float32 (C, H, W) in [0, 1] (uint8 divided by 255, as
    ``src.data.batch_to_float`` does); (H, W) -> (1, H, W)."""
    arr = img[:, :, None] if img.ndim == 2 else img
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


def tensor_view(img: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) array -> a (1, C, H, W) tensor sharing its memory (no copy, same dtype; the tiled
    runner converts crops: uint8 / 255 as :func:`to_tensor_image`)."""
    arr = img[:, :, None] if img.ndim == 2 else img
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


@dataclass
class Restorer:
    """A trained GCA generator as a function of arrays: ``restorer(sca, thumb, mask) -> uint8 (H, W, 3)``.

    ``generator``: a ``src.gca.GCAGenerator`` in eval mode on ``device`` (it pads any size itself).
    ``sca_options`` / ``decoder_options``: the SCA and decoder options the model was trained with (from the
    training run's config next to the file, see :func:`load_restorer`), None when unknown; the callers then
    make its input with them. ``source``: the file it was loaded from. ``precision``: ``32``, ``bf16`` or
    ``16`` (autocast; see :func:`check_precision`). ``tile``: None = the whole image at once, else the tile
    side in pixels (:class:`src.gca.tiling.TileSettings`, with ``tile_overlap`` (None = exact) and
    ``tile_batch``); bad values raise :class:`RestoreError`.
    """

    generator: GCAGenerator
    device: torch.device
    sca_options: dict[str, Any] | None = None
    decoder_options: dict[str, Any] | None = None
    source: str = ""
    precision: str = "32"
    tile: int | None = None
    tile_overlap: int | None = None
    tile_batch: int = 1

    def __post_init__(self) -> None:
        self.device = pick_device(self.device)
        self.precision = check_precision(self.precision, self.device)
        self.tiling = tile_settings(self.tile, self.tile_overlap, self.tile_batch)
        #: what the last tiled forward did (:func:`src.gca.tiling.tiled_forward`'s ``report``)
        self.last_report: dict[str, Any] = {}

    def autocast(self) -> AbstractContextManager[Any]:
        """The autocast context of ``precision`` (a no-op for ``32``)."""
        dtype = PRECISIONS[self.precision]
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    @property
    def needs_thumbnail(self) -> bool:
        """Whether the model takes the thumbnail as an input."""
        return bool(self.generator.use_thumbnail)

    def describe(self) -> str:
        """One line: the file, the kind of model, its parameter count and device."""
        n = count_parameters(self.generator)
        run = [] if self.precision == "32" else [f"precision {self.precision}"]
        run.append("untiled" if self.tiling is None else f"tiles of {self.tiling.tile} px")
        return f"{self.source} (GCA generator, {n / 1e6:.2f} M parameters, {self.device}); {', '.join(run)}"

    def forward(self, sca: torch.Tensor, thumb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The model on (1, C, H, W) float32 tensors in [0, 1]: the final image (1, 3, H, W) float32 in
        [0, 1], whole or by tiles (``tile``)."""
        with torch.inference_mode():
            if self.tiling is None:
                with self.autocast():
                    return self.generator(sca, thumb, mask)["output"].float()
            autocast: Callable[[], AbstractContextManager[Any]] = self.autocast
            self.last_report = {}
            return tiled_forward(self.generator, sca, thumb, mask, self.tiling, autocast, self.last_report)

    def __call__(self, sca: np.ndarray, thumb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The restored image uint8 (H, W, 3) of ``sca`` float32 (H, W, 3) in [0, 1], ``thumb`` uint8
        (H, W, 3) (the guide thumbnail upsampled to H x W) and ``mask`` float32 (H, W) (uint8 or float
        arrays are taken for any of them); the output is rounded by :func:`src.utils.images.to_uint8`."""
        if self.tiling is not None and self.device.type == "cpu":
            args = [tensor_view(a) for a in (sca, thumb, mask)]  # no full-size float copies
        else:
            args = [to_tensor_image(a)[None].to(self.device) for a in (sca, thumb, mask)]
        out = self.forward(*args)
        del args
        img = out[0].permute(1, 2, 0)
        res = np.empty(img.shape, np.uint8)
        rows = max(1, (1 << 22) // max(1, img.shape[1] * img.shape[2]))  # 16 MB float chunks
        for r in range(0, img.shape[0], rows):
            res[r : r + rows] = to_uint8(img[r : r + rows].float().cpu().numpy())
        return res

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


def load_restorer(
    path: str | Path,
    device: str | None = "auto",
    precision: Any = "32",
    tile: int | None = None,
    tile_overlap: int | None = None,
    tile_batch: int = 1,
) -> Restorer:
    """A :class:`Restorer` from a Lightning checkpoint of ``src.train`` or a generator exported with
    ``src.gca.export_generator`` (both read by ``src.gca.load_generator``), with the SCA / decoder options of
    its training run when its config is found (:func:`run_config`). ``device``: ``auto`` / ``cpu`` /
    ``cuda[:N]``; ``precision``, ``tile``, ``tile_overlap``, ``tile_batch``: see :class:`Restorer`. Raises
    :class:`RestoreError` for a missing or unusable file or a bad option."""
    dev = pick_device(device)
    check_precision(precision, dev)
    tile_settings(tile, tile_overlap, tile_batch)
    p = Path(path).expanduser()
    if not p.is_file():
        raise RestoreError(f"checkpoint {str(path)!r} does not exist")
    try:
        generator = load_generator(p)
    # what torch.load and load_state_dict raise on a file that is not a GCA model (or a damaged one)
    except (NetworkConfigError, OSError, RuntimeError, EOFError, KeyError, pickle.UnpicklingError) as exc:
        raise RestoreError(
            f"{str(p)!r} is neither an exported generator nor a GCA checkpoint of src.train: {exc}"
        ) from exc
    cfg = run_config(p) or {}
    return Restorer(
        generator.eval().to(dev),
        dev,
        cfg.get("sca"),
        cfg.get("decoder"),
        source=str(p),
        precision=precision,
        tile=tile,
        tile_overlap=tile_overlap,
        tile_batch=tile_batch,
    )
