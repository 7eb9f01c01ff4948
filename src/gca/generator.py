"""The full GCA generator (coarse pix2pixHD + optional refine pyramid), its inputs, and compact export files.

:class:`GCAGenerator` owns the input conventions, so training, evaluation and ``restore`` agree:

- inputs are float ``(B, 3, H, W)`` RGB in [0, 1]: ``sca`` (SCA output), ``thumb`` (the thumbnail bicubic-
  upsampled to H x W), ``mask`` ``(B, 1, H, W)`` SCA trust in [0, 1] (1 = trusted);
- inside the networks everything is mapped to [-1, 1] (the paper's normalisation, mask included);
- the coarse input is ``[sca | thumb] (+ mask)``; the refine base is ``thumb`` area-downsampled to the base
  level;
- our variant (both off in the paper): ``refine_inputs`` appends ``sca``, ``mask`` and / or ``thumb``
  (area-downsampled) to every refine level's CNN input, and ``refine_residual`` makes every refine level a
  correction of the SCA image (level k = pyramid_k + sca bicubic-halved k times), so an untrained refine net
  starts from its input instead of from grey.

Export files (``export_generator`` / ``load_generator``): one ``torch.save`` dict with the networks'
constructor arguments, the input flags and the weights, readable with ``weights_only=True``. Weight formats
(``dtype``): ``bfloat16`` (default, 2 bytes a weight), ``float32``, or ``"int8"``: weight-only int8 with
per-output-channel symmetric scales for every conv weight (1 byte a weight + one fp32 scale per output
channel; the ``gca_refine`` generator, 18.1 M parameters, is about 18 MB instead of 36 MB in bf16), biases and
other small tensors kept in float32; :func:`load_generator` dequantises to float32.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.gca.networks import CoarseGenerator, NetworkConfigError
from src.gca.refine import RefinePyramid, build_image_pyramid
from src.utils import atomic_write_bytes

__all__ = [
    "EXPORT_DTYPES",
    "EXPORT_FORMAT",
    "REFINE_INPUTS",
    "GCAGenerator",
    "GeneratorOutput",
    "build_generator",
    "dequantize_int8",
    "export_generator",
    "load_generator",
    "quantize_int8",
]

EXPORT_FORMAT = "bitstream-restore/gca-generator/1"
REFINE_INPUTS = ("sca", "mask", "thumb")
#: export weight formats: name -> storage dtype of float tensors ("int8": quantised conv weights)
EXPORT_DTYPES: dict[str, torch.dtype | None] = {
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "int8": None,
}
#: conv weights with fewer elements than this stay float32 in an int8 export (e.g. the 3x3x3x3 thumbnail conv)
INT8_MIN_NUMEL = 1024

NetOrFactory = nn.Module | Callable[..., nn.Module]


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1] (not clamped)."""
    return (x + 1.0) * 0.5


class GeneratorOutput(dict):
    """Training-time outputs, all in [-1, 1]: ``x_in`` (the coarse/D conditioning input), ``coarse``,
    ``levels`` (refine outputs, base first; empty without refine), ``refined`` (``levels[-1]`` or None);
    ``gates``: with ``mask_gate``, the gate of every level (``(B, 1, h, w)`` in [0, 1], base first; else
    empty)."""


