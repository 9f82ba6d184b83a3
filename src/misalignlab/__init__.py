"""misalignlab: image–text contrastive learning when captions do not match their images.

The package follows the data flow lvm → data → models → train → detect → strategies → evaluate →
pilot → report → workflows → cli. Library modules never import :mod:`misalignlab.cli`.

Public API: :func:`diagnose` (score, type and explain every pair of a dataset; the ``diagnose``
command as a call returning the pair table). It is imported on first use, so ``import misalignlab``
stays cheap (no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "diagnose"]

if TYPE_CHECKING:  # type checkers and IDEs see the real signature
    from misalignlab.workflows.diagnose_api import diagnose

# name → module holding it; imported by __getattr__ on first access
_LAZY = {"diagnose": "misalignlab.workflows.diagnose_api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'misalignlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
