"""Benchmark the diagnosis a user gets against planted misalignment with ground truth.

Every data set is diagnosed exactly as ``misalignlab diagnose`` does by default (``DiagnoseCfg()``:
backbone ``auto``, schema ``auto``, every threshold as shipped; ``steps`` > 0 shortens the fold
training for smoke tests only, and the rows say so). Data sets (:data:`BENCH_SETS`), each with
30–40 % mixed misalignment in equal shares of incomplete / wrong / unrelated:

- ``scenes``: rendered scenes with free-form operator notes
  (:func:`~misalignlab.data.freeform.scenes.make_freeform_scene_pairs`), 30 % misaligned;
- ``fashion``: Fashion-MNIST training images with free-form product captions
  (:func:`~misalignlab.data.freeform.fashion.fashion_freeform_captions`), 40 % misaligned;
- ``scenes-template`` and ``fashion-template``: the fixed-template captions of the earlier
  benchmark (rendered scene templates; ``a dark large sandal``), at the same rates.

Free-form sets come in writer styles ``a`` and ``b`` (:mod:`misalignlab.data.freeform`): the
typing's settings were chosen on style ``a``, seed 0, so style ``b`` and the other seeds are held
out. Each set is also typed "with the declared vocabulary" (schema ``declared``): the writer's own
words (:func:`~misalignlab.data.freeform.declared.declared_vocabulary`) or the built-in vocabulary
of a template set, as a user who knows their captions would declare them; the embeddings are
shared, so those rows differ only in typing.

One row per data set, style, size, seed, schema and detector (the member detectors, among them the
plain ``similarity`` baseline, once per embedding; ``combined`` per schema): AUROC, AUPRC,
precision at the true rate and per-kind AUROC (each kind against the aligned pairs); for
``combined`` also per-kind F1, macro-F1, the share of aligned pairs typed non-aligned, the
estimated and true misaligned rates, and how often the explanation of a caught ``wrong`` pair
quotes the planted word. ``benchmark_detect.csv`` holds every row, ``benchmark_detect.md`` the means
over seeds with their range. Embeddings are cached under ``cfg.cache`` (default ``<out>/cache``):
a rerun that changes only the typing trains nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from misalignlab.data.freeform.plant import STYLES, FreeformCfg
from misalignlab.detect.backends import parse_backbone
from misalignlab.detect.pipeline import DiagnoseCfg, Diagnosis, diagnose_config, diagnose_pairs
from misalignlab.detect.vocabulary import BUILTIN
from misalignlab.evaluate.detection_metrics import detection_metrics, kind_aurocs, type_metrics
from misalignlab.kinds import KINDS
from misalignlab.registry import Registry
from misalignlab.report.tables import frame_markdown
from misalignlab.runs import Progress, atomic_write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BenchSet:
    """Pairs with planted misalignment: ``kind`` (N,) true types, ``said`` (N,) the word planted in
    each wrong caption ("" elsewhere), ``vocabulary`` the document or built-in name a user would declare."""

    ids: list[str]
    images: np.ndarray  # (N, S, S, 3) uint8
    captions: list[str]
    kind: np.ndarray
    said: np.ndarray
    vocabulary: dict | str


SetBuilder = Callable[[int, str, float, int, int], BenchSet]  # (n, style, rate, seed, image_size)
BENCH_SETS: Registry[SetBuilder] = Registry("benchmark data set")
TEMPLATE_SETS = ("scenes-template", "fashion-template")


@BENCH_SETS.register("scenes")
def scenes_set(n: int, style: str, rate: float, seed: int, image_size: int) -> BenchSet:
    from misalignlab.data.freeform.declared import declared_vocabulary
    from misalignlab.data.freeform.scene_words import DOMAIN, STYLES
    from misalignlab.data.freeform.scenes import make_freeform_scene_pairs
    from misalignlab.data.scenes.factors import SceneCfg

    r = rate / 3
    pairs = make_freeform_scene_pairs(n, SceneCfg(size=image_size), FreeformCfg(style, r, r, r), seed)
    truth = pairs.truth
    vocabulary = declared_vocabulary(DOMAIN, STYLES[style])
    return BenchSet(_ids("scene", n), pairs.images, list(pairs.captions), _kinds(truth), _said(truth), vocabulary)


@BENCH_SETS.register("fashion")
def fashion_set(n: int, style: str, rate: float, seed: int, image_size: int) -> BenchSet:
    from misalignlab.data.freeform.declared import declared_vocabulary
    from misalignlab.data.freeform.fashion import fashion_freeform_captions
    from misalignlab.data.freeform.fashion_words import DOMAIN, STYLES

    pairs = _fashion_sample(n, seed)
    r = rate / 3
    captions, truth = fashion_freeform_captions(pairs, FreeformCfg(style, r, r, r), seed)
    vocabulary = declared_vocabulary(DOMAIN, STYLES[style])
    return BenchSet(_ids("fmnist", n), _rgb(pairs.images), captions, _kinds(truth), _said(truth), vocabulary)


@BENCH_SETS.register("scenes-template")
def scenes_template_set(n: int, style: str, rate: float, seed: int, image_size: int) -> BenchSet:
    from misalignlab.data.scenes.dataset import make_scene_pairs
    from misalignlab.data.scenes.factors import SceneCfg

    pairs = make_scene_pairs(n, SceneCfg(size=image_size), scene_injection(rate), seed)
    said = [next(iter(c.values()))[1] if k == "wrong" and c else "" for k, c in zip(pairs.truth["kind"], pairs.truth["changed"], strict=True)]  # fmt: skip
    return BenchSet(
        _ids("scene", n), pairs.images, list(pairs.captions), _kinds(pairs.truth), np.array(said, dtype=str), "scenes"
    )


@BENCH_SETS.register("fashion-template")
def fashion_template_set(n: int, style: str, rate: float, seed: int, image_size: int) -> BenchSet:
    from misalignlab.data.loaders.fashion_noise import inject_fashion

    pairs = _fashion_sample(n, seed)
    r = rate / 3
    captions, truth = inject_fashion(pairs, wrong=r, incomplete=r, unrelated=r, seed=seed)
    said = np.where(truth["kind"] == "wrong", truth["said"].fillna("").astype(str), "")
    return BenchSet(_ids("fmnist", n), _rgb(pairs.images), list(captions), _kinds(truth), said, "fashion_mnist")


def scene_injection(rate: float):  # noqa: ANN201 (InjectionCfg, imported lazily)
    """InjectionCfg giving ``rate`` misaligned template scenes, a third of each kind.

    ``inject`` types a pair unrelated > wrong > incomplete; with 7 stated slots a pair is wrong
    with probability 1 − (1 − p)⁷, which fixes the per-slot perturbation ``p``.
    """
    from misalignlab.data.scenes.factors import SceneCfg
    from misalignlab.data.scenes.inject import InjectionCfg

    slots = SceneCfg().stateable
    u = rate / 3
    w = (rate / 3) / (1 - u)
    p = 1 - (1 - w) ** (1 / len(slots))
    d = (rate / 3) / ((1 - u) * (1 - p) ** (len(slots) - 1))
    return InjectionCfg(perturb={f: p for f in slots}, outlier_rate=u, drop_rate=min(d, 1.0))


@dataclass(frozen=True)
class DetectBenchCfg:
    """Which data sets, styles, sizes and seeds; the diagnosis itself is ``diagnose``'s default.

    ``seeds``: how many (seeds 0 … seeds−1: pairs, planting, folds and fold models all change).
    ``rates``: misaligned share per data set. ``schemas``: ``auto`` (the default), ``declared`` (each
    set's own vocabulary) and/or any ``--schema`` value of ``diagnose`` (a built-in name or a file). ``steps`` > 0 overrides the fold training steps (smoke tests only; 0 = default).
    """

    sets: tuple[str, ...] = ("scenes", "fashion")
    styles: tuple[str, ...] = STYLES
    sizes: tuple[int, ...] = (4000,)
    seeds: int = 3
    rates: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"scenes": 0.3, "fashion": 0.4, "scenes-template": 0.3, "fashion-template": 0.4}
    )
    schemas: tuple[str, ...] = ("auto", "declared")
    backbone: str = "auto"
    image_size: int = 32
    steps: int = 0
    cache: str = ""  # embedding cache folder shared between runs; "" = <out>/cache

    def __post_init__(self) -> None:
        parse_backbone(self.backbone)  # an unknown backbone fails before any training
        for name in self.sets:
            BENCH_SETS.get(name)
        if bad := [s for s in self.styles if s not in STYLES]:
            raise ValueError(f"unknown writer style(s) {bad}; valid: {', '.join(STYLES)}")
        for spec in self.schemas:
            if spec not in ("auto", "declared", "none", *BUILTIN) and not Path(spec).expanduser().is_file():
                raise ValueError(
                    f"benchmark schema {spec!r}: not auto, declared, none, {', '.join(BUILTIN)} or a vocabulary file"
                )
        if self.seeds < 1 or any(n < 50 for n in self.sizes):
            raise ValueError(f"need seeds >= 1 and sizes >= 50, got {self.seeds}, {self.sizes}")
        if any(not 0 < self.rates.get(s, 0.0) < 1 for s in self.sets):
            raise ValueError(f"every data set needs a rate in (0, 1): {self.rates}")


BENCH_PRESETS: Registry[DetectBenchCfg] = Registry("benchmark preset")
BENCH_PRESETS.register("quick")(DetectBenchCfg(styles=("a",), sizes=(600,), seeds=1, steps=60))
BENCH_PRESETS.register("headline")(DetectBenchCfg())
BENCH_PRESETS.register("large")(DetectBenchCfg(styles=("b",), sizes=(20_000,)))
BENCH_PRESETS.register("templates")(DetectBenchCfg(sets=TEMPLATE_SETS, styles=("a",), sizes=(6000,)))


def diagnose_cfg(cfg: DetectBenchCfg, schema: str, seed: int = 0) -> DiagnoseCfg:
    """``diagnose``'s default configuration with the benchmark's backbone, schema and seed."""
    base = diagnose_config(schema, cfg.backbone, steps=cfg.steps or None)
    embed = dataclasses.replace(base.embed, seed=seed)
    if cfg.steps:
        embed = dataclasses.replace(embed, reweight_steps=cfg.steps // 3)
    return dataclasses.replace(base, embed=embed)


def run_detect_benchmark(cfg: DetectBenchCfg, out: Path, progress: Progress | None = None) -> pd.DataFrame:
    """Run every setting, write ``benchmark_detect.csv`` / ``.md`` to ``out`` and return every row."""
    out = Path(out)
    cache = Path(cfg.cache) if cfg.cache else out / "cache"
    rows: list[dict] = []
    for name in cfg.sets:
        for style in ("-",) if name in TEMPLATE_SETS else cfg.styles:
            for n in cfg.sizes:
                for seed in range(cfg.seeds):
                    log.info("%s style %s, %d pairs, seed %d", name, style, n, seed)
                    data = BENCH_SETS.get(name)(
                        n, "a" if style == "-" else style, cfg.rates[name], seed, cfg.image_size
                    )
                    head = {"set": name, "style": style, "n": n, "seed": seed}
                    rows += [head | r for r in bench_one(cfg, data, out, cache, progress, seed)]
                    _write(out, pd.DataFrame(rows))  # a long run keeps what it has measured
    table = pd.DataFrame(rows)
    _write(out, table)
    return table


def bench_one(
    cfg: DetectBenchCfg, data: BenchSet, out: Path, cache: Path, progress: Progress | None, seed: int
) -> list[dict]:
    """Rows of one data set: member detectors once, ``combined`` once per schema."""
    rows = []
    for schema in cfg.schemas:
        spec = _vocabulary_file(data.vocabulary, out / "vocabularies") if schema == "declared" else schema
        start = time.perf_counter()
        dcfg = diagnose_cfg(cfg, spec, seed)
        diag = diagnose_pairs(data.ids, data.images, data.captions, dcfg, cache, progress)
        seconds = time.perf_counter() - start
        for r in score_diagnosis(diag, data.kind, data.said):
            if schema == "auto" or r["detector"] == "combined":
                rows.append(
                    {"schema": schema, "backbone": dcfg.embed.backbone, "steps": dcfg.embed.train.steps}
                    | r
                    | {"seconds": seconds}
                )
    return rows


def score_diagnosis(diag: Diagnosis, kind: np.ndarray, said: np.ndarray) -> list[dict[str, object]]:
    """One row per detector: detection metrics and per-kind AUROC; ``combined`` adds the typing's figures."""
    rows = []
    for name, res in diag.results.items():
        flat = detection_metrics(name, res.score, kind) | kind_aurocs(name, res.score, kind)
        row: dict[str, object] = {"detector": name} | {k.split("/")[-1]: v for k, v in flat.items()}
        if name == "combined" and res.kind is not None:
            t = type_metrics(res.kind, kind)
            row |= {f"f1_{k}": t[f"type/{k}/f1"] for k in KINDS} | {"macro_f1": t["type/macro_f1"]}
            row |= {"aligned_flagged": float(np.mean(res.kind[kind == "aligned"] != "aligned"))}
            row |= {
                "estimated_misaligned": diag.summary["estimated"]["misaligned"]["rate"],
                "true_misaligned": float(np.mean(kind != "aligned")),
            }
            row |= quotes_planted_word(diag, kind, said)
        rows.append(row)
    return rows


def quotes_planted_word(diag: Diagnosis, kind: np.ndarray, said: np.ndarray) -> dict[str, float]:
    """Among truly wrong pairs typed wrong, the share whose explanation quotes the planted word."""
    typed = diag.table["type"].to_numpy()
    stated = diag.table["stated"].fillna("").astype(str).str.lower().to_numpy()
    caught = np.flatnonzero((kind == "wrong") & (typed == "wrong"))
    hits = [bool(stated[i]) and (stated[i] in said[i].lower() or said[i].lower() in stated[i]) for i in caught]
    return {"wrong_caught": len(caught), "quotes_word": float(np.mean(hits)) if hits else float("nan")}


def summarise_benchmark(table: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds (and their min–max) per data set, style, size, schema and detector."""
    keys = ["set", "style", "n", "schema", "detector"]
    shown = [c for c in ("auroc", "auroc_incomplete", "auroc_wrong", "auroc_unrelated", "macro_f1", "aligned_flagged", "estimated_misaligned", "true_misaligned", "quotes_word") if c in table]  # fmt: skip
    groups = table.groupby(keys, sort=False)
    out = groups[shown].mean().round(3)
    for col in ("auroc", "macro_f1"):
        if col in table:
            lo, hi = groups[col].min().round(3), groups[col].max().round(3)
            out[f"{col}_range"] = [f"{a:.3f}–{b:.3f}" if np.isfinite(a) else "" for a, b in zip(lo, hi, strict=True)]
    out["seeds"] = groups.size()
    return out.reset_index()


def _write(out: Path, table: pd.DataFrame) -> None:
    atomic_write_text(out / "benchmark_detect.csv", table.to_csv(index=False))
    summary = summarise_benchmark(table)
    atomic_write_text(out / "benchmark_detect.md", frame_markdown(summary, list(summary.columns)))


def _vocabulary_file(vocabulary: dict | str, folder: Path) -> str:
    """A built-in vocabulary's name, or a declared document written to a file (its path)."""
    if isinstance(vocabulary, str):
        return vocabulary
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(vocabulary, indent=1, sort_keys=True)
    path = folder / f"declared-{hashlib.blake2b(text.encode(), digest_size=6).hexdigest()}.json"
    atomic_write_text(path, text)
    return str(path)


def _fashion_sample(n: int, seed: int):  # noqa: ANN202 (FashionPairs, imported lazily)
    from misalignlab.data.loaders.fashion_mnist import fashion_mnist_pairs

    full = fashion_mnist_pairs("train")
    return full.subset(np.random.default_rng(seed).choice(len(full), min(n, len(full)), replace=False))


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(n)]


def _kinds(truth: pd.DataFrame) -> np.ndarray:
    return truth["kind"].to_numpy().astype(str)


def _said(truth: pd.DataFrame) -> np.ndarray:
    return np.where(truth["kind"] == "wrong", truth["said"].fillna("").astype(str), "").astype(str)


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images[..., None], 3, axis=3)  # (N, 28, 28) grey → (N, 28, 28, 3)
