"""GCA refine stage: the paper's refine-guided bi-directional Laplacian-pyramid fusion network.

Level 0 is the base (coarsest, H / 2**(levels-1)), level ``levels-1`` the output resolution. With ``x_k``
the coarse image bicubic-halved down to level k and ``t`` the thumbnail at base size:

    L_0 = F_0(x_0) + conv3(t),     L_k = F_k(x_k) + conv3(nearest_up2(L_{k-1}))

``F_k`` is a plain CNN (``depth`` 3x3 convs, ``width`` channels, LeakyReLU 0.2, no norm, no bias). The paper
uses 2 levels at 512x256, 3 at 1024x512, 4 at 2048x1024 (base 256x128 each time), depth 12, width 64. Our
variant may append ``extra_channels`` (e.g. the SCA image and its trust mask, area-downsampled) to each
``F_k``'s input.

Initialisation: the paper's code He-initialises this net, but then ``netG.apply(weights_init)`` overwrites
every conv with N(0, 0.02) (biases stay 0): ``init="normal"`` reproduces what it trained from,
``init="kaiming"`` the intent. ``init="residual"`` (ours, for ``refine_residual``): He init, and every conv
that writes a level output (each level CNN's last conv, the thumbnail conv, the up-convs) starts at zero, so
the untrained net outputs zeros (an untrained residual generator returns its SCA input exactly) while every
layer still receives gradients (a 12-conv plain stack at N(0, 0.02) starts with activations ~1e-4 and learns
very slowly).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.gca.networks import NetworkConfigError, init_normal_

__all__ = ["LevelCNN", "RefinePyramid", "bicubic_half", "build_image_pyramid"]

_INITS = ("normal", "kaiming", "residual")


def bicubic_half(x: Tensor) -> Tensor:
    """Bicubic x0.5 resize, no antialiasing (the paper's ``interpolate(scale_factor=1/2, 'bicubic')``)."""
    return F.interpolate(
        x, scale_factor=0.5, mode="bicubic", align_corners=False, recompute_scale_factor=False
    )


def build_image_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[x / 2**(levels-1), ..., x / 2, x]`` by repeated bicubic halving (base first, as the levels)."""
    out = [x]
    for _ in range(levels - 1):
        out.append(bicubic_half(out[-1]))
    return out[::-1]


class LevelCNN(nn.Module):
    """``depth`` 3x3 convs in -> width -> ... -> width -> out, LeakyReLU between them, no bias, no norm."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        depth: int = 12,
        slope: float = 0.2,
    ) -> None:
        super().__init__()
        if depth < 2 or width < 1:
            raise NetworkConfigError(
                f"LevelCNN needs depth >= 2 and width >= 1; got depth={depth}, width={width}"
            )
        layers: list[nn.Module] = []
        chans = [in_channels] + [width] * (depth - 1) + [out_channels]
        for i in range(depth):
            layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False))
            if i < depth - 1:
                layers.append(nn.LeakyReLU(slope, True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _UpConv(nn.Module):
    """Nearest x2 upsampling followed by a 3x3 conv (3 -> 3 channels, with bias)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class RefinePyramid(nn.Module):
    """Laplacian-pyramid fusion of the coarse image (every level) and the thumbnail (base level).

    Args:
        levels: pyramid levels (>= 1); the output is at the input resolution, the base at 1 / 2**(levels-1).
        width, depth: channels and conv count of each level CNN (paper: 64, 12).
        extra_channels: channels of ``extra`` appended to each level CNN's input (0 = the paper's net).
        use_thumbnail: add ``conv3(thumbnail)`` at the base (the paper); False drops that path.
        slope: LeakyReLU negative slope.
        init: ``"normal"`` (N(0, 0.02), what the paper's code trained from), ``"kaiming"``, or
            ``"residual"`` (He init, output convs at zero; see the module docstring).
    """

    def __init__(
        self,
        levels: int = 2,
        width: int = 64,
        depth: int = 12,
        extra_channels: int = 0,
        use_thumbnail: bool = True,
        slope: float = 0.2,
        init: str = "normal",
    ) -> None:
        super().__init__()
        if levels < 1:
            raise NetworkConfigError(f"RefinePyramid needs levels >= 1; got {levels}")
        if init not in _INITS:
            raise NetworkConfigError(f"init {init!r} is not supported; allowed: {_INITS}")
        self.config: dict[str, Any] = {
            "levels": levels,
            "width": width,
            "depth": depth,
            "extra_channels": extra_channels,
            "use_thumbnail": use_thumbnail,
            "slope": slope,
            "init": init,
        }
        self.levels, self.extra_channels, self.use_thumbnail = levels, extra_channels, use_thumbnail
        self.required_multiple = 2 ** (levels - 1)
        self.thumb_conv = nn.Conv2d(3, 3, 3, padding=1) if use_thumbnail else None
        self.level_nets = nn.ModuleList(
            LevelCNN(3 + extra_channels, 3, width, depth, slope) for _ in range(levels)
        )
        self.up_convs = nn.ModuleList(_UpConv(3) for _ in range(levels - 1))
        if init == "normal":
            init_normal_(self, 0.02)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He et al. with fan_out, as the paper's refined_guiding.py intended
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if init == "residual":
            outputs = [net.body[-1] for net in self.level_nets] + [u.conv for u in self.up_convs]
            if self.thumb_conv is not None:
                outputs.append(self.thumb_conv)
            for conv in outputs:
                nn.init.zeros_(conv.weight)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def base_size(self, height: int, width: int) -> tuple[int, int]:
        """Base-level size for an output of ``height x width``."""
        return height // self.required_multiple, width // self.required_multiple

    def forward(
        self, coarse: Tensor, thumb_base: Tensor | None = None, extra: Tensor | None = None
    ) -> list[Tensor]:
        """Level outputs, base first, each ``(B, 3, H / 2**(levels-1-k), W / 2**(levels-1-k))``.

        Args:
            coarse: ``(B, 3, H, W)`` coarse image in [-1, 1]; H, W multiples of ``2**(levels-1)``.
            thumb_base: ``(B, 3, H_base, W_base)`` thumbnail at base size in [-1, 1] (required if
            use_thumbnail).
            extra: ``(B, extra_channels, H, W)``, area-downsampled to every level (required if
            extra_channels).
        """
        h, w = coarse.shape[-2:]
        m = self.required_multiple
        if coarse.ndim != 4 or coarse.shape[1] != 3 or h % m or w % m:
            raise NetworkConfigError(
                f"RefinePyramid({self.levels} levels) needs coarse (B, 3, H, W) with H, W multiples of {m}; "
                f"got {tuple(coarse.shape)}"
            )
        if self.use_thumbnail and (thumb_base is None or thumb_base.shape[-2:] != self.base_size(h, w)):
            found = None if thumb_base is None else tuple(thumb_base.shape)
            raise NetworkConfigError(f"thumb_base must be (B, 3, {h // m}, {w // m}); got {found}")
        if self.extra_channels and (extra is None or extra.shape[1] != self.extra_channels):
            found = None if extra is None else tuple(extra.shape)
            raise NetworkConfigError(f"extra must have {self.extra_channels} channels; got {found}")
        xs = build_image_pyramid(coarse, self.levels)
        extras = None
        if self.extra_channels:
            top = self.levels - 1
            extras = [
                extra if k == top else F.adaptive_avg_pool2d(extra, x.shape[-2:]) for k, x in enumerate(xs)
            ]
        outs: list[Tensor] = []
        for k, x in enumerate(xs):
            inp = x if extras is None else torch.cat([x, extras[k]], dim=1)
            y = self.level_nets[k](inp)
            if k == 0:
                if self.thumb_conv is not None:
                    y = y + self.thumb_conv(thumb_base)
            else:
                y = y + self.up_convs[k - 1](outs[-1])
            outs.append(y)
        return outs
