"""GCA losses: LSGAN, discriminator feature matching, Sobel edge loss, Charbonnier, optional VGG perceptual.

Images are float ``(B, 3, H, W)``; the GAN losses take the nested lists a
:class:`~src.gca.networks.MultiscaleDiscriminator` returns (one list of block outputs per scale, the last
entry of each being the patch score map). Weights (x10 feature matching, x15 edge, x150 Charbonnier) are
applied by the LightningModules, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from src.errors import BitstreamRestoreError

__all__ = [
    "PAPER_GREY_WEIGHTS",
    "CharbonnierLoss",
    "PerceptualLoss",
    "PerceptualWeightsError",
    "SobelEdgeLoss",
    "VGG19Features",
    "charbonnier",
    "feature_matching_loss",
    "gated_charbonnier",
    "lsgan_loss",
]

#: The paper's ``sobel.GradLayer.get_gray`` weights (BT.601 studio Y without the +16 offset), RGB order.
PAPER_GREY_WEIGHTS = (65.738 / 256, 129.057 / 256, 25.064 / 256)


class PerceptualWeightsError(BitstreamRestoreError):
    """The VGG perceptual loss has no usable weights file (nothing can be downloaded here)."""


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """Restoration Charbonnier loss ``mean(sqrt((pred - target)**2 + eps))`` (a smooth L1), a scalar.

    Written by hand on purpose: ``kornia.losses.charbonnier_loss`` is Barron's general robust loss
    ``sqrt((x - y)**2 + 1) - 1`` (no eps, about L2 / 2 on [0, 1] images), a different function.
    """
    return torch.sqrt((pred - target).pow(2) + eps).mean()


def gated_charbonnier(pred: Tensor, target: Tensor, gate: Tensor, eps: float = 1e-6) -> Tensor:
    """Charbonnier averaged over the gated pixels only: ``sum(gate * c) / (C * sum(gate))`` with ``c`` the
    per-element ``sqrt((pred - target)**2 + eps)``; ``pred``/``target`` ``(B, C, H, W)``, ``gate``
    ``(B, 1, H, W)`` in [0, 1]. Zero (with a gradient path) when the gate is empty."""
    c = torch.sqrt((pred - target).pow(2) + eps)
    area = gate.sum() * pred.shape[1]
    return (c * gate).sum() / area.clamp_min(1.0)


class CharbonnierLoss(nn.Module):
    """Module form of :func:`charbonnier` (eps = 1e-6 as the paper's ``L1_Charbonnier_loss``)."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return charbonnier(pred, target, self.eps)


def lsgan_loss(d_out: Sequence[Sequence[Tensor]], target_is_real: bool) -> Tensor:
    """LSGAN: ``sum over scales of mean((score - label)**2)`` with label 1 (real) or 0 (fake)."""
    label = 1.0 if target_is_real else 0.0
    return sum(F.mse_loss(feats[-1], torch.full_like(feats[-1], label)) for feats in d_out)


def feature_matching_loss(fake: Sequence[Sequence[Tensor]], real: Sequence[Sequence[Tensor]]) -> Tensor:
    """pix2pixHD discriminator feature matching (unweighted by lambda_feat; the module multiplies by 10).

    L1 between the intermediate D features (all but the score map) of fake and real inputs, each term weighted
    ``(1 / num_scales) * (4 / (n_layers + 1))``; the real features are detached, so no gradient reaches D
    through them.
    """
    num_scales = len(fake)
    total = fake[0][0].new_zeros(())
    for f_scale, r_scale in zip(fake, real, strict=True):
        n_terms = len(f_scale) - 1  # = n_layers + 1
        w = (1.0 / num_scales) * (4.0 / n_terms)
        for f, r in zip(f_scale[:-1], r_scale[:-1], strict=True):
            total = total + w * F.l1_loss(f, r.detach())
    return total


class SobelEdgeLoss(nn.Module):
    """The paper's edge loss: MSE between Sobel gradient-magnitude maps of grey versions of two images.

    grey = RGB . ``grey_weights`` (kornia ``rgb_to_grayscale``), magnitude = ``sqrt(gx**2 + gy**2 + eps)``
    with the unnormalised 3x3 Sobel kernels (kornia ``sobel(normalized=False)``). kornia pads by replicating
    the border where the paper's conv zero-pads, so the two differ on the outer pixel ring only.
    """

    def __init__(self, grey_weights: Sequence[float] = PAPER_GREY_WEIGHTS, eps: float = 1e-6) -> None:
        super().__init__()
        self.register_buffer(
            "grey_weights", torch.tensor(list(grey_weights), dtype=torch.float32), persistent=False
        )
        self.eps = eps

    def edge_map(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` or ``(B, 1, H, W)`` -> ``(B, 1, H, W)`` gradient magnitude."""
        if x.shape[1] == 3:
            x = kornia.color.rgb_to_grayscale(x, rgb_weights=self.grey_weights.to(x.dtype))
        return kornia.filters.sobel(x, normalized=False, eps=self.eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(self.edge_map(pred), self.edge_map(target))


# torchvision's ``vgg19().features`` layout, rebuilt here (torchvision is not a dependency): numbers are
# conv output channels, "M" a 2x2 max-pool, so Sequential indices match torchvision's state-dict keys.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", *(256,) * 4, "M", *(512,) * 4, "M", *(512,) * 4)
#: Sequential indices of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's ``vgg19().features``.
VGG19_RELU_X_1 = (1, 6, 11, 20, 29)


class VGG19Features(nn.Module):
    """VGG19 conv layers up to relu5_1, returning relu1_1 .. relu5_1 (frozen, eval mode).

    ``weights_path``: a state dict of torchvision's VGG19 (keys ``features.N.weight`` / ``.bias``, e.g. the
    file ``vgg19-dcbb9e9d.pth``) or of this module. Without it, :class:`PerceptualWeightsError` unless
    ``allow_random_init`` (tests only: random features are no perceptual loss).
    """

    def __init__(self, weights_path: str | Path | None = None, allow_random_init: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*layers[: VGG19_RELU_X_1[-1] + 1])
        if weights_path is None or not Path(weights_path).is_file():
            if not allow_random_init:
                raise PerceptualWeightsError(
                    f"VGG19 weights file {weights_path!r} not found; the perceptual loss needs an explicit "
                    "weights_path to torchvision's VGG19 state dict (no download is possible), or turn it "
                    "off (lambda_vgg=0)"
                )
        else:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if k.startswith("features.")}
            wanted = self.state_dict().keys()
            missing = [k for k in wanted if k not in state]
            if missing:
                raise PerceptualWeightsError(
                    f"{weights_path}: not a VGG19 state dict; {len(missing)} keys missing, e.g. {missing[:3]}"
                )
            self.load_state_dict({k: state[k] for k in wanted})
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always frozen

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG19_RELU_X_1:
                out.append(x)
        return out


class PerceptualLoss(nn.Module):
    """pix2pixHD's VGG loss: sum_i w_i * L1(vgg_i(pred), vgg_i(target).detach()), w = 1/32, 1/16, 1/8, 1/4, 1.

    Inputs in [-1, 1] (``input_range="-1,1"``) or [0, 1] (``"0,1"``); they are mapped to [0, 1] and normalised
    with the ImageNet mean / std torchvision's weights expect (pix2pixHD fed [-1, 1] images unnormalised).
    """

    def __init__(
        self,
        weights_path: str | Path | None,
        layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
        input_range: str = "-1,1",
        allow_random_init: bool = False,
    ) -> None:
        super().__init__()
        if input_range not in ("-1,1", "0,1"):
            raise ValueError(f"input_range {input_range!r} is not supported; allowed: '-1,1', '0,1'")
        self.vgg = VGG19Features(weights_path, allow_random_init)
        self.layer_weights = tuple(layer_weights)
        self.input_range = input_range
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _prep(self, x: Tensor) -> Tensor:
        if self.input_range == "-1,1":
            x = (x + 1.0) * 0.5
        return (x - self.mean) / self.std

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        fp, ft = self.vgg(self._prep(pred)), self.vgg(self._prep(target))
        return sum(w * F.l1_loss(a, b.detach()) for w, a, b in zip(self.layer_weights, fp, ft, strict=True))
