"""Diagnose image–caption pairs: cross-fitted codes → detectors → slot typing → explanations.

:func:`diagnose_pairs` works on pairs (images in memory or a memmap store) and returns a
:class:`Diagnosis` (a per-pair table and a summary); :func:`run_diagnosis` reads a user dataset through
:func:`~misalignlab.data.ingest.stream.open_pairs` (bad rows quarantined), diagnoses it and writes
``pairs.parquet``, ``summary.json`` and ``gallery.html`` to the output folder. Decoded images
(:mod:`~misalignlab.data.ingest.image_store`), embeddings and the fold models are cached under
``<out>/cache`` unless another cache folder is given.
Progress is reported through an optional ``progress(stage, done, total)`` callable; this module
prints nothing.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.config import to_dict
from misalignlab.detect.base import DetectionResult, PairView, build_detectors
from misalignlab.detect.combined import DEFAULT_MEMBERS, Combined
from misalignlab.detect.embeddings import EmbedCfg, PairEmbeddings, crossfit_embeddings
from misalignlab.detect.explain import explanations
from misalignlab.detect.slots import SlotSchema, cached_slot_evidence, fashion_schema, infer_schema, scene_schema
from misalignlab.kinds import KINDS
from misalignlab.runs import atomic_write_bytes, write_json
from misalignlab.stats import wilson_interval
from misalignlab.train.distributed import current

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
SCHEMAS = ("auto", "scenes", "fashion_mnist", "infer", "none")


def _default_detectors() -> dict[str, dict[str, Any]]:
    return {"similarity": {}, "neighbourhood": {}, "pair_loss": {}, "slot_swap": {}}


@dataclass(frozen=True)
class DiagnoseCfg:
    """Everything a diagnosis needs. ``detectors``: name → kwargs, run before ``combined``.

    ``flag_score``: pairs typed non-aligned, or with a combined score at least this, are flagged
    for quarantine. ``gallery``: how many of the worst pairs the HTML gallery shows.
    """

    embed: EmbedCfg = field(default_factory=EmbedCfg)
    detectors: dict[str, dict[str, Any]] = field(default_factory=_default_detectors)
    combined: dict[str, Any] = field(default_factory=dict)
    schema: str = "auto"
    flag_score: float = 0.95
    gallery: int = 60

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise ValueError(f"unknown slot schema {self.schema!r}; valid: {', '.join(SCHEMAS)}")


def choose_schema(name: str, captions: Sequence[str]) -> SlotSchema | None:
    """The slot schema ``name``; ``auto`` picks a known vocabulary covering ≥ 80 % of captions, else infers."""
    if name == "none":
        return None
    known = {"scenes": scene_schema, "fashion_mnist": fashion_schema}
    if name in known:
        return known[name]().with_usual(captions)
    if name == "auto":
        sample = list(captions[:5000])
        for make in known.values():
            schema = make()
            if np.mean([len(schema.parse(c)) >= 2 for c in sample]) >= 0.8:
                return schema.with_usual(captions)
    schema = infer_schema(captions)
    return schema if schema.slots else None


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Per-pair table (id, scores, type, explanation, flag), all detector results and a summary."""

    table: pd.DataFrame
    results: Mapping[str, DetectionResult]
    summary: dict[str, Any]
    embeddings: PairEmbeddings


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
) -> Diagnosis:
    """Diagnose pairs (ids unique; images (N, S, S, 3) uint8, in memory or a memmap read in slices)."""
    tick = progress or (lambda stage, done, total: None)
    tick("embedding", 0, cfg.embed.folds)
    emb = crossfit_embeddings(
        ids, images, captions, cfg.embed, cache_dir, on_fold=lambda k, n: tick("embedding", k + 1, n)
    )
    schema = choose_schema(cfg.schema, captions)
    tick("slots", 0, 1)
    slots = cached_slot_evidence(emb, captions, schema) if schema is not None else None
    tick("slots", 1, 1)
    view = PairView(emb.ids, emb.image_emb, emb.text_emb, emb.fold, slots)
    tick("detectors", 0, 1)
    results = score_view(view, cfg)
    tick("detectors", 1, 1)
    table = pair_table(view, results, cfg.flag_score)
    summary = summarise(table, slots, schema, results) | {"embedding_cache_hit": emb.cache_hit}
    return Diagnosis(table, results, summary, emb)