class GCAGenerator(nn.Module):
    """Coarse generator + optional refine pyramid with their input conventions (see the module docstring)."""

    def __init__(
        self,
        coarse: CoarseGenerator,
        refine: RefinePyramid | None = None,
        use_thumbnail: bool = True,
        use_mask: bool = False,
        refine_inputs: Sequence[str] = (),
        refine_residual: bool = False,
        mask_gate: int = 0,
    ) -> None:
        super().__init__()
        refine_inputs = tuple(refine_inputs)
        bad = [r for r in refine_inputs if r not in REFINE_INPUTS]
        if bad:
            raise NetworkConfigError(f"refine_inputs {bad} not supported; allowed: {REFINE_INPUTS}")
        self.use_thumbnail, self.use_mask, self.refine_inputs = use_thumbnail, use_mask, refine_inputs
        self.refine_residual = bool(refine_residual)
        self.mask_gate = int(mask_gate)
        if self.mask_gate and not (self.refine_residual and refine is not None):
            raise NetworkConfigError("mask_gate needs a refine net with refine_residual=True")
        if self.mask_gate < 0:
            raise NetworkConfigError(f"mask_gate must be >= 0 (pixels of dilation), got {mask_gate}")
        want = self.coarse_in_channels(use_thumbnail, use_mask)
        if coarse.in_channels != want:
            raise NetworkConfigError(
                f"coarse generator has in_channels={coarse.in_channels}, but use_thumbnail={use_thumbnail}, "
                f"use_mask={use_mask} give {want}"
            )
        if refine is not None:
            extra = self.refine_extra_channels(refine_inputs)
            if refine.extra_channels != extra:
                raise NetworkConfigError(
                    f"refine net has extra_channels={refine.extra_channels}, but "
                    f"refine_inputs={refine_inputs} give {extra}"
                )
            if (refine.use_thumbnail or "thumb" in refine_inputs) and not use_thumbnail:
                raise NetworkConfigError("the refine net uses the thumbnail but use_thumbnail=False")
        self.coarse, self.refine = coarse, refine

    @staticmethod
    def coarse_in_channels(use_thumbnail: bool, use_mask: bool) -> int:
        return 3 + 3 * bool(use_thumbnail) + bool(use_mask)

    @staticmethod
    def refine_extra_channels(refine_inputs: Sequence[str]) -> int:
        return sum(1 if r == "mask" else 3 for r in refine_inputs)

    @property
    def required_multiple(self) -> int:
        """H and W of training inputs must be multiples of this (``forward`` pads any size)."""
        m = self.coarse.required_multiple
        return max(m, self.refine.required_multiple) if self.refine is not None else m

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this generator (constructor arguments, plain JSON-able values)."""
        return {
            "coarse": dict(self.coarse.config),
            "refine": None if self.refine is None else dict(self.refine.config),
            "use_thumbnail": self.use_thumbnail,
            "use_mask": self.use_mask,
            "refine_inputs": list(self.refine_inputs),
            "refine_residual": self.refine_residual,
            "mask_gate": self.mask_gate,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> GCAGenerator:
        refine = None if spec.get("refine") is None else RefinePyramid(**spec["refine"])
        return cls(
            CoarseGenerator(**spec["coarse"]),
            refine,
            use_thumbnail=spec["use_thumbnail"],
            use_mask=spec["use_mask"],
            refine_inputs=spec.get("refine_inputs", ()),
            refine_residual=spec.get("refine_residual", False),
            mask_gate=spec.get("mask_gate", 0),
        )

    def _check_inputs(self, sca: Tensor, thumb: Tensor | None, mask: Tensor | None) -> None:
        if sca.ndim != 4 or sca.shape[1] != 3:
            raise NetworkConfigError(f"sca must be (B, 3, H, W); got {tuple(sca.shape)}")
        if self.use_thumbnail and (thumb is None or thumb.shape != sca.shape):
            found = None if thumb is None else tuple(thumb.shape)
            raise NetworkConfigError(
                f"use_thumbnail=True needs thumb of shape {tuple(sca.shape)}; got {found}"
            )
        if (self.use_mask or "mask" in self.refine_inputs or self.mask_gate) and (
            mask is None or mask.shape != (sca.shape[0], 1, *sca.shape[-2:])
        ):
            found = None if mask is None else tuple(mask.shape)
            raise NetworkConfigError(f"this generator needs mask of shape (B, 1, H, W); got {found}")

    def run(self, sca: Tensor, thumb: Tensor | None = None, mask: Tensor | None = None) -> GeneratorOutput:
        """Training forward on valid sizes (multiples of :attr:`required_multiple`); outputs in [-1, 1]."""
        self._check_inputs(sca, thumb, mask)
        parts = [to_signed(sca)]
        if self.use_thumbnail:
            parts.append(to_signed(thumb))
        if self.use_mask:
            parts.append(to_signed(mask))
        x_in = torch.cat(parts, dim=1)
        coarse = self.coarse(x_in)
        levels, gates = self.refine_levels(coarse, sca, thumb, mask) if self.refine is not None else ([], [])
        return GeneratorOutput(
            x_in=x_in, coarse=coarse, levels=levels, refined=levels[-1] if levels else None, gates=gates
        )

    def refine_levels(
        self, coarse: Tensor, sca: Tensor, thumb: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """(refine levels, gates) of :meth:`run`, base first, in [-1, 1], from the coarse image ``coarse``
        ``(B, 3, H, W)`` in [-1, 1] and the inputs in [0, 1] at the same size (H, W multiples of
        :attr:`required_multiple`); gates empty without ``mask_gate``. Every operation is local (convs,
        area / bicubic halving, max pooling), so a crop aligned to ``2 ** (levels - 1)`` with enough context
        gives the same values inside it (``src.gca.tiling``)."""
        assert self.refine is not None
        h, w = sca.shape[-2:]
        thumb_base = None
        if self.refine.use_thumbnail:
            thumb_base = F.adaptive_avg_pool2d(to_signed(thumb), self.refine.base_size(h, w))
        extra = None
        if self.refine_inputs:
            named = {"sca": sca, "mask": mask, "thumb": thumb}
            extra = torch.cat([to_signed(named[r]) for r in self.refine_inputs], dim=1)
        levels = self.refine(coarse, thumb_base, extra)
        gates: list[Tensor] = []
        if self.refine_residual:
            skips = build_image_pyramid(to_signed(sca), len(levels))
            if self.mask_gate:
                gates = self.gate_pyramid(mask, len(levels))
                levels = [s + g * y for y, s, g in zip(levels, skips, gates, strict=True)]
            else:
                levels = [y + s for y, s in zip(levels, skips, strict=True)]
        return levels, gates

    def gate_pyramid(self, mask: Tensor, levels: int) -> list[Tensor]:
        """Where the refine levels may correct the SCA image, base level first, ``(B, 1, h, w)`` in [0, 1].

        The untrusted area ``1 - mask`` dilated by ``mask_gate`` pixels (so seams around filled MCUs can be
        corrected too), then area-halved per level. Trusted content is passed through exactly: SCA already
        restores it bit-exactly, and any change there can only cost PSNR.
        """
        k = self.mask_gate
        gate = F.max_pool2d(1.0 - mask, kernel_size=2 * k + 1, stride=1, padding=k)
        out = [gate]
        for _ in range(levels - 1):
            out.append(F.avg_pool2d(out[-1], 2))
        return out[::-1]

    def forward(
        self, sca: Tensor, thumb: Tensor | None = None, mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Inference on any size: pads (replicate) to :attr:`required_multiple`, runs, crops back.

        Returns ``{"coarse": ..., "refined": ...}`` float ``(B, 3, H, W)`` in [0, 1] (clamped); ``refined`` is
        the coarse image when there is no refine net, and ``"output"`` is the final image either way.
        """
        h, w = sca.shape[-2:]
        m = self.required_multiple
        ph, pw = (-h) % m, (-w) % m

        def pad(x: Tensor | None) -> Tensor | None:
            return None if x is None or not (ph or pw) else F.pad(x, (0, pw, 0, ph), mode="replicate")

        if ph or pw:
            sca, thumb, mask = pad(sca), pad(thumb), pad(mask)
        out = self.run(sca, thumb, mask)
        coarse = to_unit(out["coarse"])[..., :h, :w].clamp(0.0, 1.0)
        final = coarse if out["refined"] is None else to_unit(out["refined"])[..., :h, :w].clamp(0.0, 1.0)
        return {"coarse": coarse, "refined": final, "output": final}


