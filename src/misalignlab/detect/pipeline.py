"""Diagnose image–caption pairs: cross-fitted codes → detectors → typing → explanations.

:func:`diagnose_pairs` works on pairs (images in memory or a memmap store) and returns a
:class:`Diagnosis` (a per-pair table, a per-image table and a summary). Where several captions
share an image (``image_keys``), they share a fold and no detector takes one for another's
neighbour, negative or unrelated null; the per-image verdicts are :mod:`misalignlab.detect.images`.
Embeddings and fold models are cached under the given cache folder. A pretrained backbone that
wants the original files at its own size reads them from the optional
:class:`~misalignlab.data.ingest.originals.ImageSource`; a backbone that cannot embed new captions
(``precomputed``) gets no simulated edits, so no omission is typed.
Reading a user's dataset and writing a run folder is the workflow's job
(:mod:`misalignlab.workflows.diagnose`). Progress is reported through an optional
``progress(stage, done, total)`` callable; this module prints nothing and writes no results.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.config import with_overrides
from misalignlab.data.ingest.originals import ImageSource
from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.base import DETECTORS, DetectionResult, PairView, build_detectors, image_groups
from misalignlab.detect.classify import TypingCfg
from misalignlab.detect.combined import DEFAULT_MEMBERS, Combined
from misalignlab.detect.crossfit import PairEmbeddings, crossfit_embeddings, shared_image_keys
from misalignlab.detect.explain import evidence_columns, explanations, one_hot
from misalignlab.detect.images import image_summary, image_table
from misalignlab.detect.profile import estimated_rates
from misalignlab.detect.typed import TypedPairs, read_vocabulary, type_pairs
from misalignlab.kinds import KINDS
from misalignlab.runs import Progress
from misalignlab.stats import wilson_interval

log = logging.getLogger(__name__)
DIAGNOSE_STEPS = EmbedCfg().train.steps  # the ``diagnose`` command's training steps per fold model (its ``--steps``)


def _default_detectors() -> dict[str, dict[str, Any]]:
    return {"similarity": {}, "neighbourhood": {}, "pair_loss": {}}


@dataclass(frozen=True)
class DiagnoseCfg:
    """Everything a diagnosis needs. ``detectors``: name → kwargs, run before ``combined``.

    ``schema``: where the caption slots come from: ``auto`` (inferred from the captions), ``none``,
    a built-in vocabulary (``scenes``, ``fashion_mnist``) or a vocabulary file (JSON or TOML,
    :mod:`misalignlab.detect.vocabulary`). ``flag_score``: pairs typed non-aligned, or with a
    combined score at least this, are flagged for quarantine. ``gallery``: the most pairs in the
    HTML gallery (all non-aligned pairs first, then the highest-scoring aligned ones; about 10 MB of
    192-px previews per 1,000 photos).
    """

    embed: EmbedCfg = field(default_factory=EmbedCfg)
    detectors: dict[str, dict[str, Any]] = field(default_factory=_default_detectors)
    combined: dict[str, Any] = field(default_factory=dict)
    typing: TypingCfg = field(default_factory=TypingCfg)
    schema: str = "auto"
    flag_score: float = 0.95
    gallery: int = 1000

    def __post_init__(self) -> None:
        if not self.schema:
            raise ValueError("schema must be auto, none, a built-in vocabulary name or a vocabulary file")
        if self.gallery < 0:
            raise ValueError(f"gallery must be >= 0 (pairs in the gallery), got {self.gallery}")


def diagnose_config(
    schema: str = "auto",
    backbone: str = "auto",
    steps: int | None = None,
    folds: int | None = None,
    detectors: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Iterable[str] = (),
) -> DiagnoseCfg:
    """The :class:`DiagnoseCfg` of ``diagnose``'s options: one place, so the command, the library call and
    the pilot diagnose alike.

    ``backbone`` is a ``--backbone`` spec (``precomputed:FILE.npz`` for codes computed elsewhere),
    ``steps`` the training steps of a fold model and ``folds`` the cross-fitting folds (None: the
    :class:`~misalignlab.detect.backends.EmbedCfg` defaults, the one place they are set), ``detectors``
    name → keyword arguments (replacing the default set), ``overrides`` dotted ``key=value`` strings
    (values as JSON), applied last.

    Raises
    ------
    ValueError
        An unknown backbone, detector or config key, a value out of range (naming it), or a schema
        that is no built-in name and no readable vocabulary file (the file and entry named).
    """
    base = DiagnoseCfg(schema=schema)
    if schema != "auto":  # a missing or malformed vocabulary file fails now, not after the fold models trained
        read_vocabulary(schema, ())
    train = base.embed.train if steps is None else dataclasses.replace(base.embed.train, steps=steps)
    folds = base.embed.folds if folds is None else folds
    embed = dataclasses.replace(base.embed, folds=folds, train=train).with_backbone(backbone)
    cfg = dataclasses.replace(base, embed=embed)
    if detectors:
        for name in detectors:
            DETECTORS.get(name)  # an unknown name fails here, listing the known ones
        cfg = dataclasses.replace(cfg, detectors={name: dict(kwargs) for name, kwargs in detectors.items()})
    return with_overrides(cfg, overrides)


def within_budget(cfg: DiagnoseCfg, steps: int) -> DiagnoseCfg:
    """``cfg`` with its fold training cut to at most ``steps`` per fold model; every other setting unchanged.

    The small-loss pass (``embed.reweight_steps``) and the warm-up shrink in the same proportion, so the
    shortened training keeps the shape of the full one. ``steps`` at or above the configured steps
    return ``cfg`` itself.
    """
    train = cfg.embed.train
    if steps >= train.steps:
        return cfg
    if steps < 1:
        raise ValueError(f"a diagnosis needs at least 1 training step per fold, got {steps}")
    share = steps / train.steps
    cut = dataclasses.replace(train, steps=steps, warmup_steps=min(train.warmup_steps, int(train.warmup_steps * share)))
    embed = dataclasses.replace(cfg.embed, train=cut, reweight_steps=int(round(cfg.embed.reweight_steps * share)))
    return dataclasses.replace(cfg, embed=embed)


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Per-pair table (id, scores, type, explanation, flag), all detector results, a summary and the
    per-image table (:func:`~misalignlab.detect.images.image_table`; one row per pair without image keys)."""

    table: pd.DataFrame
    results: Mapping[str, DetectionResult]
    summary: dict[str, Any]
    embeddings: PairEmbeddings
    images: pd.DataFrame
    typed: TypedPairs | None = None


