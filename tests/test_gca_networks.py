"""src.gca networks: the paper's parameter counts, shapes at several sizes and levels, input conventions."""

from __future__ import annotations

import pytest
import torch

from src.gca import (
    CoarseGenerator,
    GCAGenerator,
    MultiscaleDiscriminator,
    NetworkConfigError,
    RefinePyramid,
    build_generator,
    count_parameters,
)
from src.gca.refine import build_image_pyramid


def small_coarse(in_channels: int = 6, **kw) -> CoarseGenerator:
    cfg = dict(ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1) | kw
    return CoarseGenerator(in_channels=in_channels, **cfg)


# ---------------------------------------------------------------- the paper's sizes (research/paper.md §3.2)


def test_parameter_counts_match_the_paper():
    g = CoarseGenerator()  # the paper's defaults: 6 input channels, ngf 16 -> 32 global, 4 downsamplings
    g1 = count_parameters(g.global_net)
    g2 = count_parameters(g.local_down) + count_parameters(g.local_up)
    assert round(g1 / 1e6, 2) == 17.30
    assert round(g2 / 1e6, 3) == 0.072
    # the paper's refined(scen 1 or 2) builds 3 level CNNs (1.12 M), scen 3 builds 4 (1.49 M)
    assert round(count_parameters(RefinePyramid(levels=3)) / 1e6, 2) == 1.12
    assert round(count_parameters(RefinePyramid(levels=4)) / 1e6, 2) == 1.49
    assert round(count_parameters(MultiscaleDiscriminator()) / 1e6, 1) == 5.5
    total = count_parameters(build_generator(CoarseGenerator, RefinePyramid(levels=3)))
    assert round(total / 1e6, 1) == 18.5


def test_init_is_normal_002():
    g = CoarseGenerator()
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert abs(w.mean().item()) < 1e-3


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", [(64, 64), (32, 96)])
@pytest.mark.parametrize("n_local", [0, 1, 2])
def test_coarse_generator_shapes(size, n_local):
    g = small_coarse(7, n_local_enhancers=n_local)
    x = torch.rand(2, 7, *size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, *size)
    assert y.abs().max() <= 1.0  # tanh
    assert g.required_multiple == 2 ** (n_local + 2)


def test_coarse_generator_refuses_bad_sizes():
    g = small_coarse()
    with pytest.raises(NetworkConfigError, match=r"multiples of 8; got 60x64"):
        g(torch.zeros(1, 6, 60, 64))
    with pytest.raises(NetworkConfigError, match=r"\(B, 6, H, W\); got \(1, 3, 64, 64\)"):
        g(torch.zeros(1, 3, 64, 64))
    with pytest.raises(NetworkConfigError, match="norm 'group'"):
        CoarseGenerator(norm="group")


