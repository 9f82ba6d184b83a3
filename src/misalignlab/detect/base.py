"""One result schema for every misalignment detector, the detector interface and its registry.

A detector reads a :class:`PairView` (cached cross-fitted embeddings plus, when typing has run,
slot evidence), declares which of its fields it ``requires``, and returns a
:class:`DetectionResult`: one score per pair in ``[0, 1]`` (higher = more likely misaligned), an
optional misalignment kind per pair, per-pair evidence and flat ``info``. Detectors never mutate
the view; learned state (if any) ends in ``_``.

This module holds no detector; each lives in its own file and registers itself in
:data:`DETECTORS` when :mod:`misalignlab.detect` is imported.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from misalignlab.config import parse_assignment
from misalignlab.kinds import KINDS
from misalignlab.registry import Registry

if TYPE_CHECKING:
    from misalignlab.detect.typed import TypedPairs


@dataclass(frozen=True)
class Evidence:
    """Why one pair was flagged: the slot involved, what the caption says and what the image shows.

    ``kind`` is ``contradicted`` (``said`` vs ``seen``), ``missing`` (``slot`` not stated) or
    ``better_match`` (``other`` is the index of an image that matches the caption better).
    """

    pair: int
    kind: str
    slot: str | None = None
    said: str | None = None
    seen: str | None = None
    other: int | None = None
    strength: float = 0.0
    span: tuple[int, int] | None = None  # where ``said`` stands in the caption (for a suggested fix)


@dataclass(frozen=True, eq=False)
class DetectionResult:
    """The output of every detector (one row per pair, aligned by position)."""

    detector: str
    pair_id: np.ndarray  # (N,) str
    score: np.ndarray  # (N,) float in [0, 1]; higher = more likely misaligned
    kind: np.ndarray | None = None  # (N,) str from KINDS, or None if the detector does not type
    evidence: tuple[Evidence, ...] = ()
    info: Mapping[str, float | int | str] = field(default_factory=dict)
    probabilities: np.ndarray | None = None  # (N, 4) float32 P(kind) in KINDS order, or None

    def __post_init__(self) -> None:
        n = len(self.pair_id)
        assert self.score.shape == (n,), (self.score.shape, n)
        assert np.all((self.score >= 0) & (self.score <= 1)), "scores must lie in [0, 1]"
        assert self.kind is None or self.kind.shape == (n,)
        assert self.probabilities is None or self.probabilities.shape == (n, len(KINDS))


@dataclass(frozen=True, eq=False)
class PairView:
    """What detectors read: cross-fitted codes of ``N`` pairs and, when slots were found, typed pairs.

    ``image_emb[i]`` and ``text_emb[i]`` come from the model of fold ``fold[i]``, which never
    trained on pair ``i``. Codes of different folds live in different spaces, so detectors that
    compare pairs with each other do so within a fold. ``image_key``: pairs sharing a key are
    captions of one image (COCO, Flickr30k), all in one fold; detectors that look for other pairs
    agreeing or disagreeing with pair ``i`` leave out the other captions of its image, which agree
    with it trivially. None: every pair has its own image.
    """

    pair_id: np.ndarray  # (N,) str
    image_emb: np.ndarray  # (N, D) float32, unit norm
    text_emb: np.ndarray  # (N, D) float32, unit norm
    fold: np.ndarray  # (N,) int
    typed: TypedPairs | None = None
    image_key: np.ndarray | None = None  # (N,) str; None: the pair ids (one caption per image)

    def __len__(self) -> int:
        return len(self.pair_id)

    def has(self, name: str) -> bool:
        return getattr(self, name, None) is not None

    def fold_groups(self) -> list[np.ndarray]:
        """Indices of the pairs of each fold, in fold order."""
        return [np.flatnonzero(self.fold == k) for k in np.unique(self.fold)]

    def image_groups(self) -> np.ndarray:
        """(N,) int64 code of each pair's image: equal for the captions of one image."""
        return np.arange(len(self), dtype=np.int64) if self.image_key is None else image_groups(self.image_key)


class Detector(ABC):
    """Base class: hyperparameters in ``__init__``, ``detect`` returns a result and mutates nothing."""

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ("image_emb", "text_emb")

    def check(self, view: PairView) -> None:
        missing = [r for r in self.requires if not view.has(r)]
        if missing:
            raise ValueError(f"detector {self.name!r} needs {', '.join(missing)}; run slot typing first")

    @abstractmethod
    def detect(self, view: PairView) -> DetectionResult: ...


DETECTORS: Registry[type[Detector]] = Registry("detector")


def image_groups(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """(N,) int64 codes of image keys: equal keys, equal codes (cheap to compare in bulk)."""
    keys = np.asarray(keys, dtype=str)
    return np.unique(keys, return_inverse=True)[1].reshape(len(keys)).astype(np.int64)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of unit vectors: (N, D) × (N, D) → (N,)."""
    return np.einsum("nd,nd->n", a, b, dtype=np.float32)


def robust_z(x: np.ndarray, groups: list[np.ndarray] | None = None) -> np.ndarray:
    """(x − median) / (1.4826 · MAD), computed within each group of indices (folds); float32."""
    out = np.zeros(len(x), dtype=np.float32)
    for idx in groups if groups is not None else [np.arange(len(x))]:
        v = x[idx].astype(np.float64)
        med = np.median(v)
        mad = 1.4826 * np.median(np.abs(v - med))
        scale = mad if mad > 1e-12 else (v.std() if v.std() > 1e-12 else 1.0)
        out[idx] = (v - med) / scale
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))).astype(np.float32)


def build_detectors(spec: Mapping[str, Mapping[str, object]]) -> list[Detector]:
    """``{"neighbourhood": {"k": 10}, "similarity": {}}`` → detector instances, in spec order."""
    return [DETECTORS.get(name)(**dict(kwargs)) for name, kwargs in spec.items()]


def parse_detector_spec(items: list[str]) -> dict[str, dict[str, object]]:
    """CLI form ``["neighbourhood:k=10,pool=5000", "similarity"]`` → name → kwargs (values as JSON)."""
    spec: dict[str, dict[str, object]] = {}
    for item in items:
        name, _, rest = item.partition(":")
        pairs = (parse_assignment(part, f"{item!r}: detector option") for part in rest.split(",") if part.strip())
        DETECTORS.get(name.strip())  # unknown names list the known ones
        spec[name.strip()] = dict(pairs)
    return spec
