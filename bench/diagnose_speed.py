"""Diagnosis throughput on free-form rendered-scene pairs, stage by stage, with an extrapolation to 10 M pairs.

Usage::

    python bench/diagnose_speed.py                                  # --mode detect, 100,000 pairs
    python bench/diagnose_speed.py --mode detect --n 1000000 --ref-n 4000 --threads 2 --out detect.json
    python bench/diagnose_speed.py --mode end-to-end --n 100000 --out e2e.json
    python bench/diagnose_speed.py --mode end-to-end --n 3000 --steps 60      # a check: short fold training
    python bench/diagnose_speed.py --mode end-to-end --n 3000 --layout files   # PNG folder + CSV manifest

Both modes print a Markdown table (stage, seconds, share, how the stage grows with N, its
extrapolation to ``--extrapolate`` pairs, 10 M by default), the total and pairs/s, and write all of
it to ``--out`` (JSON) when given. Data: ``make_freeform_scene_pairs`` (32×32 scenes, style ``a``,
10 % each of incomplete, wrong and unrelated captions planted). Datasets and embedding caches go
under ``--work`` (default ``runs/bench-cache``); nothing there is timed.

``--mode detect`` (what ``bench/run_gpu.py`` records) times everything ``diagnose`` runs once the
cross-fitted codes exist: :func:`~misalignlab.detect.typed.type_pairs` (vocabulary inference,
caption parsing, slot models, simulated edits encoded by the fold text towers, wording peers,
classify), the detectors and ``combined``, and the pair table with explanations. The codes are
real: :func:`~misalignlab.detect.crossfit.crossfit_embeddings` with a small training budget
(``--steps``, :func:`~misalignlab.detect.backends.budget_embed_cfg`, backbone ``text:minilm`` by
default), cached on disk, so a second run times only the part after the embeddings (the frozen
text tower is loaded before the clock starts). The first run pays for them: MiniLM encodes every
distinct caption on the CPU (about 135 captions/s on two busy cores). The plain reference is the neighbourhood detector
done the obvious way (full (n, n) similarity per fold, argsort, a Python loop over pairs) on the
first ``--ref-n`` pairs; the fast detector runs on the same pairs, its scores are checked against
the reference and the ratio is fast ÷ plain on that subset.

``--mode end-to-end`` runs what ``misalignlab diagnose DATA --backbone text:minilm`` runs, with
the default :class:`~misalignlab.detect.pipeline.DiagnoseCfg` (two folds of 900 steps after a
300-step small-loss pass, as the command) on ``N`` pairs with
unique captions, written first (untimed) as a parquet file of PNG bytes (``--layout parquet``) or
a folder of PNG files with a CSV manifest (``--layout files``). The timed call is
:func:`~misalignlab.workflows.diagnose.run_diagnosis` on the opened stream, into a fresh output
folder (no cache hit). Stage times come from wrapping library functions from this script
(:class:`Stopwatch`): each call is charged to its stage minus the calls of other stages nested in
it, so the stages add up to the total.

How each stage grows with N (read from the code; the ``growth`` column, for ``text:minilm``)
--------------------------------------------------------------------------------------------
- linear: ingest (decode every image, append it to the memmap store); caption encoding by the
  frozen MiniLM (every *distinct* caption once, hence unique captions here; the tower loads once,
  about 2 s); the small-loss pass (embeds and scores every training pair of each fold); embedding
  the held-out pairs; cross-fitting bookkeeping (a hash of every id for its fold, the cache key
  hashes every image byte, saves); vocabulary inference (a Python pass over every caption; the
  clustering is of at most 2,000 words, fixed); caption parsing and synonym groups (per slot,
  phrase and fold, a mask over N); slot models: scoring every pair and the bookkeeping (their
  fits are capped, below); the wording documents, TF-IDF and SVD of every
  caption, per seen slot; classify (the calibration fits take at most 50,000 points a side,
  ``calibrate.py``, but predictions, 5 shuffles and sorts are over N); the detectors (similarity;
  pair_loss against 255 sampled negatives, its GMM fitted on at most 200,000 losses; combined's
  evidence, a Python loop over flagged pairs); the pair table and explanations; pairs.parquet,
  summary and plots.
- fixed: fold training (300 + 900 steps of batch 256 per fold whatever N); simulated edits (at
  most 300 pairs per slot and fold, ``simulate.py``, each edited twice and encoded by the fold's
  text tower: at most 1,200 encodings per seen slot with two folds); the gallery (at most 1,000
  previews).
- capped: the slot models' logistic-regression fits (5-fold cross-fitted, on at most about 20,000
  stating pairs per slot and fold, ``slot_models.fit_sample``): they grow with a fold's pairs up to
  the cap and stay there.
- linear with a capped pool: the wording peers' top-k (every caption against a pool of at most
  20,000, ``wording.py``), the neighbourhood detector's (at most 8,192 pairs per fold) and the
  better-matching image of every pair typed unrelated (``classify._better_images``: top-1 among at
  most 50,000 images of its fold). Below
  the cap the cost per pair still grows; the extrapolation scales such a stage by
  ``M/N · min(pool(M), cap) / min(pool(N), cap)``.

The extrapolation is only as good as the N it starts from: at a few thousand pairs fixed
overheads inside linear stages and per-call overheads of the pooled ones inflate it; take it from
the 100,000-pair run. At 10 M pairs the image store is 30 GB on disk (32×32); ``CaptionCache``
keeps every distinct caption's 384-float code in a dict (over 15 GB, and as much again while it
is saved as ``captions.npz``) and stacks a fold's training codes (5 M × 384 float32, 7.7 GB) for training; per seen slot the
wording step holds N strings and a TF-IDF matrix. Caption encoding and the slot models
dominate.

A GPU changes only the torch stages, and not by default: ``DiagnoseCfg`` trains the fold models
on the CPU (``embed.train.device``), and the backends embed with CPU tensors, so a model trained
on CUDA would have to come back to the CPU first (not exercised here). The MiniLM tower always
runs on the CPU (``minilm_encoder`` never moves it), and typing, detectors and table are NumPy,
scikit-learn and Python (``topk_cosine`` uses CPU torch tensors). Several processes: under
``torchrun`` the folds are shared out over ranks (two folds: at most 2× on fold training, its
caption encoding and embedding); everything after the embeddings runs in rank 0 alone, so its
Python passes over captions (vocabulary, parsing, wording documents, explanations) and the slot
models would need splitting over processes to go faster.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

import misalignlab.detect.classify as classify_module
import misalignlab.detect.pipeline as pipeline
import misalignlab.detect.slot_models as slot_models_module
import misalignlab.detect.typed as typed_module
import misalignlab.detect.wording as wording_module
import misalignlab.workflows.diagnose as workflow
from misalignlab.data.freeform.scenes import FreeformCfg, make_freeform_scene_pairs
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.stream import open_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.detect.backends import BACKENDS, budget_embed_cfg
from misalignlab.detect.backends.base import EmbedCfg
from misalignlab.detect.base import PairView
from misalignlab.detect.crossfit import PairEmbeddings, crossfit_embeddings
from misalignlab.detect.neighbourhood import Neighbourhood
from misalignlab.detect.pipeline import DiagnoseCfg
from misalignlab.models.pair_model import ModelCfg

SCENE = SceneCfg(size=32)
PLANTED = FreeformCfg("a", 0.1, 0.1, 0.1)  # style a; incomplete, wrong, unrelated 10 % each
IMAGE_SIZE = 32  # what ``diagnose --image-size`` decodes to by default


# ---------------------------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class Stage:
    """A timed stage and how its cost grows with N: ``linear``, ``fixed``, ``pool`` (linear, each pair
    against at most ``cap`` others, per fold if ``per_fold``), ``capped`` (grows with the pairs, per
    fold if ``per_fold``, up to ``cap`` and no further) or ``quadratic``."""

    name: str
    growth: str
    cap: int = 0
    per_fold: bool = False

    def factor(self, n: int, m: int, folds: int) -> float:
        """How much longer the stage takes at ``m`` pairs than at ``n``.

        Parameters
        ----------
        n, m : int
            Pairs measured and pairs extrapolated to.
        folds : int
            Cross-fitting folds (a per-fold pool holds at most a fold's pairs).

        Returns
        -------
        float
            Time at ``m`` pairs ÷ time at ``n`` pairs.
        """
        if self.growth == "fixed":
            return 1.0
        if self.growth == "quadratic":
            return (m / n) ** 2
        per = folds if self.per_fold else 1
        if self.growth == "pool":
            return m / n * min(m / per, self.cap) / min(n / per, self.cap)
        if self.growth == "capped":
            return min(m / per, self.cap) / min(n / per, self.cap)
        return m / n

    @property
    def label(self) -> str:
        where = " per fold" if self.per_fold else ""
        if self.growth == "pool":
            return f"pool ≤ {self.cap:,}{where}"
        return f"capped at {self.cap:,}{where}" if self.growth == "capped" else self.growth


INGEST = Stage("ingest: read, decode, store", "linear")
TOWER = Stage("caption encoding (frozen MiniLM)", "linear")
TRAIN = Stage("fold training (fixed steps)", "fixed")
SMALL_LOSS = Stage("small-loss pass: score training pairs", "linear")
EMBED = Stage("embedding held-out pairs", "linear")
CROSSFIT = Stage("cross-fitting: fold split, cache key, saves", "linear")
VOCABULARY = Stage("vocabulary inference", "linear")
PARSE = Stage("caption parsing + synonym groups", "linear")
SLOT_MODELS = Stage("slot models: scoring, bookkeeping", "linear")
SLOT_FITS = Stage("slot models: logistic-regression fits", "capped", cap=20_000, per_fold=True)
SIMULATE = Stage("simulated edits (encode edited captions)", "fixed")
WORDING = Stage("wording peers: documents, TF-IDF, SVD", "linear")
PEERS = Stage("wording peers: top-k in the pool", "pool", cap=20_000)
CLASSIFY = Stage("classify", "linear")
BETTER_IMAGE = Stage(
    "classify: better-matching image (top-1 among ≤ 50,000 of the fold)", "pool", cap=50_000, per_fold=True
)
TYPING_REST = Stage("typing: rest", "linear")
DETECTORS = Stage("detectors + combined", "linear")
NEIGHBOURS = Stage("detectors: neighbourhood top-k", "pool", cap=8192, per_fold=True)
TABLE = Stage("pair table + explanations + summary", "linear")
PLOTS = Stage("plots", "linear")
GALLERY = Stage("gallery (≤ 1,000 previews)", "fixed")
REPORT = Stage("pairs.parquet, summary.json, run files", "linear")
OTHER = Stage("other", "linear")
STAGES = (INGEST, TOWER, TRAIN, SMALL_LOSS, EMBED, CROSSFIT, VOCABULARY, PARSE, SLOT_MODELS, SLOT_FITS, SIMULATE, WORDING,
          PEERS, CLASSIFY, BETTER_IMAGE, TYPING_REST, DETECTORS, NEIGHBOURS, TABLE, PLOTS, GALLERY, REPORT, OTHER)  # fmt: skip


class Stopwatch:
    """Exclusive wall time per stage: a timed call is charged to its stage, minus timed calls nested in it.

    A call may instead be charged to the stage it runs inside (``absorbed_by``): the text encodings of
    simulated edits count as simulated edits, not as caption encoding.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []
        self._mark = time.perf_counter()
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def _charge(self) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] = self.seconds.get(self._stack[-1], 0.0) + now - self._mark
        self._mark = now

    @contextmanager
    def stage(self, stage: Stage, absorbed_by: Sequence[Stage] = ()) -> Iterator[None]:
        """Charge the time inside the block to ``stage`` (or to the running stage, if among ``absorbed_by``)."""
        running = self._stack[-1] if self._stack else None
        name = running if running in {s.name for s in absorbed_by} else stage.name
        self._charge()
        self._stack.append(name)  # type: ignore[arg-type]
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def patch(self, owner: Any, attr: str, stage: Stage, absorbed_by: Sequence[Stage] = ()) -> None:
        """Replace ``owner.attr`` by a timed version until :meth:`restore`.

        Parameters
        ----------
        owner : module or class
            Where the caller looks the function up (a module that imported it by name, or a class).
        attr : str
            The function's or method's name there.
        stage : Stage
            Where its time goes.
        absorbed_by : sequence of Stage
            Stages that keep the time of this call when it runs inside them.
        """
        original = getattr(owner, attr)

        @functools.wraps(original)
        def on_the_clock(*args: Any, **kwargs: Any) -> Any:
            with self.stage(stage, absorbed_by):
                return original(*args, **kwargs)

        self._undo.append((owner, attr, original, attr in vars(owner)))
        setattr(owner, attr, on_the_clock)

    def restore(self) -> None:
        """Put back every patched attribute (an inherited method is removed again)."""
        for owner, attr, original, own in reversed(self._undo):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
        self._undo.clear()