@pytest.mark.parametrize(("n_layers", "num_scales"), [(3, 2), (2, 3)])
def test_discriminator_features(n_layers, num_scales):
    d = MultiscaleDiscriminator(in_channels=9, ndf=8, n_layers=n_layers, num_scales=num_scales)
    out = d(torch.rand(2, 9, 64, 64))
    assert len(out) == num_scales
    for feats in out:
        assert len(feats) == n_layers + 2
        assert feats[-1].shape[:2] == (2, 1)
        assert feats[0].shape[1] == 8
    # each scale sees a half-size input: its first feature map is about half as wide
    assert out[1][0].shape[-1] == pytest.approx(out[0][0].shape[-1] / 2, abs=1)


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_refine_pyramid_levels(levels):
    r = RefinePyramid(levels=levels, width=8, depth=3, extra_channels=4)
    h, w = 64, 128
    base = (h // 2 ** (levels - 1), w // 2 ** (levels - 1))
    assert r.base_size(h, w) == base
    outs = r(torch.rand(2, 3, h, w), torch.rand(2, 3, *base), torch.rand(2, 4, h, w))
    assert [tuple(o.shape[-2:]) for o in outs] == [(h // 2**k, w // 2**k) for k in range(levels - 1, -1, -1)]
    with pytest.raises(NetworkConfigError, match="thumb_base must be"):
        r(torch.rand(2, 3, h, w), torch.rand(2, 3, h + 2, w), torch.rand(2, 4, h, w))
    with pytest.raises(NetworkConfigError, match="extra must have 4 channels"):
        r(torch.rand(2, 3, h, w), torch.rand(2, 3, *base), None)


def test_image_pyramid_keeps_flat_images_flat():
    x = torch.full((1, 3, 64, 64), 0.25)
    pyr = build_image_pyramid(x, 4)
    assert [p.shape[-1] for p in pyr] == [8, 16, 32, 64]
    for p in pyr:
        torch.testing.assert_close(p, torch.full_like(p, 0.25))


# ---------------------------------------------------------------- the full generator


def _inputs(b=2, h=64, w=64):
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(b, 3, h, w, generator=g),
        torch.rand(b, 3, h, w, generator=g),
        (torch.rand(b, 1, h, w, generator=g) > 0.5).float(),
    )


def test_generator_input_channels_follow_flags():
    for use_thumbnail, use_mask, cin in [
        (True, False, 6),
        (True, True, 7),
        (False, False, 3),
        (False, True, 4),
    ]:
        gen = build_generator(small_coarse, None, use_thumbnail=use_thumbnail, use_mask=use_mask)
        assert gen.coarse.in_channels == cin
    with pytest.raises(
        NetworkConfigError, match="in_channels=6, but use_thumbnail=True, use_mask=True give 7"
    ):
        GCAGenerator(small_coarse(6), use_mask=True)
    with pytest.raises(NetworkConfigError, match="refine_inputs"):
        build_generator(small_coarse, RefinePyramid, refine_inputs=("gt",))


def test_generator_pads_any_size_for_inference():
    gen = build_generator(
        small_coarse,
        RefinePyramid(levels=3, width=8, depth=3, extra_channels=7),
        True,
        True,
        ("sca", "mask", "thumb"),
    )
    sca, thumb, mask = _inputs(1, 50, 70)
    with torch.no_grad():
        out = gen(sca, thumb, mask)
    assert out["coarse"].shape == out["refined"].shape == (1, 3, 50, 70)
    assert 0 <= out["refined"].min() and out["refined"].max() <= 1
    with pytest.raises(NetworkConfigError, match="needs mask"):
        gen(sca, thumb, None)


def test_residual_refine_starts_from_its_input():
    r = RefinePyramid(levels=2, width=8, depth=3, extra_channels=3)
    for p in r.parameters():
        torch.nn.init.zeros_(p)
    gen = build_generator(small_coarse, r, refine_inputs=("sca",), refine_residual=True)
    sca, thumb, _ = _inputs()
    with torch.no_grad():
        out = gen.run(sca, thumb)
    # a zero correction gives back the SCA image at every level (bicubic-halved below the top)
    torch.testing.assert_close(out["refined"], sca * 2 - 1)
    torch.testing.assert_close(out["levels"][0], build_image_pyramid(sca * 2 - 1, 2)[0])


def _gated(init: str = "normal") -> tuple[GCAGenerator, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Our variant (mask input, residual refine, 4-px gate) and 64x64 inputs with one filled MCU:
    ``(generator, sca, thumb, mask)``."""
    gen = build_generator(
        small_coarse,
        RefinePyramid(levels=2, width=8, depth=3, extra_channels=7, init=init),
        True,
        True,
        ("sca", "mask", "thumb"),
        refine_residual=True,
        mask_gate=4,
    )
    sca, thumb, _ = _inputs(2, 64, 64)
    mask = torch.ones(2, 1, 64, 64)
    mask[:, :, 16:32, 32:48] = 0.0  # one filled MCU
    return gen, sca, thumb, mask


def test_mask_gate_passes_trusted_content_exactly():
    gen, sca, thumb, mask = _gated()
    with torch.no_grad():
        out = gen.run(sca, thumb, mask)
    changed = (out["refined"] - (sca * 2 - 1)).abs().amax(dim=1) > 0
    # the random-init correction changes the filled MCU (and its 4-px rim), nothing else
    assert changed[:, 16:32, 32:48].all()
    assert not changed[:, :12].any() and not changed[:, 36:].any() and not changed[:, :, :28].any()
    assert changed[:, 12:36, 28:52].any() and not changed[:, :, 52:].any()
    with pytest.raises(NetworkConfigError, match="mask_gate needs"):
        build_generator(small_coarse, None, True, True, mask_gate=4)
    # the gate survives export / rebuild
    assert GCAGenerator.from_spec(gen.spec()).mask_gate == 4


def test_paper_refine_fuses_thumbnail_at_the_base():
    r = RefinePyramid(levels=2, width=8, depth=3)
    with torch.no_grad():
        for p in r.parameters():
            p.zero_()
        r.thumb_conv.weight[:, :, 1, 1] = torch.eye(3)  # identity 3x3 conv
        r.up_convs[0].conv.weight[:, :, 1, 1] = torch.eye(3)
    gen = build_generator(small_coarse, r)
    sca, thumb, _ = _inputs()
    with torch.no_grad():
        out = gen.run(sca, thumb)
    base = torch.nn.functional.adaptive_avg_pool2d(thumb * 2 - 1, (32, 32))
    torch.testing.assert_close(out["levels"][0], base)
    torch.testing.assert_close(out["refined"], torch.nn.functional.interpolate(base, scale_factor=2.0))


def test_residual_init_returns_the_input_and_trains_every_layer():
    gen, sca, thumb, mask = _gated("residual")
    out = gen.run(sca, thumb, mask)
    torch.testing.assert_close(out["refined"], sca * 2 - 1)  # untrained: exactly the SCA image
    assert [g.shape[-1] for g in out["gates"]] == [32, 64] and out["gates"][-1].max() == 1.0
    (out["refined"] - 0.3).pow(2).mean().backward()
    level_net = gen.refine.level_nets[-1].body
    assert level_net[-1].weight.grad.abs().sum() > 0  # the zero output conv learns ...
    opt = torch.optim.SGD(gen.refine.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    out = gen.run(sca, thumb, mask)
    (out["refined"] - 0.3).pow(2).mean().backward()
    assert level_net[0].weight.grad.abs().sum() > 0  # ... and then the layers below it too
