"""Embedding backends of the diagnosis (``--backbone``): the interface and :class:`EmbedCfg` in
:mod:`.base`; ``scratch``, ``text:minilm`` (:mod:`.minilm`), ``hf`` (CLIP and SigLIP, :mod:`.hf_clip`)
and ``precomputed`` (:mod:`.precomputed`) register in :data:`BACKENDS` when this package is
imported (their heavy imports happen only when used)."""

from misalignlab.detect.backends import hf_clip, minilm, precomputed, scratch  # noqa: F401, I001  (register)
from misalignlab.detect.backends.base import (
    BACKBONE_HELP,
    BACKBONES,
    BACKENDS,
    HF_INSTALL,
    EmbedCfg,
    EmbeddingBackend,
    budget_embed_cfg,
    parse_backbone,
    require_hf,
    unit,
)

__all__ = [
    "BACKBONE_HELP",
    "BACKBONES",
    "BACKENDS",
    "HF_INSTALL",
    "EmbedCfg",
    "EmbeddingBackend",
    "budget_embed_cfg",
    "parse_backbone",
    "require_hf",
    "unit",
]