def instrument(watch: Stopwatch, backend: str) -> None:
    """Time the library functions ``diagnose`` calls, where they are looked up (module docstring)."""
    import misalignlab.detect.backends.minilm as minilm

    cls = BACKENDS.get(backend)
    watch.patch(workflow, "store_pairs", INGEST)
    watch.patch(workflow, "write_gallery_plots", PLOTS)
    watch.patch(workflow, "write_gallery", GALLERY)
    watch.patch(pipeline, "crossfit_embeddings", CROSSFIT)
    watch.patch(minilm.CaptionCache, "__call__", TOWER, absorbed_by=(SIMULATE,))
    watch.patch(cls, "fit_fold", TRAIN)
    watch.patch(cls, "_clean_probability", SMALL_LOSS)
    for method in ("embed_images", "embed_texts"):
        watch.patch(cls, method, EMBED, absorbed_by=(SMALL_LOSS, SIMULATE))
    watch.patch(pipeline, "type_pairs", TYPING_REST)
    watch.patch(typed_module, "infer_vocabulary", VOCABULARY)
    watch.patch(typed_module, "parse_captions", PARSE)
    watch.patch(typed_module, "merge_synonyms", PARSE)
    watch.patch(typed_module, "fit_slot_models", SLOT_MODELS)
    watch.patch(slot_models_module, "_fit", SLOT_FITS)
    watch.patch(typed_module, "simulate", SIMULATE)
    watch.patch(typed_module, "peer_shares", WORDING)
    watch.patch(wording_module, "topk_cosine", PEERS)
    watch.patch(typed_module, "classify", CLASSIFY)
    watch.patch(classify_module, "_better_images", BETTER_IMAGE)
    watch.patch(pipeline, "score_view", DETECTORS)
    watch.patch(Neighbourhood, "agreement", NEIGHBOURS)
    watch.patch(pipeline, "pair_table", TABLE)
    watch.patch(pipeline, "summarise", TABLE)