def score_view(view: PairView, cfg: DiagnoseCfg) -> dict[str, DetectionResult]:
    """Run the configured detectors and then ``combined`` on an already built view."""
    results: dict[str, DetectionResult] = {}
    for det in build_detectors(cfg.detectors):
        if all(view.has(r) for r in det.requires):
            results[det.name] = det.detect(view)
    members = cfg.combined.get("members") or {n: w for n, w in DEFAULT_MEMBERS.items() if n in results}
    combined = Combined(**{**cfg.combined, "members": members})
    results["combined"] = combined.detect(view, results)
    return results


def diagnose_pairs(
    ids: Sequence[str],
    images: np.ndarray,
    captions: Sequence[str],
    cfg: DiagnoseCfg = DiagnoseCfg(),
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    originals: ImageSource | None = None,
    image_keys: Sequence[str] | None = None,
) -> Diagnosis:
    """Diagnose pairs (ids unique; images (N, S, S, 3) uint8, in memory or a memmap read in slices).

    ``originals`` says where each pair's original file can be re-read, for a backbone that embeds
    images at its own size (``hf``); without it every backbone sees ``images``. ``image_keys``: (N,)
    pairs sharing a key are captions of one image (None: the ids, one caption per image).
    """
    keys = shared_image_keys(ids, image_keys)
    group = None if keys is None else image_groups(keys)
    tick = progress or (lambda stage, done, total: None)
    tick("embedding", 0, cfg.embed.folds)
    on_fold = lambda k, n: tick("embedding", k + 1, n)  # noqa: E731
    emb = crossfit_embeddings(ids, images, captions, cfg.embed, cache_dir, on_fold, originals, keys)
    tick("typing", 0, 1)
    typed = type_pairs(emb, captions, cfg.schema, cfg.typing, group)
    tick("typing", 1, 1)
    view = PairView(emb.ids, emb.image_emb, emb.text_emb, emb.fold, typed, None if keys is None else np.asarray(keys))
    tick("detectors", 0, 1)
    results = score_view(view, cfg)
    tick("detectors", 1, 1)
    table = pair_table(view, results, cfg.flag_score, captions)
    images_table = image_table(table, emb.ids if keys is None else keys)
    summary = summarise(table, typed, results, images_table) | {"embedding_cache_hit": emb.cache_hit}
    return Diagnosis(table, results, summary, emb, images_table, typed)


