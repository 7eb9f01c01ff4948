"""Seeds derived from a base seed and integer keys: the one derivation every reproducible draw uses.

``derive_seed(base, *keys)`` hashes ``[base mod 2**32, *keys]`` with numpy's ``SeedSequence`` into a 32-bit
seed, so a draw depends on its own keys only (an image's corruption does not depend on which other images
are in a split or folder). The key layouts: ``src.data.dataset.sample_seed`` (split, epoch, index),
``src.restoration.scoring.eval_seed`` (3, image, BER, repetition) and ``src.data.corrupted_folder.item_seed``
(crc32 of the name, variant).
"""

from __future__ import annotations

import numpy as np


def derive_seed(base: int, *keys: int) -> int:
    """A seed 0 <= s < 2**32 of ``base`` (taken mod 2**32) and the non-negative integer ``keys``."""
    ss = np.random.SeedSequence([int(base) & 0xFFFFFFFF, *(int(k) for k in keys)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])
