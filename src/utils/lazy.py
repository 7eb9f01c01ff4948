"""Package attributes imported on first use (PEP 562), so a numpy-only sub-module of a package that also holds
torch code imports without torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, attributes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``attributes[name]`` (a module path) when
    ``name`` is first asked for."""

    def __getattr__(name: str) -> Any:
        if name in attributes:
            return getattr(importlib.import_module(attributes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
