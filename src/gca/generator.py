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
constructor arguments, the input flags and bf16 weights (fp32 on request); readable with
``weights_only=True``.
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
    "EXPORT_FORMAT",
    "REFINE_INPUTS",
    "GCAGenerator",
    "GeneratorOutput",
    "build_generator",
    "export_generator",
    "load_generator",
]

EXPORT_FORMAT = "bitstream-restore/gca-generator/1"
REFINE_INPUTS = ("sca", "mask", "thumb")

NetOrFactory = nn.Module | Callable[..., nn.Module]


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return x * 2.0 - 1.0


def to_unit(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1] (not clamped)."""
    return (x + 1.0) * 0.5


class GeneratorOutput(dict):
    """Training-time outputs, all in [-1, 1]: ``x_in`` (the coarse/D conditioning input), ``coarse``,
    ``levels`` (refine outputs, base first; empty without refine), ``refined`` (``levels[-1]`` or None)."""


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
    ) -> None:
        super().__init__()
        refine_inputs = tuple(refine_inputs)
        bad = [r for r in refine_inputs if r not in REFINE_INPUTS]
        if bad:
            raise NetworkConfigError(f"refine_inputs {bad} not supported; allowed: {REFINE_INPUTS}")
        self.use_thumbnail, self.use_mask, self.refine_inputs = use_thumbnail, use_mask, refine_inputs
        self.refine_residual = bool(refine_residual)
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
        )

    def _check_inputs(self, sca: Tensor, thumb: Tensor | None, mask: Tensor | None) -> None:
        if sca.ndim != 4 or sca.shape[1] != 3:
            raise NetworkConfigError(f"sca must be (B, 3, H, W); got {tuple(sca.shape)}")
        if self.use_thumbnail and (thumb is None or thumb.shape != sca.shape):
            found = None if thumb is None else tuple(thumb.shape)
            raise NetworkConfigError(
                f"use_thumbnail=True needs thumb of shape {tuple(sca.shape)}; got {found}"
            )
        if (self.use_mask or "mask" in self.refine_inputs) and (
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
        levels: list[Tensor] = []
        if self.refine is not None:
            h, w = sca.shape[-2:]
            thumb_base = None
            if self.refine.use_thumbnail:
                thumb_base = F.adaptive_avg_pool2d(to_signed(thumb), self.refine.base_size(h, w))
            extra = None
            if self.refine_inputs:
                named = {"sca": sca, "mask": mask, "thumb": thumb}
                extra = torch.cat([to_signed(named[r]) for r in self.refine_inputs], dim=1)
            levels = self.refine(coarse, thumb_base, extra)
            if self.refine_residual:
                skips = build_image_pyramid(to_signed(sca), len(levels))
                levels = [y + s for y, s in zip(levels, skips, strict=True)]
        return GeneratorOutput(
            x_in=x_in, coarse=coarse, levels=levels, refined=levels[-1] if levels else None
        )

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
    return GCAGenerator(c, r, use_thumbnail, use_mask, refine_inputs, refine_residual)


def export_generator(generator: GCAGenerator, path: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write ``generator`` (spec + weights cast to ``dtype``) to ``path`` atomically. Returns the path."""
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype)
        for k, v in generator.state_dict().items()
    }
    payload = {"format": EXPORT_FORMAT, "spec": generator.spec(), "dtype": str(dtype), "state_dict": state}
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
        spec, state = payload["spec"], payload["state_dict"]
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
