"""Benchmark the detectors and the typing against planted misalignment with ground truth.

Rendered scenes: each kind (incomplete, wrong, unrelated) alone and the three mixed in equal
shares, at every rate in ``cfg.rates``. Fashion-MNIST: the three kinds mixed at
``cfg.fashion_rate`` (:mod:`misalignlab.data.loaders.fashion_noise`), typed with
``cfg.fashion_typing`` (its two-valued tone/size slots need a lower per-slot z threshold: a
wrong binary word sits at the mirror image of the aligned margins, about 2 robust z away; the
other type thresholds are calibrated on the data, see :mod:`misalignlab.detect.calibrate`). Every setting is diagnosed with
:func:`~misalignlab.detect.pipeline.diagnose_pairs` once per backbone in ``cfg.backbones`` (the same
pairs, so backbones compare in one run; ``seconds`` is each diagnosis's wall time) and yields one row
per backbone and detector: AUROC, AUPRC, precision at the true noise rate and, for detectors that type, per-kind
F1, macro-F1 and how often the explanation names the injected slot of the ``wrong`` pairs it
catches. The table is written as CSV and Markdown; embeddings are cached under ``cfg.cache``
(default ``<out>/cache``), so a rerun that changes only detectors or typing trains nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.detect.backends import EmbedCfg, parse_backbone
from misalignlab.detect.pipeline import DiagnoseCfg, Diagnosis, diagnose_pairs
from misalignlab.evaluate.detection_metrics import detection_metrics, type_metrics
from misalignlab.kinds import KINDS
from misalignlab.registry import Registry
from misalignlab.report.tables import frame_markdown
from misalignlab.runs import atomic_write_text

log = logging.getLogger(__name__)
SETTINGS = ("incomplete", "wrong", "unrelated", "mixed")


@dataclass(frozen=True)
class DetectBenchCfg:
    """Sizes, rates and training budget of the detection benchmark."""

    n: int = 4000
    image_size: int = 32
    rates: tuple[float, ...] = (0.1, 0.3, 0.5)
    settings: tuple[str, ...] = SETTINGS
    fashion_n: int = 6000
    fashion_rate: float = 0.4
    fashion_typing: dict[str, float] = dataclasses.field(default_factory=lambda: {"slot_z": 1.5})
    steps: int = 900
    reweight_steps: int = 300
    folds: int = 2
    seed: int = 0
    backbones: tuple[str, ...] = ("scratch",)
    cache: str = ""  # embedding cache folder shared between runs; "" = <out>/cache

    def __post_init__(self) -> None:
        for spec in self.backbones:
            parse_backbone(spec)  # unknown backbones fail before any training
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad:
            raise ValueError(f"unknown benchmark setting(s) {bad}; valid: {', '.join(SETTINGS)}")
        if any(not 0 < r < 1 for r in self.rates) or not 0 <= self.fashion_rate < 1:
            raise ValueError(f"rates must lie in (0, 1), got {self.rates}, {self.fashion_rate}")


BENCH_PRESETS: Registry[DetectBenchCfg] = Registry("benchmark preset")
BENCH_PRESETS.register("quick")(
    DetectBenchCfg(n=600, rates=(0.3,), settings=("mixed",), fashion_n=600, steps=60, reweight_steps=30)
)
BENCH_PRESETS.register("headline")(DetectBenchCfg(rates=(0.3,), settings=("mixed",)))
BENCH_PRESETS.register("full")(DetectBenchCfg())
# Fashion-MNIST alone at its full training split with the pretrained text tower and 3× the fold
# training: the setting that reaches the type macro-F1 (RESULTS.md §3, "More data").
BENCH_PRESETS.register("fashion-full")(
    DetectBenchCfg(settings=(), fashion_n=60_000, steps=2700, reweight_steps=900, backbones=("text:minilm",))
)


def scene_injection(setting: str, rate: float) -> InjectionCfg:
    """InjectionCfg giving ``rate`` misaligned pairs of kind ``setting`` (``mixed``: a third each).

    ``inject`` types a pair unrelated > wrong > incomplete; with 7 stated slots a pair is wrong
    with probability 1 − (1 − p)⁷, which fixes the per-slot perturbation ``p``.
    """
    slots = SceneCfg().stateable
    share = rate / 3 if setting == "mixed" else rate
    u = share if setting in ("unrelated", "mixed") else 0.0
    w = share / (1 - u) if setting in ("wrong", "mixed") else 0.0
    p = 1 - (1 - w) ** (1 / len(slots))
    d = share / ((1 - u) * (1 - p) ** (len(slots) - 1)) if setting in ("incomplete", "mixed") else 0.0
    return InjectionCfg(perturb={f: p for f in slots} if p > 0 else {}, outlier_rate=u, drop_rate=min(d, 1.0))


def _diagnose_cfg(
    cfg: DetectBenchCfg, schema: str, typing: dict[str, float] | None = None, backbone: str = "scratch"
) -> DiagnoseCfg:
    base = EmbedCfg()
    train = dataclasses.replace(base.train, steps=cfg.steps)
    embed = dataclasses.replace(base, folds=cfg.folds, seed=cfg.seed, train=train, reweight_steps=cfg.reweight_steps)
    embed = embed.with_backbone(backbone)
    if not typing:
        return DiagnoseCfg(embed=embed, schema=schema)
    detectors = DiagnoseCfg().detectors | {"slot_swap": {"typing": dict(typing)}}
    return DiagnoseCfg(embed=embed, schema=schema, detectors=detectors, combined={"typing": dict(typing)})


def score_diagnosis(diag: Diagnosis, true_kind: np.ndarray, true_slots: list[set[str]]) -> list[dict[str, object]]:
    """One row per detector: detection metrics; typed detectors add type metrics and explanation hits."""
    rows = []
    for name, res in diag.results.items():
        m = detection_metrics(name, res.score, true_kind)
        row: dict[str, object] = {"detector": name} | {k.split("/")[-1]: v for k, v in m.items()}
        if res.kind is not None:
            t = type_metrics(res.kind, true_kind)
            row |= {f"f1_{k}": t[f"type/{k}/f1"] for k in KINDS} | {"type_macro_f1": t["type/macro_f1"]}
        if name == "combined":
            row |= explanation_hits(diag, true_kind, true_slots)
        rows.append(row)
    return rows


def explanation_hits(diag: Diagnosis, true_kind: np.ndarray, true_slots: list[set[str]]) -> dict[str, float]:
    """Share of truly wrong pairs typed wrong whose explanation names an injected slot first."""
    res = diag.results["combined"]
    first: dict[int, str] = {}
    for e in res.evidence:
        if e.kind == "contradicted":
            first.setdefault(e.pair, e.slot or "")
    caught = [i for i in np.flatnonzero((true_kind == "wrong") & (res.kind == "wrong"))]
    hits = [first.get(int(i)) in true_slots[int(i)] for i in caught]
    return {"wrong_caught": len(caught), "explain_names_slot": float(np.mean(hits)) if hits else float("nan")}


def scene_setting(cfg: DetectBenchCfg, setting: str, rate: float, cache: Path, progress: Callable | None) -> list[dict]:
    from misalignlab.data.scenes.dataset import make_scene_pairs

    pairs = make_scene_pairs(cfg.n, SceneCfg(size=cfg.image_size), scene_injection(setting, rate), cfg.seed)
    ids = [f"scene{i:06d}" for i in range(len(pairs))]
    true_kind = pairs.truth["kind"].to_numpy().astype(str)
    true_slots = [set(c) for c in pairs.truth["changed"]]
    rows = []
    for backbone in cfg.backbones:
        start = time.perf_counter()
        dcfg = _diagnose_cfg(cfg, "scenes", backbone=backbone)
        diag = diagnose_pairs(ids, pairs.images, pairs.captions, dcfg, cache, progress)
        head = {"dataset": "scenes", "setting": setting, "rate": rate, "backbone": backbone}
        rows += [
            head | r | {"seconds": time.perf_counter() - start} for r in score_diagnosis(diag, true_kind, true_slots)
        ]
    return rows


def fashion_setting(cfg: DetectBenchCfg, cache: Path, progress: Callable | None) -> list[dict]:
    from misalignlab.data.loaders.fashion_mnist import fashion_mnist_pairs
    from misalignlab.data.loaders.fashion_noise import inject_fashion

    full = fashion_mnist_pairs("train")
    keep = np.random.default_rng(cfg.seed).choice(len(full), min(cfg.fashion_n, len(full)), replace=False)
    pairs = dataclasses.replace(
        full,
        images=full.images[keep],
        labels=full.labels[keep],
        tone=full.tone[keep],
        size=full.size[keep],
        captions=tuple(full.captions[i] for i in keep),
    )
    r = cfg.fashion_rate / 3
    captions, truth = inject_fashion(pairs, wrong=r, incomplete=r, unrelated=r, seed=cfg.seed)
    images = np.repeat(pairs.images[..., None], 3, axis=3)  # (N, 28, 28, 3)
    ids = [f"fmnist{i:06d}" for i in keep]
    true_kind = truth["kind"].to_numpy().astype(str)
    true_slots = [{s} if k == "wrong" else set() for k, s in zip(truth["kind"], truth["slot"], strict=True)]
    rows = []
    for backbone in cfg.backbones:
        start = time.perf_counter()
        dcfg = _diagnose_cfg(cfg, "fashion_mnist", cfg.fashion_typing, backbone)
        diag = diagnose_pairs(ids, images, captions, dcfg, cache, progress)
        head = {"dataset": "fashion_mnist", "setting": "mixed", "rate": cfg.fashion_rate, "backbone": backbone}
        rows += [
            head | r | {"seconds": time.perf_counter() - start} for r in score_diagnosis(diag, true_kind, true_slots)
        ]
    return rows


def run_detect_benchmark(cfg: DetectBenchCfg, out: Path, progress: Callable | None = None) -> pd.DataFrame:
    """Run every setting, write ``benchmark_detect.csv`` / ``.md`` to ``out`` and return the table."""
    out = Path(out)
    cache = Path(cfg.cache) if cfg.cache else out / "cache"
    rows: list[dict] = []
    for setting in cfg.settings:
        for rate in cfg.rates:
            log.info("scenes: %s at %.0f %%", setting, 100 * rate)
            rows += scene_setting(cfg, setting, rate, cache, progress)
    if cfg.fashion_n > 0:
        rows += fashion_setting(cfg, cache, progress)
    table = pd.DataFrame(rows)
    atomic_write_text(out / "benchmark_detect.csv", table.to_csv(index=False))
    atomic_write_text(
        out / "benchmark_detect.md", frame_markdown(table, [c for c in table.columns if c != "noise_rate"])
    )
    return table
