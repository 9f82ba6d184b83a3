"""Write captions for scene factors with planted misalignment, and record the ground truth.

Four mechanisms, after the latent variable model of Cai et al. (NeurIPS 2025):

- ``omit``: factors never stated in any caption (*selection bias*, ``I_θ^c``). This is a
  property of the whole dataset, so it does not make a pair "incomplete".
- ``perturb``: per stated factor, the probability that its word is replaced by the word of a
  *different* value, drawn uniformly (*perturbation bias*, ``I_ρ``; the image keeps the true
  value). Only stated words can be perturbed.
- ``drop_rate``: probability that a pair leaves out one of the factors the dataset normally
  states (chosen uniformly). A dropped factor cannot also be perturbed.
- ``outlier_rate``: probability that a pair gets another image's clean caption; the source is
  chosen so that its stated factors differ from this image's in at least one value.

Each pair's ``kind`` follows the precedence unrelated > wrong > incomplete > aligned.
The clean caption of a pair uses the same template (and synonym choices) as its own caption,
minus drops and perturbations. This module builds no images; see ``scene_dataset``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from misalignlab.data.scenes.captions import TEMPLATES, build_caption, written_word
from misalignlab.data.scenes.factors import FACTORS, SEMANTIC, SceneCfg, check_factor_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InjectionCfg:
    """Which misalignment to plant, and how captions are phrased.

    Parameters
    ----------
    omit : tuple of str
        Semantic factors no caption ever states (selection bias).
    perturb : dict of str to float
        Factor → probability that its stated word is replaced by a different value's word.
    outlier_rate : float
        Probability that a pair carries another image's caption.
    drop_rate : float
        Probability that a pair leaves out one normally stated factor.
    synonyms : bool
        Write synonyms (chosen per pair and slot) instead of always the value word.
    n_templates : int
        Templates drawn from (uniformly, per pair): the first ``n_templates`` of
        :data:`~misalignlab.data.scenes.captions.TEMPLATES`.
    """

    omit: tuple[str, ...] = ()
    perturb: dict[str, float] = field(default_factory=dict)
    outlier_rate: float = 0.0
    drop_rate: float = 0.0
    synonyms: bool = False
    n_templates: int = len(TEMPLATES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "omit", tuple(self.omit))
        object.__setattr__(self, "perturb", {str(k): float(v) for k, v in dict(self.perturb).items()})
        check_factor_names(self.omit, "omit")
        check_factor_names(self.perturb, "perturb")
        for name, p in self.perturb.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"perturb[{name}] = {p} is not a probability in [0, 1]")
        both = sorted(set(self.omit) & set(self.perturb))
        if both:
            raise ValueError(f"perturb names omitted factor(s) {both}: a word never written cannot be wrong")
        for name in ("outlier_rate", "drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} = {rate} is not a probability in [0, 1]")
        if not 1 <= self.n_templates <= len(TEMPLATES):
            raise ValueError(f"n_templates must be in [1, {len(TEMPLATES)}], got {self.n_templates}")

    def stated_factors(self, scene: SceneCfg) -> tuple[str, ...]:
        """Factors every clean caption states: active semantic factors minus ``omit``."""
        inactive = sorted(set(self.perturb) - set(scene.factors))
        if inactive:
            raise ValueError(f"perturb names inactive factor(s) {inactive}; active: {', '.join(scene.stateable)}")
        base = tuple(f for f in scene.stateable if f not in self.omit)
        if not base:
            raise ValueError(f"omit {list(self.omit)} leaves no active factor to state")
        return base


def inject(
    factors: pd.DataFrame, scene: SceneCfg, cfg: InjectionCfg, rng: np.random.Generator
) -> tuple[list[str], pd.DataFrame]:
    """Caption every scene with planted misalignment.

    Parameters
    ----------
    factors : pandas.DataFrame
        Factor codes, as from :func:`~misalignlab.data.scenes.render.sample_factors`.
    scene : SceneCfg
        Which factors are active (inactive ones are never stated).
    cfg : InjectionCfg
        The misalignment to plant.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    captions : list of str
        One caption per row.
    truth : pandas.DataFrame
        One row per pair: ``pair`` (row position), ``kind``, ``template``, ``stated`` (factors written),
        ``dropped``, ``changed`` (factor → [true word, written word]), ``outlier_source``
        (-1 unless unrelated), ``caption``, ``clean_caption`` and ``text_<factor>`` (the code
        the caption states for each semantic factor, -1 if unstated).
    """
    base = cfg.stated_factors(scene)
    n = len(factors)
    codes = {f: factors[f].to_numpy(dtype=np.int64) for f in base}  # (n,) each
    template = rng.integers(cfg.n_templates, size=n)
    choice = rng.integers(0, 1 << 30, size=(n, len(base))) if cfg.synonyms else np.zeros((n, len(base)), int)
    source = _outlier_sources(codes, rng.random(n) < cfg.outlier_rate, rng)
    dropped = np.where(rng.random(n) < cfg.drop_rate, rng.integers(len(base), size=n), -1)
    wrong = {}  # factor → (n,) written code, equal to the true code where not perturbed
    for f in base:
        if f in cfg.perturb:
            k = FACTORS[f].n_values
            hit = rng.random(n) < cfg.perturb[f]
            wrong[f] = np.where(hit, (codes[f] + rng.integers(1, k, size=n)) % k, codes[f])
    clean = [_caption(base, {f: codes[f][i] for f in base}, choice[i], template[i]) for i in range(n)]
    rows = []
    for i in range(n):
        if source[i] >= 0:
            rows.append(_outlier_row(i, base, codes, source[i], clean))
            continue
        stated = [f for j, f in enumerate(base) if j != dropped[i]]
        said = {f: (wrong[f][i] if f in wrong else codes[f][i]) for f in stated}
        changed = {f: [_word(f, codes[f][i]), _word(f, said[f])] for f in stated if said[f] != codes[f][i]}
        kind = "wrong" if changed else "incomplete" if len(stated) < len(base) else "aligned"
        text = _caption(stated, said, choice[i, [base.index(f) for f in stated]], template[i])
        rows.append(_row(i, kind, stated, [f for f in base if f not in stated], changed, -1, text, said))
    truth = pd.DataFrame(rows, columns=[c for c in _columns() if c not in ("template", "clean_caption")])
    truth["template"] = template.astype(np.int64)
    truth["clean_caption"] = clean
    return truth["caption"].tolist(), truth[_columns()]


def _word(factor: str, code: int) -> str:
    return FACTORS[factor].values[int(code)]


def _caption(stated: list[str] | tuple[str, ...], codes: dict, choice: np.ndarray, template: int) -> str:
    words = {f: written_word(f, int(codes[f]), int(c)) for f, c in zip(stated, choice, strict=True)}
    return build_caption(words, int(template)).text


def _row(
    i: int, kind: str, stated: list | tuple, dropped: list, changed: dict, source: int, text: str, said: dict
) -> dict:
    row = {"pair": i, "kind": kind, "stated": list(stated), "dropped": list(dropped), "changed": changed}
    row |= {"outlier_source": int(source), "caption": text}
    return row | {f"text_{f}": int(said.get(f, -1)) for f in SEMANTIC}


def _outlier_row(i: int, base: tuple[str, ...], codes: dict, src: int, clean: list[str]) -> dict:
    said = {f: codes[f][src] for f in base}
    return _row(i, "unrelated", base, [], {}, src, clean[src], said)


def _columns() -> list[str]:
    head = ["pair", "kind", "template", "stated", "dropped", "changed", "outlier_source"]
    return head + ["caption", "clean_caption"] + [f"text_{f}" for f in SEMANTIC]


def _outlier_sources(codes: dict[str, np.ndarray], picked: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each picked pair, another pair whose stated codes differ; -1 elsewhere."""
    n = len(picked)
    key = np.zeros(n, dtype=np.int64)  # mixed-radix id of the stated codes
    for f, c in codes.items():
        key = key * FACTORS[f].n_values + c
    source = np.full(n, -1, dtype=np.int64)
    todo = np.flatnonzero(picked)
    for _ in range(64 if n > 1 else 0):
        if not todo.size:
            break
        cand = rng.integers(n - 1, size=todo.size)
        cand += cand >= todo  # uniform over the other pairs
        ok = key[cand] != key[todo]
        source[todo[ok]] = cand[ok]
        todo = todo[~ok]
    if todo.size:
        log.warning("%d pair(s) drawn as outliers kept their caption: no other image differs", todo.size)
    return source