def pair_table(
    view: PairView, results: Mapping[str, DetectionResult], flag_score: float, captions: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per pair (columns: :data:`PAIR_COLUMNS` and ``score_<detector>``)."""
    comb = results["combined"]
    kind = comb.kind if comb.kind is not None else np.where(comb.score >= flag_score, "unrelated", "aligned")
    flagged = (kind != "aligned") | (comb.score >= flag_score)
    table = pd.DataFrame({"id": view.pair_id.astype(str), "fold": view.fold})
    for name, res in results.items():
        if name != "combined":
            table[f"score_{name}"] = res.score
    table["score"] = comb.score
    table["type"] = kind
    probs = comb.probabilities if comb.probabilities is not None else one_hot(kind)
    for j, k in enumerate(KINDS):
        table[f"p_{k}"] = probs[:, j]
    table["explanation"] = explanations(comb, view.pair_id, flagged).astype(str)
    table = table.assign(**evidence_columns(comb.evidence, view.pair_id, None if captions is None else list(captions)))
    table["quarantine"] = flagged
    return table


def summarise(
    table: pd.DataFrame,
    typed: TypedPairs | None,
    results: Mapping[str, DetectionResult],
    images: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Counts by assigned type with Wilson 95 % intervals, the estimated rates (mixture proportions of the
    typing, :func:`~misalignlab.detect.profile.estimated_rates`), the slot profile (omitted / wrong) and,
    under ``images``, the images with their captions per image and verdicts
    (:func:`~misalignlab.detect.images.image_summary` of ``images``; without it, one image per pair)."""
    n = len(table)
    if images is None:
        images = image_table(table, table["id"].astype(str))
    counts = Counter(table["type"])
    types = {}
    for k in KINDS:
        lo, hi = wilson_interval(counts[k], n)
        types[k] = {"count": int(counts[k]), "rate": counts[k] / n if n else 0.0, "ci95": [lo, hi]}
    omitted: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    for e in results["combined"].evidence:
        if e.kind == "missing":
            omitted[e.slot or ""] += 1
        elif e.kind == "contradicted" and table["type"].iat[e.pair] == "wrong":
            wrong[e.slot or ""] += 1
    slots = None
    if typed is not None:
        seen = typed.typing.visibility >= 0.6
        slots = {"source": typed.vocabulary, "declared": typed.declared, "slots": list(typed.stated.slots),
                 "seen": [s for s, v in zip(typed.stated.slots, seen, strict=True) if v]}  # fmt: skip
    return {
        "pairs": n,
        "flagged": int(table["quarantine"].sum()),
        "types": types,
        "images": image_summary(images),
        "estimated": estimated_rates(table),
        "profile": {"omitted": dict(omitted.most_common()), "wrong": dict(wrong.most_common())},
        "schema": slots,
        "detectors": {name: dict(res.info) for name, res in results.items()},
    }
