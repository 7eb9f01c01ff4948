"""Tiled GCA inference with bounded memory: the same image as :meth:`GCAGenerator.forward`, tile by tile.

Why not plain overlapping tiles: the coarse generator (pix2pixHD) normalises with **instance norm** after
almost every conv, i.e. with per-channel mean and variance over the whole image, and its global generator sees
hundreds of pixels around each output pixel. Tiles run through the net independently would each normalise
with their own statistics and give visibly different colours per tile. Here the coarse generator runs
**layer by layer over the whole image**, each step in tiles:

- a *chain* is a run of local layers (padding, convs, transposed convs, pooling, point-wise activations)
  between two instance norms; it is evaluated tile by tile, each tile read with a halo of the chain's
  receptive field (so the tile's core is exactly what the whole-image chain gives) and aligned to the
  chain's strides;
- at each instance norm the chain's output statistics are gathered over all tiles (Chan's merge of per-tile
  mean / variance, float64) and the norm becomes a fixed per-channel affine map; a short chain (one conv) is
  recomputed by the next chain instead of stored, a longer one is stored as a full-size float32 buffer at its
  own resolution (at most 32 channels at half resolution for the shipped model);
- residual blocks and the local enhancer's sum are done in place on those buffers.

The refine pyramid (no norm, all local) then runs tile by tile end to end with the halo of its receptive
field. Where ``mask_gate`` keeps a whole tile unchanged (every pixel of the tile and ``mask_gate`` around it
trusted), the generator's output there is its SCA input exactly (``s + 0 * y``), and the tile is not computed.

So the tiled result equals the untiled one up to float rounding (different conv blocking and summation
order; measured max |diff| ~1e-6 on [0, 1] images), there are no seams to blend, and memory is the input,
the output, two half-resolution buffers and one tile's activations. An image that fits in one tile runs
through :meth:`GCAGenerator.forward` itself (bit-identical).

``tile_overlap`` below the refine net's receptive-field halo trades exactness for speed: refine tiles then
see only that much context and neighbouring tiles are blended with raised-cosine weights over a band of
``2 * overlap`` pixels centred on their border (a partition of unity, so a constant image stays constant).

Layouts: every tensor is float ``(1, C, H, W)``; inputs in [0, 1], inside the nets [-1, 1] (as
:class:`~src.gca.generator.GCAGenerator`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.gca.generator import GCAGenerator, to_signed, to_unit
from src.gca.networks import CoarseGenerator, NetworkConfigError, ResnetBlock

__all__ = ["TileSettings", "TilingError", "refine_halo", "tiled_forward"]

#: channels a tile of ``tile x tile`` pixels may hold per pixel at full resolution (the refine net's width):
#: the coarse chains get tiles of the same number of floats
REFERENCE_CHANNELS = 64
#: point-wise modules a chain may hold (applied to crops as they are)
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity)
_PADS = (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)


class TilingError(NetworkConfigError):
    """Tiled inference was asked with bad settings, or for a network it cannot tile."""


@dataclass(frozen=True)
class TileSettings:
    """How :func:`tiled_forward` tiles.

    tile: side of a tile in pixels at full resolution (rounded up to the refine pyramid's multiple); the
        coarse chains use tiles of ``tile**2 * 64`` floats at their own resolution. An image whose sides
        are both at most ``tile`` runs untiled.
    overlap: context in pixels around each refine tile; None = the refine net's receptive-field halo
        (:func:`refine_halo`: exact); smaller = blended (approximate); larger = the halo (more context
        changes nothing).
    batch: tiles of one shape run together (speed; memory x batch).
    skip_trusted: skip refine tiles the mask gate keeps unchanged (exact).
    """

    tile: int = 512
    overlap: int | None = None
    batch: int = 1
    skip_trusted: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.tile, bool) or not isinstance(self.tile, int) or self.tile < 64:
            raise TilingError(f"tile must be an integer >= 64 (pixels), got {self.tile!r}")
        if self.overlap is not None and (
            isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0
        ):
            raise TilingError(f"tile_overlap must be an integer >= 0 (pixels) or auto, got {self.overlap!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise TilingError(f"tile_batch must be an integer >= 1, got {self.batch!r}")


# ---------------------------------------------------------------------------------------------- sources
def _owned(x: Tensor, base: Tensor) -> Tensor:
    """``x`` itself, or a copy when it shares memory with ``base`` (in-place layers must not write there)."""
    return x.clone() if x.untyped_storage().data_ptr() == base.untyped_storage().data_ptr() else x


def _clamped_crop(t: Tensor, y0: int, y1: int, x0: int, x1: int) -> Tensor:
    """``t[..., y0:y1, x0:x1]`` of ``t`` extended beyond its bottom / right edge by replicating the last
    row / column (what :meth:`GCAGenerator.forward`'s replicate padding gives)."""
    h, w = t.shape[-2:]
    out = t[..., y0 : min(y1, h), x0 : min(x1, w)]
    if y1 > h or x1 > w:
        if y0 >= h or x0 >= w:  # wholly in the padding: index the last row / column
            iy = torch.arange(y0, y1, device=t.device).clamp_(max=h - 1)
            ix = torch.arange(x0, x1, device=t.device).clamp_(max=w - 1)
            return t.index_select(-2, iy).index_select(-1, ix)
        out = F.pad(out, (0, max(0, x1 - w), 0, max(0, y1 - h)), mode="replicate")
    return out


class _Source:
    """A full-size value (at one resolution) read by crops: ``(1, C, y1 - y0, x1 - x0)`` float tensors that
    the caller may modify."""

    channels: int
    height: int
    width: int

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        raise NotImplementedError


class _InputSource(_Source):
    """The coarse net's input ``[sca | thumb | mask]`` in [-1, 1] of the image padded to ``height x width``
    (replicate, as :meth:`GCAGenerator.forward`)."""

    def __init__(self, parts: Sequence[Tensor], height: int, width: int) -> None:
        self.parts = list(parts)
        self.channels = sum(p.shape[1] for p in self.parts)
        self.height, self.width = height, width

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        return torch.cat([to_signed(_clamped_crop(p, y0, y1, x0, x1)) for p in self.parts], dim=1)


class _BufferSource(_Source):
    """A stored float32 buffer ``(1, C, H, W)``, read through point-wise ``post`` modules (e.g. a fixed
    instance norm and a ReLU)."""

    def __init__(self, buf: Tensor, post: Sequence[nn.Module] = (), fresh: bool = False) -> None:
        self.buf, self.post = buf, list(post)
        #: made by this run and read by nothing else yet: a sum may be written into it
        self.fresh = fresh
        self.channels, self.height, self.width = buf.shape[1], buf.shape[2], buf.shape[3]

    def crop(self, y0: int, y1: int, x0: int, x1: int) -> Tensor:
        x = self.buf[..., y0:y1, x0:x1]
        for m in self.post:
            x = m(_owned(x, self.buf))
        return _owned(x, self.buf)


class _FixedNorm(nn.Module):
    """Instance norm with given (whole-image) statistics: ``(x - mean) * rstd`` per channel (then the
    affine weight / bias when the norm has them)."""

    def __init__(self, mean: Tensor, rstd: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
        super().__init__()
        scale, shift = rstd, -mean * rstd
        if weight is not None:
            scale, shift = scale * weight, shift * weight
        if bias is not None:
            shift = shift + bias
        self.scale, self.shift = scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)
        self.mean, self.rstd = mean.view(1, -1, 1, 1), rstd.view(1, -1, 1, 1)
        self.affine = weight is not None or bias is not None

    def forward(self, x: Tensor) -> Tensor:
        if not self.affine:  # the form of torch's instance norm, to stay closest to it
            return (x - self.mean) * self.rstd
        return x * self.scale + self.shift


@dataclass
class _Value:
    """A value of the network: ``source`` followed by the not yet evaluated local layers ``pending``."""

    source: _Source
    pending: list[nn.Module]

    @property
    def heavy(self) -> int:
        """Number of convolutions among the pending layers."""
        return sum(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in self.pending)

    def then(self, module: nn.Module) -> _Value:
        return _Value(self.source, [*self.pending, module])


# ---------------------------------------------------------------------------------------------- geometry
def _pair(v: int | Sequence[int]) -> int:
    if isinstance(v, int):
        return v
    if len(set(v)) != 1:
        raise TilingError(f"tiled inference needs square kernels, strides and paddings; got {tuple(v)}")
    return int(v[0])


@dataclass(frozen=True)
class _Geometry:
    """How a chain maps pixels: ``ratio`` input pixels per output pixel (Fraction), input crops aligned to
    ``align``, ``halo`` input pixels of context on each side, ``floats`` activation floats per input pixel
    (the largest layer, for tile sizing), ``channels`` of the output (None: those of the input)."""

    ratio: Fraction
    align: int
    halo: int
    floats: float
    channels: int | None


def _geometry(chain: Sequence[nn.Module], in_channels: int) -> _Geometry:
    alpha = Fraction(1)  # input pixels per pixel of the current layer
    lo = hi = Fraction(0)  # current pixel u depends on input pixels [alpha u + lo, alpha u + hi]
    pend = 0  # padding of pad layers not yet consumed by a conv
    align = 1
    channels = in_channels
    floats = float(in_channels)
    out_channels: int | None = None
    for m in chain:
        if isinstance(m, _PADS):
            p = m.padding
            pend += _pair(p[0] if isinstance(p, tuple) and len(set(p)) == 1 else p)
        elif isinstance(m, nn.Conv2d | nn.AvgPool2d | nn.MaxPool2d):
            k, s = _pair(m.kernel_size), _pair(m.stride)
            p, d = _pair(m.padding), _pair(getattr(m, "dilation", 1))
            if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
                raise TilingError(f"tiled inference needs zero-padded convs (or pad layers); got {m}")
            if getattr(m, "ceil_mode", False):
                raise TilingError(f"tiled inference does not support ceil_mode pooling; got {m}")
            p += pend
            pend = 0
            lo, hi = lo - alpha * p, hi + alpha * (d * (k - 1) - p)
            alpha *= s
            if isinstance(m, nn.Conv2d):
                channels = out_channels = m.out_channels
        elif isinstance(m, nn.ConvTranspose2d):
            if pend:
                raise TilingError("tiled inference does not support a pad layer before a transposed conv")
            k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
            if _pair(m.dilation) != 1:
                raise TilingError(f"tiled inference does not support dilated transposed convs; got {m}")
            lo, hi = lo + alpha * Fraction(p - k + 1, s) - alpha, hi + alpha * Fraction(p, s) + alpha
            alpha /= s
            channels = out_channels = m.out_channels
        elif not isinstance(m, (*_POINTWISE, _FixedNorm)):
            raise TilingError(f"tiled inference does not support {type(m).__name__} layers")
        if alpha >= 1:
            if alpha.denominator != 1:
                raise TilingError("tiled inference needs integer strides")
            align = math.lcm(align, int(alpha))
        floats = max(floats, channels / float(alpha) ** 2)
    if pend:
        raise TilingError("a chain ends with a pad layer")
    align = math.lcm(align, alpha.numerator)
    halo = math.ceil(max(-lo, hi, Fraction(0))) + align  # + one aligned step of margin
    halo = -(-halo // align) * align
    return _Geometry(alpha, align, halo, floats, out_channels)


# ---------------------------------------------------------------------------------------------- execution
class _Stats:
    """Per-channel mean / variance merged over tiles (Chan et al.'s parallel update, float64)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def add(self, x: Tensor) -> None:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), unbiased=False)
        mean, m2 = mean.double(), var.double() * n
        if self.mean is None or self.m2 is None:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * n / total)
        self.n = total

    def norm(self, module: nn.InstanceNorm2d) -> _FixedNorm:
        assert self.mean is not None and self.m2 is not None
        var = self.m2 / self.n
        rstd = (var + module.eps).rsqrt()
        w = module.weight.detach().float() if module.affine else None
        b = module.bias.detach().float() if module.affine else None
        return _FixedNorm(self.mean.float(), rstd.float(), w, b)


@dataclass
class _Runner:
    """Runs chains by tiles with a budget of ``budget`` activation floats per tile batch."""

    budget: float
    batch: int
    autocast: Callable[[], AbstractContextManager[object]]

    def _spans(self, size: int, step: int, halo: int, align: int) -> list[tuple[int, int, int, int]]:
        """``(core0, core1, crop0, crop1)`` along one axis of ``size`` input pixels."""
        out = []
        for c0 in range(0, size, step):
            c1 = min(c0 + step, size)
            out.append((c0, c1, max(0, c0 - halo), min(size, c1 + halo)))
        return out

    def run(self, value: _Value, stats: bool, store: bool) -> tuple[_BufferSource | None, _Stats | None]:
        """Evaluate ``value``'s pending chain over the whole image: the stored output (``store``) and / or
        its per-channel statistics (``stats``)."""
        src, chain = value.source, value.pending
        geo = _geometry(chain, src.channels)
        hin, win = src.height, src.width
        if Fraction(hin) / geo.ratio != int(Fraction(hin) / geo.ratio) or (
            Fraction(win) / geo.ratio != int(Fraction(win) / geo.ratio)
        ):
            raise TilingError(f"a {hin}x{win} value does not divide by the chain's stride {geo.ratio}")
        hout, wout = int(Fraction(hin) / geo.ratio), int(Fraction(win) / geo.ratio)
        cout = geo.channels or src.channels
        side = max(
            geo.align, int(math.sqrt(self.budget / (geo.floats * self.batch))) // geo.align * geo.align
        )
        out = None
        if store:
            out = torch.empty((1, cout, hout, wout), dtype=torch.float32, device=self._device(src))
        acc = _Stats() if stats else None
        seq = nn.Sequential(*chain)
        tiles = [
            (ys, xs)
            for ys in self._spans(hin, side, geo.halo, geo.align)
            for xs in self._spans(win, side, geo.halo, geo.align)
        ]
        for group in _groups(tiles, self.batch):
            crops = [src.crop(ys[2], ys[3], xs[2], xs[3]) for ys, xs in group]
            with self.autocast():
                y = seq(torch.cat(crops, dim=0) if len(crops) > 1 else crops[0])
            del crops
            cores = []
            for i, (ys, xs) in enumerate(group):
                oy, ox = int((ys[0] - ys[2]) / geo.ratio), int((xs[0] - xs[2]) / geo.ratio)
                ny, nx = int((ys[1] - ys[0]) / geo.ratio), int((xs[1] - xs[0]) / geo.ratio)
                expect = (int((ys[3] - ys[2]) / geo.ratio), int((xs[3] - xs[2]) / geo.ratio))
                if tuple(y.shape[-2:]) != expect:
                    raise TilingError(f"a chain gave {tuple(y.shape[-2:])} for a crop, expected {expect}")
                core = y[i : i + 1, :, oy : oy + ny, ox : ox + nx]
                if out is not None:
                    gy, gx = int(ys[0] / geo.ratio), int(xs[0] / geo.ratio)
                    out[..., gy : gy + ny, gx : gx + nx] = core
                cores.append(core)
            if acc is not None:
                if len({c.shape for c in cores}) == 1:
                    acc.add(torch.cat(cores, dim=0) if len(cores) > 1 else cores[0])
                else:
                    for c in cores:
                        acc.add(c)
            del y, cores
        return (None if out is None else _BufferSource(out)), acc

    @staticmethod
    def _device(src: _Source) -> torch.device:
        if isinstance(src, _BufferSource):
            return src.buf.device
        assert isinstance(src, _InputSource)
        return src.parts[0].device

    def materialize(self, value: _Value) -> _Value:
        """``value`` with no convolution pending (point-wise layers stay pending: applied on read)."""
        if not value.heavy:
            return value
        buf, _ = self.run(value, stats=False, store=True)
        assert buf is not None
        return _Value(buf, [])

    def add(self, a: _Value, b: _Value) -> _Value:
        """``a + b`` (same shape), stored in ``a``'s fresh buffer when it has one."""
        a, b = self.materialize(a), self.materialize(b)
        src = a.source
        if not isinstance(src, _BufferSource) or not src.fresh:
            raise TilingError("internal: the left operand of a sum must be a freshly stored buffer")
        post = [*src.post, *a.pending]
        rows = max(1, int(self.budget // max(1, src.channels * src.width)))
        for r0 in range(0, src.height, rows):
            r1 = min(src.height, r0 + rows)
            x = src.buf[..., r0:r1, :]
            for m in post:
                x = m(_owned(x, src.buf))
            y = b.source.crop(r0, r1, 0, src.width)
            for m in b.pending:
                y = m(y)
            src.buf[..., r0:r1, :] = x + y
        src.fresh = False
        return _Value(_BufferSource(src.buf), [])

    def walk(self, module: nn.Module, value: _Value) -> _Value:
        """``module`` applied to ``value``: local layers are queued, instance norms evaluated (see the module
        docstring)."""
        if isinstance(module, nn.Sequential):
            for m in module:
                value = self.walk(m, value)
            return value
        if isinstance(module, ResnetBlock):
            x = self.materialize(value)
            y = self.walk(module.body, _Value(x.source, list(x.pending)))
            y = self._fresh(y)
            return self.add(y, x)
        if isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats:
            if value.heavy >= 2:  # store the chain's output, normalise on read
                buf, acc = self.run(value, stats=True, store=True)
                assert buf is not None and acc is not None
                return _Value(_BufferSource(buf.buf, [acc.norm(module)], fresh=True), [])
            _, acc = self.run(value, stats=True, store=False)  # recompute the short chain on the next read
            assert acc is not None
            return value.then(acc.norm(module))
        if isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d):  # running statistics: point-wise in eval
            if module.training:
                raise TilingError("tiled inference needs the network in eval mode")
            return value.then(module)
        if isinstance(module, (*_PADS, nn.Conv2d, nn.ConvTranspose2d, nn.AvgPool2d, *_POINTWISE)):
            return value.then(module)
        raise TilingError(f"tiled inference does not support {type(module).__name__} layers")

    def _fresh(self, value: _Value) -> _Value:
        """``value`` as a freshly stored buffer (stores it when it is not)."""
        src = value.source
        if isinstance(src, _BufferSource) and src.fresh:
            return value
        buf, _ = self.run(value, stats=False, store=True)
        assert buf is not None
        buf.fresh = True
        return _Value(buf, [])


def _groups(tiles: list, batch: int) -> Iterator[list]:
    """Tiles of equal crop and core shape, ``batch`` at a time (in order otherwise)."""
    by_shape: dict[tuple[int, ...], list] = {}
    for ys, xs in tiles:
        key = (ys[3] - ys[2], xs[3] - xs[2], ys[0] - ys[2], xs[0] - xs[2], ys[1] - ys[0], xs[1] - xs[0])
        by_shape.setdefault(key, []).append((ys, xs))
    for group in by_shape.values():
        for i in range(0, len(group), batch):
            yield group[i : i + batch]


def coarse_tiled(coarse: CoarseGenerator, x: _Value, runner: _Runner) -> _BufferSource:
    """The coarse generator's output ``(1, 3, H, W)`` in [-1, 1] (stored) for the input value ``x``."""
    pyramid = [x]
    for _ in range(coarse.n_local_enhancers):
        pyramid.append(pyramid[-1].then(coarse.downsample))
    out = runner.walk(coarse.global_net, pyramid[-1])
    for n in range(coarse.n_local_enhancers):
        a = runner._fresh(runner.walk(coarse.local_down[n], pyramid[-2 - n]))
        out = runner.walk(coarse.local_up[n], runner.add(a, out))
        del a
    src = out.source
    if out.pending or not isinstance(src, _BufferSource) or src.post:
        buf, _ = runner.run(out, stats=False, store=True)  # the read applies any point-wise layers
        assert buf is not None
        return buf
    return src


# ---------------------------------------------------------------------------------------------- refine
def refine_halo(generator: GCAGenerator) -> int:
    """Context in full-resolution pixels around a refine tile for its core to be exact (a multiple of the
    pyramid's ``2 ** (levels - 1)``)."""
    refine = generator.refine
    if refine is None:
        return 0
    levels, depth = refine.levels, len([m for m in refine.level_nets[0].body if isinstance(m, nn.Conv2d)])
    need = 0
    r = Fraction(0)  # halo needed at the output of level k, in level-k pixels
    for k in range(levels - 1, -1, -1):
        f = 2 ** (levels - 1 - k)  # full-resolution pixels per level-k pixel
        # level CNN (depth 3x3 convs) on the bicubic-halved coarse image (+2 input pixels per halving) and
        # the area-pooled extras; the thumbnail conv at the base; the gate's dilation at full resolution
        need = max(need, math.ceil((r + depth + 1) * f) + 2 * (f - 1) * 2 + generator.mask_gate + f)
        r = Fraction(math.ceil((r + 1) / 2))  # up-conv (3x3 on nearest x2) of the level below
    m = refine.required_multiple
    return -(-need // m) * m


def _ramp(n: int, band: int, lo_open: bool, hi_open: bool, device: torch.device) -> Tensor:
    """1-D blend weights of a tile span of ``n`` pixels: raised-cosine ramps over ``2 * band`` pixels at each
    side that has a neighbour (``*_open``), 1 elsewhere; neighbouring ramps sum to 1."""
    w = torch.ones(n, device=device)
    if band <= 0:
        return w
    t = (torch.arange(2 * band, device=device, dtype=torch.float32) + 0.5) / (2 * band)
    up = 0.5 - 0.5 * torch.cos(math.pi * t)
    if lo_open:
        w[: 2 * band] = up[: min(n, 2 * band)]
    if hi_open:
        w[n - 2 * band :] = w[n - 2 * band :] * up.flip(0)[-min(n, 2 * band) :]
    return w


def refine_tiled(
    generator: GCAGenerator,
    coarse: _BufferSource,
    sca: Tensor,
    thumb: Tensor | None,
    mask: Tensor | None,
    settings: TileSettings,
    autocast: Callable[[], AbstractContextManager[object]],
) -> Tensor:
    """The final image ``(1, 3, H, W)`` in [0, 1] (clamped) of the refine stage, tile by tile."""
    assert generator.refine is not None
    h, w = sca.shape[-2:]
    hp, wp = coarse.height, coarse.width
    m = generator.refine.required_multiple
    exact = refine_halo(generator)
    overlap = exact if settings.overlap is None else settings.overlap
    blended = overlap < exact
    ctx = exact if not blended else -(-overlap // m) * m
    band = overlap // 2 if blended else 0  # ramps of 2 * band pixels centred on the tile borders
    step = -(-settings.tile // m) * m
    out = torch.zeros((1, 3, h, w), dtype=torch.float32, device=sca.device)
    gate = generator.mask_gate if settings.skip_trusted else 0

    def spans(size: int, padded: int) -> list[tuple[int, int, int, int]]:
        res = []
        for c0 in range(0, size, step):
            c1 = min(c0 + step, size)
            res.append((c0, c1, max(0, c0 - ctx), min(padded, -(-(c1 + ctx) // m) * m)))
        return res

    tiles = [(ys, xs) for ys in spans(h, hp) for xs in spans(w, wp)]
    todo = []
    for ys, xs in tiles:
        if gate and mask is not None and not blended:
            win = _clamped_crop(
                mask, max(0, ys[0] - gate), min(hp, ys[1] + gate), max(0, xs[0] - gate), min(wp, xs[1] + gate)
            )
            if torch.amax(1.0 - win) == 0:  # the gate is 0 on the core: the output is the SCA input
                core = sca[..., ys[0] : ys[1], xs[0] : xs[1]]
                out[..., ys[0] : ys[1], xs[0] : xs[1]] = to_unit(to_signed(core)).clamp(0.0, 1.0)
                continue
        todo.append((ys, xs))
    for group in _groups(todo, settings.batch):

        def crops(t: Tensor | None, group: list = group) -> Tensor | None:
            if t is None:
                return None
            parts = [_clamped_crop(t, ys[2], ys[3], xs[2], xs[3]) for ys, xs in group]
            return torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]

        cc = torch.cat([coarse.crop(ys[2], ys[3], xs[2], xs[3]) for ys, xs in group], dim=0)
        with autocast():
            levels, _ = generator.refine_levels(cc, crops(sca), crops(thumb), crops(mask))
        top = to_unit(levels[-1].float()).clamp_(0.0, 1.0)
        del levels, cc
        for i, (ys, xs) in enumerate(group):
            if not blended:
                oy, ox = ys[0] - ys[2], xs[0] - xs[2]
                out[..., ys[0] : ys[1], xs[0] : xs[1]] = top[
                    i : i + 1, :, oy : oy + ys[1] - ys[0], ox : ox + xs[1] - xs[0]
                ]
                continue
            # blended: the tile contributes over its core widened by `band` where it has neighbours
            y0, y1 = max(0, ys[0] - band), min(h, ys[1] + band)
            x0, x1 = max(0, xs[0] - band), min(w, xs[1] + band)
            wy = _ramp(y1 - y0, band, ys[0] > 0, ys[1] < h, out.device)
            wx = _ramp(x1 - x0, band, xs[0] > 0, xs[1] < w, out.device)
            patch = top[i : i + 1, :, y0 - ys[2] : y1 - ys[2], x0 - xs[2] : x1 - xs[2]]
            out[..., y0:y1, x0:x1] += patch * (wy[:, None] * wx[None, :])
        del top
    return out


# ---------------------------------------------------------------------------------------------- entry
def tiled_forward(
    generator: GCAGenerator,
    sca: Tensor,
    thumb: Tensor | None = None,
    mask: Tensor | None = None,
    settings: TileSettings | None = None,
    autocast: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Tensor:
    """``generator(sca, thumb, mask)["output"]`` computed by tiles: float ``(B, 3, H, W)`` in [0, 1].

    Inputs as :meth:`GCAGenerator.forward` (any size; ``(B, 3, H, W)`` / ``(B, 1, H, W)`` in [0, 1]); the
    generator must be in eval mode. Samples of a batch run one after the other. An image whose sides are
    both at most ``settings.tile`` runs through ``generator`` itself. ``autocast``: a context manager
    factory every tile's computation runs under (e.g. bf16 autocast); statistics and buffers stay float32.
    """
    settings = settings or TileSettings()
    if generator.training:
        raise TilingError("tiled inference needs the generator in eval mode")
    generator._check_inputs(sca, thumb, mask)
    h, w = sca.shape[-2:]
    if h <= settings.tile and w <= settings.tile:
        with autocast():
            return generator(sca, thumb, mask)["output"].float()
    if sca.shape[0] > 1:
        return torch.cat(
            [
                tiled_forward(
                    generator,
                    sca[i : i + 1],
                    None if thumb is None else thumb[i : i + 1],
                    None if mask is None else mask[i : i + 1],
                    settings,
                    autocast,
                )
                for i in range(sca.shape[0])
            ]
        )
    mult = generator.required_multiple
    hp, wp = h + (-h) % mult, w + (-w) % mult
    parts = [sca]
    if generator.use_thumbnail:
        parts.append(thumb)
    if generator.use_mask:
        parts.append(mask)
    x = _Value(_InputSource(parts, hp, wp), [])
    runner = _Runner(float(settings.tile) ** 2 * REFERENCE_CHANNELS, settings.batch, autocast)
    coarse = coarse_tiled(generator.coarse, x, runner)
    if generator.refine is None:
        return to_unit(coarse.buf[..., :h, :w]).clamp(0.0, 1.0)
    return refine_tiled(generator, coarse, sca, thumb, mask, settings, autocast)