def _instantiate(net: NetOrFactory, **kwargs: Any) -> nn.Module:
    """A ready module is returned as is; a factory (e.g. a Hydra ``_partial_``) is called with ``kwargs``."""
    return net if isinstance(net, nn.Module) else net(**kwargs)


def build_generator(
    coarse: NetOrFactory,
    refine: NetOrFactory | None = None,
    use_thumbnail: bool = True,
    use_mask: bool = False,
    refine_inputs: Sequence[str] = (),
    refine_residual: bool = False,
    mask_gate: int = 0,
) -> GCAGenerator:
    """Build a :class:`GCAGenerator`; factories get ``in_channels`` / ``extra_channels`` / ``use_thumbnail``
    from the input flags, so a Hydra config states the flags once."""
    c = _instantiate(coarse, in_channels=GCAGenerator.coarse_in_channels(use_thumbnail, use_mask))
    r = None
    if refine is not None:
        r = _instantiate(
            refine,
            extra_channels=GCAGenerator.refine_extra_channels(refine_inputs),
            use_thumbnail=use_thumbnail,
        )
    return GCAGenerator(c, r, use_thumbnail, use_mask, refine_inputs, refine_residual, mask_gate)


def _export_dtype(dtype: torch.dtype | str) -> tuple[str, torch.dtype | None]:
    """(name, float storage dtype or None for int8) of an export ``dtype`` argument."""
    key = str(dtype).removeprefix("torch.")
    if key not in EXPORT_DTYPES:
        raise NetworkConfigError(f"export dtype {dtype!r} is not supported; allowed: {sorted(EXPORT_DTYPES)}")
    float_dtype = EXPORT_DTYPES[key]
    return ("int8" if float_dtype is None else str(float_dtype).removeprefix("torch.")), float_dtype