def stage_rows(seconds: dict[str, float], n: int, m: int, folds: int) -> list[dict[str, Any]]:
    """One row per stage that ran: seconds, share, growth and the seconds extrapolated to ``m`` pairs."""
    total = sum(seconds.values())
    rows = []
    for stage in STAGES:
        if stage.name in seconds:
            s = seconds[stage.name]
            at_m = s * stage.factor(n, m, folds)
            rows.append({"stage": stage.name, "seconds": s, "share": s / total, "growth": stage.label, "at_m": at_m})
    return rows


def markdown(rows: list[dict[str, Any]], n: int, m: int) -> str:
    """The stage table, its total and pairs/s, at ``n`` pairs and extrapolated to ``m``."""
    total, total_m = sum(r["seconds"] for r in rows), sum(r["at_m"] for r in rows)
    lines = [
        f"| stage | seconds ({n:,} pairs) | share | growth | seconds at {m:,} (est.) | share at {m:,} |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['seconds']:.2f} | {r['share']:.1%} | {r['growth']} | {r['at_m']:,.0f} | "
            f"{r['at_m'] / total_m:.1%} |"
        )
    lines.append(f"| **total** | **{total:.2f}** | 100% | | **{total_m:,.0f}** ({total_m / 3600:.1f} h) | 100% |")
    lines.append(f"| pairs/s | {n / total:,.0f} | | | {m / total_m:,.0f} | |")
    return "\n".join(lines)


