"""Small shared helpers (atomic file output, ...). No torch, no Hydra."""

from src.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text"]
