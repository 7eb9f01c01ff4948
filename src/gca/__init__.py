"""GCA (guided compensation and alignment): the paper's coarse pix2pixHD GAN and refine Laplacian-pyramid
fusion network, their losses, and the LightningModules that train them.

- :mod:`src.gca.networks`: ``CoarseGenerator``, ``MultiscaleDiscriminator``
- :mod:`src.gca.refine`: ``RefinePyramid``
- :mod:`src.gca.generator`: ``GCAGenerator`` (inputs in [0, 1], padding, export / load)
- :mod:`src.gca.losses`: LSGAN, feature matching, Sobel edge, Charbonnier, VGG perceptual
- :mod:`src.gca.modules`: ``CoarseGANModule``, ``RefineGANModule``
"""

from src.gca.generator import GCAGenerator, build_generator, export_generator, load_generator
from src.gca.modules import CoarseGANModule, RefineGANModule
from src.gca.networks import CoarseGenerator, MultiscaleDiscriminator, NetworkConfigError, count_parameters
from src.gca.refine import RefinePyramid

__all__ = [
    "CoarseGANModule",
    "CoarseGenerator",
    "GCAGenerator",
    "MultiscaleDiscriminator",
    "NetworkConfigError",
    "RefineGANModule",
    "RefinePyramid",
    "build_generator",
    "count_parameters",
    "export_generator",
    "load_generator",
]