def pair_table(view: PairView, results: Mapping[str, DetectionResult], flag_score: float) -> pd.DataFrame:
    """One row per pair: id, ``score_<detector>``, ``score`` (combined), type, explanation, quarantine flag."""
    comb = results["combined"]
    kind = comb.kind if comb.kind is not None else np.where(comb.score >= flag_score, "unrelated", "aligned")
    flagged = (kind != "aligned") | (comb.score >= flag_score)
    table = pd.DataFrame({"id": view.pair_id.astype(str), "fold": view.fold})
    for name, res in results.items():
        if name != "combined":
            table[f"score_{name}"] = res.score
    table["score"] = comb.score
    table["type"] = kind
    table["explanation"] = explanations(comb, view.pair_id, flagged).astype(str)
    table["quarantine"] = flagged
    return table


def summarise(
    table: pd.DataFrame, slots: Any, schema: SlotSchema | None, results: Mapping[str, DetectionResult]
) -> dict[str, Any]:
    """Rates by type with Wilson 95 % intervals and the misalignment profile (slots omitted / wrong)."""
    n = len(table)
    counts = Counter(table["type"])
    rates = {}
    for k in KINDS:
        lo, hi = wilson_interval(counts[k], n)
        rates[k] = {"count": int(counts[k]), "rate": counts[k] / n if n else 0.0, "ci95": [lo, hi]}
    omitted: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    ev = results["combined"].evidence
    for e in ev:
        if e.kind == "missing":
            omitted[e.slot or ""] += 1
        elif e.kind == "contradicted" and table["type"].iat[e.pair] == "wrong":
            wrong[e.slot or ""] += 1
    return {
        "pairs": n,
        "flagged": int(table["quarantine"].sum()),
        "types": rates,
        "profile": {"omitted": dict(omitted.most_common()), "wrong": dict(wrong.most_common())},
        "schema": {"source": schema.source, "slots": list(schema.slots), "usual": list(schema.usual)}
        if schema
        else None,
        "detectors": {name: dict(res.info) for name, res in results.items()},
    }


def run_diagnosis(
    stream: Any, cfg: DiagnoseCfg, out: Path, cache_dir: Path | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Diagnose an opened :class:`~misalignlab.data.ingest.stream.PairStream` and write the outputs to ``out``.

    Returns the summary (also written to ``summary.json``), with the ingest counts under ``ingest``.
    Under ``torchrun`` the fold models are shared out over the ranks (:mod:`~misalignlab.detect.folds`)
    and rank 0 alone scores and writes; the other ranks return an empty dict.
    """
    from misalignlab.data.ingest.image_store import store_pairs
    from misalignlab.report.gallery import write_gallery

    out = Path(out)
    cache = cache_dir or out / "cache"
    # decoded images go chunk by chunk to a memmap on disk: a million pairs never sit in memory at once
    pairs = store_pairs(stream, cache, on_chunk=None if progress is None else lambda n: progress("reading", n, 0))
    if not current().is_main:  # a torchrun rank other than 0: train its share of the folds; rank 0 writes
        crossfit_embeddings(pairs.ids, pairs.images, pairs.captions, cfg.embed, cache)
        return {}
    diag = diagnose_pairs(pairs.ids, pairs.images, pairs.captions, cfg, cache, progress)
    table = diag.table.assign(caption=list(pairs.captions), source_line=[r.line for r in pairs.rows])
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(out / "pairs.parquet", buf.getvalue())
    summary = diag.summary | {"ingest": stream.summary(), "config": to_dict(cfg)}
    write_json(out / "summary.json", summary)
    write_gallery(out / "gallery.html", table, pairs.images, summary, cfg.gallery)
    return summary
