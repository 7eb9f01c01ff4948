"""Learning-rate schedules for the GCA modules, stepped once per EPOCH by the modules themselves.

With manual optimisation of a GAN, ``global_step`` advances once per optimizer step (two per batch), so
schedules here never look at steps.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["ConstantThenLinear", "constant_then_linear"]


class ConstantThenLinear:
    """lr factor of 0-based epoch ``e``: 1 while ``e <= epochs_constant``, then 1/epochs_decay less per epoch.

    The paper (pix2pixHD ``niter 100``, ``niter_decay 100``): epochs 1-101 at the base lr, epoch 102 at 0.99x,
    ..., epoch 200 at 0.01x, 0 afterwards. A picklable object (not a lambda), so the scheduler state saves.
    """

    def __init__(self, epochs_constant: int = 100, epochs_decay: int = 100) -> None:
        if epochs_constant < 0 or epochs_decay < 1:
            raise ValueError(
                f"need epochs_constant >= 0 and epochs_decay >= 1; got {epochs_constant}, {epochs_decay}"
            )
        self.epochs_constant, self.epochs_decay = epochs_constant, epochs_decay

    def __call__(self, epoch: int) -> float:
        return max(0.0, 1.0 - max(0, epoch - self.epochs_constant) / self.epochs_decay)


def constant_then_linear(
    optimizer: Optimizer, epochs_constant: int = 100, epochs_decay: int = 100
) -> LambdaLR:
    """A ``LambdaLR`` with :class:`ConstantThenLinear`; call ``.step()`` once per epoch."""
    return LambdaLR(optimizer, ConstantThenLinear(epochs_constant, epochs_decay))
