"""src.gca.losses on known inputs and real photos."""

from __future__ import annotations

import math

import kornia
import pytest
import torch

from src.gca.losses import (
    PAPER_GREY_WEIGHTS,
    PerceptualLoss,
    PerceptualWeightsError,
    SobelEdgeLoss,
    VGG19Features,
    charbonnier,
    feature_matching_loss,
    lsgan_loss,
)


def photo(rgb) -> torch.Tensor:
    return torch.from_numpy(rgb[:96, :128].copy()).permute(2, 0, 1)[None].float() / 255.0


def test_charbonnier_known_values(astronaut):
    x = photo(astronaut)
    assert charbonnier(x, x).item() == pytest.approx(math.sqrt(1e-6), rel=1e-6)
    assert charbonnier(x, x + 0.5).item() == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-6)
    assert charbonnier(x, x, eps=1e-2).item() == pytest.approx(0.1, rel=1e-6)
    # kornia's charbonnier_loss is Barron's sqrt(d^2 + 1) - 1, a different function (about d^2 / 2 here)
    kornia_value = kornia.losses.charbonnier_loss(x + 0.5, x, reduction="mean").item()
    assert kornia_value == pytest.approx(math.sqrt(1.25) - 1, rel=1e-5)
    assert abs(kornia_value - charbonnier(x, x + 0.5).item()) > 0.3


def test_edge_loss_zero_for_identical_and_flat_shifts(coffee):
    loss = SobelEdgeLoss()
    x = photo(coffee)
    assert loss(x, x).item() == 0.0
    # a constant offset has no gradient anywhere (replicate padding): the edge loss ignores colour casts
    assert loss(x + 0.1, x).item() == pytest.approx(0.0, abs=1e-10)
    assert loss(x.roll(2, dims=-1), x).item() > 1e-3
    assert loss(torch.nn.functional.avg_pool2d(x, 3, 1, 1), x).item() > 1e-4


def test_edge_map_of_a_step_is_four_times_its_grey_height():
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8:] = 0.5  # vertical step edge of height 0.5 in R, G and B
    edges = SobelEdgeLoss().edge_map(x)
    grey_step = 0.5 * sum(PAPER_GREY_WEIGHTS)
    # unnormalised Sobel [-1 0 1; -2 0 2; -1 0 1] answers 4 x step on both columns next to the edge
    torch.testing.assert_close(edges[0, 0, 4, 7:9], torch.full((2,), math.sqrt((4 * grey_step) ** 2 + 1e-6)))
    torch.testing.assert_close(edges[0, 0, 4, :6], torch.full((6,), math.sqrt(1e-6)))


def test_lsgan_on_constant_scores():
    d_out = [
        [torch.zeros(2, 8, 4, 4), torch.full((2, 1, 5, 5), 0.25)],
        [torch.zeros(2, 8, 2, 2), torch.full((2, 1, 3, 3), 0.25)],
    ]
    assert lsgan_loss(d_out, True).item() == pytest.approx(2 * 0.75**2)
    assert lsgan_loss(d_out, False).item() == pytest.approx(2 * 0.25**2)


@pytest.mark.parametrize(("num_scales", "n_layers"), [(2, 3), (3, 2)])
def test_feature_matching_weights_sum_to_four_and_real_is_detached(num_scales, n_layers):
    real = [
        [torch.randn(2, 4, 6, 6, requires_grad=True) for _ in range(n_layers + 2)] for _ in range(num_scales)
    ]
    fake = [[(r + 1.0).detach().requires_grad_(True) for r in scale] for scale in real]
    loss = feature_matching_loss(fake, real)
    # every |fake - real| = 1 and the pix2pixHD weights (1/num_D)(4/(n_layers+1)) over all terms sum to 4
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert all(r.grad is None for scale in real for r in scale)
    assert fake[0][0].grad is not None
    assert fake[0][-1].grad is None  # the score map is not a matched feature


def test_perceptual_loss_refuses_to_run_without_weights(tmp_path):
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(PerceptualWeightsError, match=r"vgg19.pth.*not found.*weights_path"):
        PerceptualLoss(missing)
    with pytest.raises(PerceptualWeightsError, match="not found"):
        PerceptualLoss(None)


def test_perceptual_loss_loads_a_torchvision_style_state_dict(tmp_path, chelsea):
    torch.manual_seed(0)
    ref = VGG19Features(allow_random_init=True)
    path = tmp_path / "vgg19.pth"
    # torchvision's vgg19 keys: features.N.weight / features.N.bias (+ classifier.*, ignored)
    torch.save({**ref.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}, path)
    loss = PerceptualLoss(path, input_range="0,1")
    x = photo(chelsea)
    for a, b in zip(loss.vgg(x), ref(x), strict=True):
        torch.testing.assert_close(a, b)
    assert [f.shape[1] for f in ref(x)] == [64, 128, 256, 512, 512]
    assert loss(x, x).item() == 0.0
    assert loss(x.flip(-1), x).item() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(PerceptualWeightsError, match="not a VGG19 state dict"):
        PerceptualLoss(tmp_path / "bad.pth")


def test_gated_charbonnier_averages_over_the_gate_only(astronaut):
    from src.gca.losses import gated_charbonnier

    x = photo(astronaut)
    y = x.clone()
    y[..., 10:20, 30:40] += 0.25  # the only error, inside the gate
    gate = torch.zeros(1, 1, *x.shape[-2:])
    gate[..., 10:20, 30:40] = 1.0
    assert gated_charbonnier(y, x, gate).item() == pytest.approx(math.sqrt(0.0625 + 1e-6), rel=1e-5)
    # the plain mean dilutes the same error by the gate's area share
    share = 100 / (96 * 128)
    assert charbonnier(y, x).item() == pytest.approx(share * 0.25 + (1 - share) * 1e-3, rel=1e-3)
    # all-ones gate: the plain mean; empty gate: zero
    assert gated_charbonnier(y, x, torch.ones_like(gate)).item() == pytest.approx(charbonnier(y, x).item())
    assert gated_charbonnier(y, x, torch.zeros_like(gate)).item() == 0.0
