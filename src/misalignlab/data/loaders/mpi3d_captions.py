"""Captions for MPI3D-Complex under the paper's selection and perturbation settings (§7).

A :class:`CaptionSetting` names the semantic factors a caption mentions and those whose word is
perturbed: with probability ``perturb_prob`` the word is replaced by a uniform draw from the
factor's values (possibly the true one). One of three templates is drawn per pair. All draws are a
pure function of ``(seed, index)`` via a counter-based hash, so a caption never depends on which
other pairs were asked for or in which order. Ground truth (words used, perturbed slots, template)
is returned with the captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEMANTIC_FACTORS: tuple[str, ...] = ("colour", "shape", "size", "camera", "background")
MPI3D_WORDS: dict[str, tuple[str, ...]] = {
    "colour": ("yellow", "green", "olive", "red"),
    "shape": ("coffee-cup", "tennis-ball", "croissant", "beer-cup"),
    "size": ("small", "large"),
    "camera": ("top", "center", "bottom"),
    "background": ("purple", "sea-green", "salmon"),
}
N_TEMPLATES = 3
SETTING_KINDS = ("selection", "perturbation")
# Paper §7: selection adds colour, shape, size, camera, background in turn (nothing perturbed);
# perturbation mentions all five and perturbs these sets.
SELECTION = {k: SEMANTIC_FACTORS[:k] for k in range(1, 6)}
PERTURBATION = {
    1: (),
    2: ("background",),
    3: ("camera", "background"),
    4: ("size", "camera", "background"),
    5: ("shape", "size", "camera", "background"),
}


@dataclass(frozen=True)
class CaptionSetting:
    """Which semantic factors a caption mentions, and which of them are perturbed."""

    mentioned: tuple[str, ...]
    perturbed: tuple[str, ...] = ()
    perturb_prob: float = 0.9

    def __post_init__(self) -> None:
        """ValueError unless perturbed ⊊ mentioned ⊆ SEMANTIC_FACTORS and 0 <= perturb_prob <= 1."""
        unknown = sorted(set(self.mentioned) - set(SEMANTIC_FACTORS))
        if unknown or not self.mentioned or len(set(self.mentioned)) != len(self.mentioned):
            raise ValueError(f"mentioned must be distinct names from {SEMANTIC_FACTORS}, got {self.mentioned}")
        if not set(self.perturbed) < set(self.mentioned) or len(set(self.perturbed)) != len(self.perturbed):
            raise ValueError(f"perturbed {self.perturbed} must be a proper subset of mentioned {self.mentioned}")
        if not 0.0 <= self.perturb_prob <= 1.0:
            raise ValueError(f"perturb_prob must be in [0, 1], got {self.perturb_prob}")


def mpi3d_setting(kind: str, level: int, perturb_prob: float = 0.9) -> CaptionSetting:
    """The paper's setting ``level`` (1–5) of ``kind`` (``selection`` or ``perturbation``)."""
    if kind not in SETTING_KINDS:
        raise ValueError(f"unknown setting kind {kind!r}; valid: {', '.join(SETTING_KINDS)}")
    if level not in SELECTION:
        raise ValueError(f"setting level must be one of {sorted(SELECTION)}, got {level}")
    if kind == "selection":
        return CaptionSetting(SELECTION[level], (), perturb_prob)
    return CaptionSetting(SEMANTIC_FACTORS, PERTURBATION[level], perturb_prob)


@dataclass(frozen=True)
class MPI3DCaptions:
    """Captions with the ground truth that produced them, aligned with the requested indices."""

    captions: tuple[str, ...]  # (N,)
    text_factors: np.ndarray  # (N, 5) int64: value each word names; -1 where the factor is not mentioned
    perturbed: np.ndarray  # (N, 5) bool: the word was redrawn (it may still equal the true value)
    template: np.ndarray  # (N,) int64 in 0..N_TEMPLATES-1
    setting: CaptionSetting


_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def uniform_hash(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws, one per index, a pure function of ``(seed, index, stream)``."""
    with np.errstate(over="ignore"):
        key = _splitmix(np.array([seed & (2**64 - 1)], dtype=np.uint64) + _GOLDEN * np.uint64(stream + 1))
        x = _splitmix(_splitmix(index.astype(np.uint64) ^ key))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"


def render_caption(words: dict[str, str], template: int) -> str:
    """One caption from the mentioned factors' words.

    Template 0 reads ``a large olive croissant seen from the top, salmon background``; an unmentioned
    shape becomes ``object``; other unmentioned factors are left out.
    """
    noun = " ".join(w for w in (words.get("size"), words.get("colour"), words.get("shape", "object")) if w)
    phrase = f"{_article(noun)} {noun}"
    cam, bg = words.get("camera"), words.get("background")
    if template == 0:
        return phrase + (f" seen from the {cam}" if cam else "") + (f", {bg} background" if bg else "")
    if template == 1:
        on_bg = f" on {_article(bg)} {bg} background" if bg else ""
        return phrase + on_bg + (f", camera at the {cam}" if cam else "")
    if template == 2:
        wall = f" in front of {_article(bg)} {bg} wall" if bg else ""
        return f"a photo of {phrase}" + (f" taken from the {cam}" if cam else "") + wall
    raise ValueError(f"template must be in 0..{N_TEMPLATES - 1}, got {template}")


def make_captions(
    factors: np.ndarray, indices: np.ndarray, setting: CaptionSetting, seed: int = 0, sizes: Sequence[int] | None = None
) -> MPI3DCaptions:
    """Caption pairs with semantic ``factors`` ``(N, 5)`` and dataset ``indices`` ``(N,)``.

    ``sizes`` are the semantic factors' value counts (default: the real 4, 4, 2, 3, 3); a
    perturbed word is drawn uniformly from them.
    """
    sizes = tuple(sizes) if sizes is not None else tuple(len(MPI3D_WORDS[f]) for f in SEMANTIC_FACTORS)
    n = len(indices)
    text = np.full((n, len(SEMANTIC_FACTORS)), -1, dtype=np.int64)
    perturbed = np.zeros((n, len(SEMANTIC_FACTORS)), dtype=bool)
    for j, name in enumerate(SEMANTIC_FACTORS):
        if name not in setting.mentioned:
            continue
        text[:, j] = factors[:, j]
        if name in setting.perturbed:
            coin = uniform_hash(seed, indices, 1 + 2 * j) < setting.perturb_prob  # (N,)
            draw = np.floor(uniform_hash(seed, indices, 2 + 2 * j) * sizes[j]).astype(np.int64)  # (N,)
            text[:, j] = np.where(coin, draw, text[:, j])
            perturbed[:, j] = coin
    template = np.floor(uniform_hash(seed, indices, 0) * N_TEMPLATES).astype(np.int64)
    captions = tuple(
        render_caption({f: MPI3D_WORDS[f][v] for f, v in zip(SEMANTIC_FACTORS, row) if v >= 0}, int(t))
        for row, t in zip(text.tolist(), template.tolist(), strict=True)
    )
    return MPI3DCaptions(captions, text, perturbed, template, setting)
