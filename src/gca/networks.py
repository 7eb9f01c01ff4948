"""GCA coarse stage: the pix2pixHD generator (global generator + local enhancers) and the multiscale PatchGAN.

Layouts: images are float ``(B, C, H, W)`` in [-1, 1] (the paper normalises with mean 0.5, std 0.5).
Defaults are the paper's (Two-ACIR ``opt.txt``: ngf 16 local -> 32 global, 4 global downsamplings, 3 + 3
ResBlocks, instance norm without affine, reflect padding, tanh output, N(0, 0.02) weights; D: 2 scales, 3
layers, ndf 64). Written from the pix2pixHD paper and code structure, not copied. Every network keeps its
constructor arguments in ``self.config`` so it can be rebuilt from an export file.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from src.errors import BitstreamRestoreError

__all__ = [
    "CoarseGenerator",
    "MultiscaleDiscriminator",
    "NLayerDiscriminator",
    "NetworkConfigError",
    "ResnetBlock",
    "count_parameters",
    "init_normal_",
]

_NORMS = ("instance", "batch", "none")
_PADDINGS = ("reflect", "replicate", "zero")


class NetworkConfigError(BitstreamRestoreError):
    """A network was configured or called with unsupported sizes or options."""


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements) of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """Conv weights ~ N(0, std), biases 0 (pix2pixHD's ``weights_init`` leaves biases at the default)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise NetworkConfigError(f"norm {kind!r} is not supported; allowed: {_NORMS}")


def _padded_conv(cin: int, cout: int, kernel: int, padding: str) -> list[nn.Module]:
    """A stride-1 'same' convolution with the requested padding mode (explicit pad layer or zero padding)."""
    p = kernel // 2
    if padding == "reflect":
        return [nn.ReflectionPad2d(p), nn.Conv2d(cin, cout, kernel)]
    if padding == "replicate":
        return [nn.ReplicationPad2d(p), nn.Conv2d(cin, cout, kernel)]
    if padding == "zero":
        return [nn.Conv2d(cin, cout, kernel, padding=p)]
    raise NetworkConfigError(f"padding {padding!r} is not supported; allowed: {_PADDINGS}")


class ResnetBlock(nn.Module):
    """x + [pad, conv3, norm, ReLU, pad, conv3, norm](x); channels unchanged."""

    def __init__(self, channels: int, norm: str = "instance", padding: str = "reflect") -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_padded_conv(channels, channels, 3, padding),
            _norm(norm, channels),
            nn.ReLU(True),
            *_padded_conv(channels, channels, 3, padding),
            _norm(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _down(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), _norm(norm, cout), nn.ReLU(True)]


def _up(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
        _norm(norm, cout),
        nn.ReLU(True),
    ]


class CoarseGenerator(nn.Module):
    """pix2pixHD generator: a global generator G1 at 1/2**n_local resolution plus ``n_local_enhancers`` G2s.

    Input ``(B, in_channels, H, W)`` in [-1, 1] ([SCA image | upsampled thumbnail] = 6 channels, + trust
    mask = 7), output ``(B, out_channels, H, W)`` in [-1, 1] (tanh). H and W must be multiples of
    :attr:`required_multiple` = 2 ** (n_local_enhancers + n_downsample_global) (32 with the defaults).

    The global generator works with ``ngf * 2 ** n_local_enhancers`` base channels (32 with the defaults), the
    outermost local enhancer with ``ngf`` (16). ``n_local_enhancers=0`` gives the plain global generator.
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 3,
        ngf: int = 16,
        n_local_enhancers: int = 1,
        n_downsample_global: int = 4,
        n_blocks_global: int = 3,
        n_blocks_local: int = 3,
        norm: str = "instance",
        padding: str = "reflect",
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, ngf) < 1 or min(n_local_enhancers, n_downsample_global) < 0:
            raise NetworkConfigError(
                f"CoarseGenerator sizes must be positive: in_channels={in_channels}, ngf={ngf}, "
                f"n_local_enhancers={n_local_enhancers}, n_downsample_global={n_downsample_global}"
            )
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": ngf,
            "n_local_enhancers": n_local_enhancers,
            "n_downsample_global": n_downsample_global,
            "n_blocks_global": n_blocks_global,
            "n_blocks_local": n_blocks_local,
            "norm": norm,
            "padding": padding,
            "init_std": init_std,
        }
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_local_enhancers = n_local_enhancers
        self.required_multiple = 2 ** (n_local_enhancers + n_downsample_global)

        g = ngf * 2**n_local_enhancers
        trunk: list[nn.Module] = [*_padded_conv(in_channels, g, 7, padding), _norm(norm, g), nn.ReLU(True)]
        for i in range(n_downsample_global):
            trunk += _down(g * 2**i, g * 2 ** (i + 1), norm)
        trunk += [ResnetBlock(g * 2**n_downsample_global, norm, padding) for _ in range(n_blocks_global)]
        for i in range(n_downsample_global, 0, -1):
            trunk += _up(g * 2**i, g * 2 ** (i - 1), norm)
        if n_local_enhancers == 0:
            trunk += [*_padded_conv(g, out_channels, 7, padding), nn.Tanh()]
        self.global_net = nn.Sequential(*trunk)

        self.local_down = nn.ModuleList()
        self.local_up = nn.ModuleList()
        for n in range(1, n_local_enhancers + 1):
            c = ngf * 2 ** (n_local_enhancers - n)
            self.local_down.append(
                nn.Sequential(
                    *_padded_conv(in_channels, c, 7, padding),
                    _norm(norm, c),
                    nn.ReLU(True),
                    *_down(c, 2 * c, norm),
                )
            )
            up: list[nn.Module] = [ResnetBlock(2 * c, norm, padding) for _ in range(n_blocks_local)]
            up += _up(2 * c, c, norm)
            if n == n_local_enhancers:
                up += [*_padded_conv(c, out_channels, 7, padding), nn.Tanh()]
            self.local_up.append(nn.Sequential(*up))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        init_normal_(self, init_std)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise NetworkConfigError(
                f"CoarseGenerator expects (B, {self.in_channels}, H, W); got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.required_multiple
        if h % m or w % m:
            raise NetworkConfigError(f"CoarseGenerator needs H, W multiples of {m}; got {h}x{w}")
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.global_net(pyramid[-1])
        for n in range(self.n_local_enhancers):
            out = self.local_up[n](self.local_down[n](pyramid[-2 - n]) + out)
        return out


class NLayerDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` stride-2 convs (4x4 kernels, LeakyReLU 0.2), returning every block's output.

    ``forward`` returns a list of ``n_layers + 2`` tensors; the last is the ``(B, 1, h, w)`` patch score map,
    the others are the intermediate features used for feature matching.
    """

    def __init__(
        self, in_channels: int = 9, ndf: int = 64, n_layers: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        k, p = 4, 2
        blocks = [nn.Sequential(nn.Conv2d(in_channels, ndf, k, stride=2, padding=p), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(prev, nf, k, stride=2, padding=p), _norm(norm, nf), nn.LeakyReLU(0.2, True)
                )
            )
        prev, nf = nf, min(nf * 2, 512)
        blocks.append(
            nn.Sequential(
                nn.Conv2d(prev, nf, k, stride=1, padding=p), _norm(norm, nf), nn.LeakyReLU(0.2, True)
            )
        )
        blocks.append(nn.Sequential(nn.Conv2d(nf, 1, k, stride=1, padding=p)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_scales`` PatchGANs on the input and its 3x3/s2 average-pooled copies (pix2pixHD), conditioned on
    the network input: feed ``cat([input (in_channels - 3 ch), image (3 ch)], 1)`` in [-1, 1].

    ``forward`` returns one feature list per scale (full resolution first); see :class:`NLayerDiscriminator`.
    """

    def __init__(
        self,
        in_channels: int = 9,
        ndf: int = 64,
        n_layers: int = 3,
        num_scales: int = 2,
        norm: str = "instance",
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if num_scales < 1 or n_layers < 1:
            raise NetworkConfigError(f"num_scales={num_scales} and n_layers={n_layers} must be >= 1")
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "ndf": ndf,
            "n_layers": n_layers,
            "num_scales": num_scales,
            "norm": norm,
            "init_std": init_std,
        }
        self.in_channels, self.n_layers, self.num_scales = in_channels, n_layers, num_scales
        self.scales = nn.ModuleList(
            NLayerDiscriminator(in_channels, ndf, n_layers, norm) for _ in range(num_scales)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        init_normal_(self, init_std)

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise NetworkConfigError(
                f"MultiscaleDiscriminator expects (B, {self.in_channels}, H, W); got {tuple(x.shape)}"
            )
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            out.append(d(x))
        return out
