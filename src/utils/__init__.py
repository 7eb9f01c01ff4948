"""Small shared helpers: atomic file output (:mod:`src.utils.io`), image arrays (:mod:`src.utils.images`),
photos (:mod:`src.utils.photos`), seeds (:mod:`src.utils.seeds`), the entry points' CLI and Hydra glue
(:mod:`src.utils.cli`, :mod:`src.utils.hydra_utils`). No torch at import, no Hydra outside the last two."""

from src.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text"]