def report(watch: Stopwatch, n: int, m: int, folds: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Print the stage table and return it, with ``extra``, as a JSON-ready dict."""
    rows = stage_rows(watch.seconds, n, m, folds)
    print(markdown(rows, n, m))
    total = sum(r["seconds"] for r in rows)
    total_m = sum(r["at_m"] for r in rows)
    return extra | {
        "n": n,
        "stages": rows,
        "total_s": total,
        "pairs_per_s": n / total,
        "extrapolate_to": m,
        "extrapolated_total_s": total_m,
        "threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------------------------------- detect mode


@dataclass(frozen=True, eq=False)
class Inputs:
    """What the post-embedding part of ``diagnose`` reads: captions and cross-fitted codes."""

    captions: tuple[str, ...]
    emb: PairEmbeddings

    def view(self, m: int | None = None) -> PairView:
        """The untyped view of the first ``m`` pairs (all by default)."""
        e = self.emb
        return PairView(e.ids[:m], e.image_emb[:m], e.text_emb[:m], e.fold[:m])


def detect_embed_cfg(backbone: str, steps: int, seed: int = 0) -> EmbedCfg:
    """A small training budget: two folds of ``steps`` at batch 256, lr 1e-2, no small-loss pass."""
    return budget_embed_cfg(steps, 256, 1e-2, ModelCfg(code_dim=32, max_len=32), seed, backbone)


def detect_inputs(n: int, cache: Path, backbone: str = "text:minilm", steps: int = 300, seed: int = 0) -> Inputs:
    """Free-form scene pairs and their cross-fitted codes, built once and then read from ``cache``.

    Parameters
    ----------
    n : int
        Pairs (ids ``pair00000000`` …).
    cache : Path
        Embedding cache folder of :func:`~misalignlab.detect.crossfit.crossfit_embeddings`.
    backbone : str
        ``text:minilm`` or ``scratch``.
    steps : int
        Training steps per fold (:func:`detect_embed_cfg`).
    seed : int
        Data and training seed.

    Returns
    -------
    Inputs
        With the backbone's text tower loaded, so the first encoding is not timed.
    """
    pairs = make_freeform_scene_pairs(n, SCENE, PLANTED, seed)
    ids = [f"pair{i:08d}" for i in range(n)]
    emb = crossfit_embeddings(ids, pairs.images, pairs.captions, detect_embed_cfg(backbone, steps, seed), cache)
    if emb.backend.can_embed_text:
        emb.embed_texts(0, ["warm up"])  # load the frozen tower now, not inside the timed part
    return Inputs(pairs.captions, emb)


def fast(inputs: Inputs, cfg: DiagnoseCfg) -> pd.DataFrame:
    """What ``diagnose_pairs`` runs after the embeddings: typing, detectors + combined, the pair table."""
    typed = pipeline.type_pairs(inputs.emb, inputs.captions, cfg.schema, cfg.typing)
    e = inputs.emb
    view = PairView(e.ids, e.image_emb, e.text_emb, e.fold, typed)
    return pipeline.pair_table(view, pipeline.score_view(view, cfg), cfg.flag_score, inputs.captions)


def reference(view: PairView, k: int = 10, tau: float = 0.1, direct: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Plain neighbourhood scores: full (n, n) similarity per fold, argsort, a Python loop over pairs.

    Returns the scores (n,) and which pairs have a tie at their k-th neighbour in either modality
    (identical captions give identical codes): there any of the tied neighbours is a right answer.
    """
    score, tied = np.zeros(len(view)), np.zeros(len(view), dtype=bool)
    for f in np.unique(view.fold):
        idx = np.flatnonzero(view.fold == f)
        x, t = view.image_emb[idx].astype(np.float64), view.text_emb[idx].astype(np.float64)
        agree = []
        for q, o in ((x, t), (t, x)):
            s = q @ q.T
            np.fill_diagonal(s, -np.inf)
            order = np.argsort(-s, axis=1)
            nb = order[:, :k]
            sims = np.take_along_axis(s, nb, axis=1)
            w = np.exp((sims - sims[:, :1]) / tau)
            w /= w.sum(1, keepdims=True)
            agree.append(np.array([w[i] @ (o[nb[i]] @ o[i]) for i in range(len(idx))]))
            edge = np.take_along_axis(s, order[:, k - 1 : k + 1], axis=1)
            tied[idx] |= np.abs(edge[:, 0] - edge[:, 1]) < 1e-6
        s_i = direct * (x * t).sum(1) + (1 - direct) * 0.5 * (agree[0] + agree[1])
        score[idx] = np.clip((1 - s_i) / 2, 0, 1)
    return score, tied


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall time in seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


@dataclass(frozen=True)
class NeighbourCheck:
    """The fast neighbourhood detector against the plain one on the same pairs."""

    n: int
    fast_rate: float  # pairs/s
    ref_rate: float
    max_diff: float  # max |fast − plain| score over the pairs without a tie at the k-th neighbour
    tied: int  # pairs with such a tie (their neighbours may differ, rightly)
    max_diff_tied: float

    @property
    def ratio(self) -> float:
        return self.fast_rate / self.ref_rate


def check_neighbourhood(inputs: Inputs, ref_n: int) -> NeighbourCheck:
    """The fast neighbourhood detector and :func:`reference`, timed on the first ``ref_n`` pairs of
    ``inputs`` (torch warmed up first), and the largest score difference between them."""
    view = inputs.view(ref_n)
    Neighbourhood().detect(inputs.view(min(ref_n, 64)))  # torch's first matrix products are slow: not timed
    (plain, tied), ref_s = timed(lambda: reference(view))
    quick, fast_s = timed(lambda: Neighbourhood().detect(view).score)
    diff = np.abs(quick - plain)
    worst = lambda rows: float(diff[rows].max()) if rows.any() else 0.0  # noqa: E731
    return NeighbourCheck(len(view), len(view) / fast_s, len(view) / ref_s, worst(~tied), int(tied.sum()), worst(tied))


def run_detect(args: argparse.Namespace) -> dict[str, Any]:
    """``--mode detect``: build or read the codes, check the neighbourhood detector, time the rest."""
    steps = args.steps or 300
    inputs, build_s = timed(lambda: detect_inputs(args.n, args.work / "detect", args.backbone, steps, args.seed))
    hit = "read from the cache" if inputs.emb.cache_hit else "built and cached"
    print(f"codes of {args.n:,} pairs ({args.backbone}, {steps} steps per fold) {hit} in {build_s:.0f} s (untimed)")
    check = check_neighbourhood(inputs, args.ref_n)
    print(
        f"neighbourhood on {check.n:,} pairs: fast {check.fast_rate:,.0f} pairs/s, plain (full n×n per fold) "
        f"{check.ref_rate:,.0f} pairs/s: {check.ratio:.1f}×; max |fast − plain| = {check.max_diff:.1e} "
        f"({check.tied} pairs with a tie at the k-th neighbour: {check.max_diff_tied:.1e})"
    )
    watch = Stopwatch()
    instrument(watch, inputs.emb.backend.name)
    try:
        with watch.stage(OTHER):
            table = fast(inputs, DiagnoseCfg())
    finally:
        watch.restore()
    folds = len(np.unique(inputs.emb.fold))
    out = report(watch, args.n, args.extrapolate, folds, {"mode": "detect", "backbone": args.backbone})
    print(f"flagged {table['quarantine'].mean():.1%}; types {table['type'].value_counts().to_dict()}")
    return out | {
        "build_s": build_s,
        "cache_hit": inputs.emb.cache_hit,
        "neighbourhood": vars(check) | {"ratio": check.ratio},
    }


# ---------------------------------------------------------------------------------------------- end to end


def unique_pairs(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Free-form scene pairs with distinct captions: repeated captions are dropped and more scenes drawn.

    Returns
    -------
    images : (n, 32, 32, 3) uint8
    captions : list of n distinct str
    """
    images: list[np.ndarray] = []
    captions: list[str] = []
    seen: set[str] = set()
    draw = 0
    while len(captions) < n:
        size = max(2, n if draw == 0 else int(1.2 * (n - len(captions))) + 16)
        pairs = make_freeform_scene_pairs(size, SCENE, PLANTED, seed * 1000 + draw)
        keep = []
        for i, caption in enumerate(pairs.captions):
            if caption not in seen and len(captions) + len(keep) < n:
                seen.add(caption)
                keep.append(i)
        images.append(pairs.images[keep])
        captions += [pairs.captions[i] for i in keep]
        draw += 1
    return np.concatenate(images), captions


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet(folder: Path, ids: Sequence[str], images: np.ndarray, captions: Sequence[str]) -> Path:
    """``pairs.parquet``: columns id, caption and image (PNG bytes), row groups of 8,192."""
    table = pa.table({"id": list(ids), "caption": list(captions), "image": [png(im) for im in images]})
    pq.write_table(table, folder / "pairs.parquet", row_group_size=8192)
    return folder / "pairs.parquet"


def write_files(folder: Path, ids: Sequence[str], images: np.ndarray, captions: Sequence[str]) -> Path:
    """``images/<id>.png`` and ``manifest.csv`` (id, image path relative to the folder, caption)."""
    (folder / "images").mkdir()
    for pid, image in zip(ids, images, strict=True):
        (folder / "images" / f"{pid}.png").write_bytes(png(image))
    paths = [f"images/{pid}.png" for pid in ids]
    pd.DataFrame({"id": ids, "image": paths, "caption": captions}).to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


WRITERS = {"parquet": write_parquet, "files": write_files}


def dataset(work: Path, n: int, seed: int, layout: str) -> Path:
    """The dataset file to diagnose, written once per (layout, n, seed) and reused afterwards."""
    folder = work / f"freeform-{layout}-n{n}-seed{seed}"
    marker = folder / "complete.json"
    if marker.is_file():
        return folder / json.loads(marker.read_text())["path"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    images, captions = unique_pairs(n, seed)
    path = WRITERS[layout](folder, [f"pair{i:08d}" for i in range(n)], images, captions)
    marker.write_text(json.dumps({"path": path.name, "n": n, "seed": seed}))
    return path


def end_to_end_cfg(backbone: str, steps: int | None = None) -> DiagnoseCfg:
    """The default diagnosis with ``backbone``; ``steps`` (for a quick check) replaces the fold models'
    900 training steps and makes the small-loss pass a third of it (300 by default)."""
    embed = DiagnoseCfg().embed.with_backbone(backbone)
    if steps is not None:
        train = dataclasses.replace(embed.train, steps=steps, warmup_steps=min(embed.train.warmup_steps, steps // 5))
        embed = dataclasses.replace(embed, train=train, reweight_steps=max(1, steps // 3))
    return DiagnoseCfg(embed=embed)


def run_end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """``--mode end-to-end``: write the dataset (untimed), then time ``run_diagnosis`` stage by stage."""
    data, write_s = timed(lambda: dataset(args.work, args.n, args.seed, args.layout))
    print(f"dataset {data} ready in {write_s:.0f} s (untimed)")
    out = args.work / "end-to-end-run"
    shutil.rmtree(out, ignore_errors=True)  # a fresh output and cache folder: nothing is reused
    cfg = end_to_end_cfg(args.backbone, args.steps)
    print(f"fold models: {cfg.embed.reweight_steps} + {cfg.embed.train.steps} steps per fold, {cfg.embed.backbone}")
    watch = Stopwatch()
    instrument(watch, cfg.embed.backend)
    try:
        with watch.stage(REPORT):
            with watch.stage(INGEST):
                stream = open_pairs(data, IngestCfg(image_size=IMAGE_SIZE), quarantine_dir=out)
            summary = workflow.run_diagnosis(stream, cfg, out)
    finally:
        watch.restore()
    extra = {"mode": "end-to-end", "backbone": cfg.embed.backbone, "layout": args.layout}
    result = report(watch, summary["pairs"], args.extrapolate, cfg.embed.folds, extra)
    print(
        f"flagged {summary['flagged']:,}; types " + ", ".join(f"{k} {v['count']}" for k, v in summary["types"].items())
    )
    return result | {"flagged": summary["flagged"], "types": {k: v["count"] for k, v in summary["types"].items()}}


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["detect", "end-to-end"], default="detect")
    ap.add_argument("--n", type=int, default=100_000, help="pairs")
    ap.add_argument("--ref-n", type=int, default=4000, help="detect: pairs of the plain neighbourhood reference")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per fold: detect, of the cached codes (default 300); end-to-end, instead of the "
        "default config's 900 (+ a third for the small-loss pass), for a quick check",
    )
    ap.add_argument("--backbone", choices=["text:minilm", "scratch"], default="text:minilm", help="embedding backbone")
    ap.add_argument(
        "--layout", choices=sorted(WRITERS), default="parquet", help="end-to-end: how the pairs are written"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extrapolate", type=int, default=10_000_000, help="pairs to extrapolate the stage times to")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-cache"), help="datasets and embedding caches")
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the results")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_detect(args) if args.mode == "detect" else run_end_to_end(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