def quantize_int8(weight: Tensor, axis: int = 0) -> tuple[Tensor, Tensor]:
    """Symmetric per-channel int8 quantisation of ``weight`` along ``axis`` (the output channels).

    Returns ``(q, scale)``: ``q`` int8 of ``weight``'s shape in [-127, 127], ``scale`` float32 of shape
    ``(weight.shape[axis],)`` with ``weight ~= q * scale`` (broadcast along ``axis``); a channel of zeros gets
    scale 1 (its q is 0). The error per element is at most ``scale / 2`` = max|w| of its channel / 254.
    """
    w = weight.detach().float().movedim(axis, 0)
    amax = w.abs().reshape(w.shape[0], -1).amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = (w / scale.view(-1, *[1] * (w.ndim - 1))).round().clamp(-127, 127).to(torch.int8)
    return q.movedim(0, axis).contiguous(), scale


def dequantize_int8(q: Tensor, scale: Tensor, axis: int = 0) -> Tensor:
    """float32 ``q * scale`` with ``scale`` broadcast along ``axis`` (inverse of :func:`quantize_int8`)."""
    shape = [1] * q.ndim
    shape[axis] = -1
    return q.float() * scale.float().view(shape)


def _output_channel_axes(module: nn.Module) -> dict[str, int]:
    """State-dict key -> output-channel axis of every conv / linear weight in ``module`` (1 for transposed
    convolutions, whose weights are (in, out, kh, kw); 0 otherwise)."""
    axes: dict[str, int] = {}
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear):
            axes[f"{name}.weight" if name else "weight"] = 0
        elif isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
            axes[f"{name}.weight" if name else "weight"] = 1
    return axes


def export_generator(
    generator: GCAGenerator, path: str | Path, dtype: torch.dtype | str = torch.bfloat16
) -> Path:
    """Write ``generator`` (spec + weights) to ``path`` atomically and return the path.

    ``dtype``: ``torch.bfloat16`` / ``"bf16"`` (default), ``torch.float32`` / ``"fp32"``, ``torch.float16``,
    or ``"int8"`` (weight-only: conv weights with at least :data:`INT8_MIN_NUMEL` elements as int8 with
    per-output-channel fp32 scales, see :func:`quantize_int8`; everything else float32). Raises
    :class:`~src.gca.networks.NetworkConfigError` for another dtype.
    """
    name, float_dtype = _export_dtype(dtype)
    state: dict[str, Tensor] = {}
    quantized: dict[str, dict[str, Any]] = {}
    axes = _output_channel_axes(generator) if float_dtype is None else {}
    for key, v in generator.state_dict().items():
        v = v.detach().to("cpu")
        if not v.is_floating_point():
            state[key] = v
        elif float_dtype is not None:
            state[key] = v.to(float_dtype)
        elif key in axes and v.numel() >= INT8_MIN_NUMEL:
            q, scale = quantize_int8(v, axes[key])
            quantized[key] = {"q": q, "scale": scale, "axis": axes[key]}
        else:
            state[key] = v.float()
    payload: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "spec": generator.spec(),
        "dtype": name,
        "state_dict": state,
    }
    if quantized:
        payload["int8"] = quantized
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> GCAGenerator:
    """Rebuild a generator (float32, eval mode) from an export file or a GCA module's Lightning checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator file {path} does not exist")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if payload.get("format") == EXPORT_FORMAT:
        spec, state = payload["spec"], dict(payload["state_dict"])
        for key, entry in payload.get("int8", {}).items():
            state[key] = dequantize_int8(entry["q"], entry["scale"], int(entry["axis"]))
    elif "state_dict" in payload and "generator_spec" in payload.get("hyper_parameters", {}):
        spec = payload["hyper_parameters"]["generator_spec"]
        state = {k[len("net.") :]: v for k, v in payload["state_dict"].items() if k.startswith("net.")}
    else:
        raise NetworkConfigError(
            f"{path}: neither a GCA export file (format {EXPORT_FORMAT!r}) nor a GCA Lightning checkpoint"
        )
    gen = GCAGenerator.from_spec(spec)
    gen.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return gen.eval()
