"""Diagnosis commands: ``diagnose`` (score, type and explain every pair of a dataset) and
``benchmark-detect`` (detectors against planted misalignment with ground truth).

Thin: parse options into :class:`DiagnoseCfg` / :class:`DetectBenchCfg`, call one library
function, show rich progress and print where the outputs went.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from misalignlab.cli.app import app, invoked_argv
from misalignlab.cli.display import StageBars, progress_bars
from misalignlab.cli.ingest_options import (
    CAPTION_COLUMN,
    FORMAT,
    ID_COLUMN,
    IMAGE_COLUMN,
    IMAGE_ID_COLUMN,
    ROOT,
    ingest_cfg,
)
from misalignlab.config import with_overrides
from misalignlab.data.ingest.stream import open_pairs
from misalignlab.detect.backends import BACKBONE_HELP
from misalignlab.detect.base import parse_detector_spec
from misalignlab.detect.pipeline import DIAGNOSE_STEPS, DiagnoseCfg
from misalignlab.train.distributed import current
from misalignlab.workflows.diagnose import run_diagnosis


@app.command("diagnose")
def diagnose_cmd(
    data: Path = typer.Argument(
        ...,
        help="A manifest (CSV/TSV/JSONL/parquet/COCO JSON/arrow), tar shards, or a folder holding a dataset "
        "(img2dataset output, Hugging Face save_to_disk, a render folder, manifest shards).",
    ),
    out: Path = typer.Option(Path("runs/diagnose"), "--out", help="Output folder."),
    image_size: int = typer.Option(32, "--image-size", help="Images are decoded to this square size."),
    image_column: Optional[str] = IMAGE_COLUMN,
    caption_column: Optional[str] = CAPTION_COLUMN,
    id_column: Optional[str] = ID_COLUMN,
    image_id_column: Optional[str] = IMAGE_ID_COLUMN,
    fmt: str = FORMAT,
    root: Optional[Path] = ROOT,
    detector: Optional[list[str]] = typer.Option(None, "--detector", help="name[:key=value,...], repeatable."),
    schema: str = typer.Option("auto", "--schema", help="Caption slots: auto | scenes | fashion_mnist | infer | none."),
    backbone: str = typer.Option("auto", "--backbone", help=BACKBONE_HELP),
    embeddings: Optional[Path] = typer.Option(
        None,
        "--embeddings",
        help="Codes computed elsewhere: an .npz with ids, image_emb (N, D), text_emb (N, D); "
        "the same as --backbone precomputed:FILE (no word-level evidence).",
    ),
    steps: int = typer.Option(DIAGNOSE_STEPS, "--steps", help="Training steps per fold model."),
    folds: int = typer.Option(2, "--folds", help="Cross-fitting folds."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Embedding cache folder (default OUT/cache)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value, e.g. flag_score=0.9."),
) -> None:
    """Score, type and explain every image–caption pair; write pairs.parquet, summary.json, gallery.html."""
    base = DiagnoseCfg(schema=schema)
    train = dataclasses.replace(base.embed.train, steps=steps)
    if embeddings is not None and backbone != "auto":
        raise typer.BadParameter("give --embeddings or --backbone, not both", param_hint="--embeddings")
    spec = f"precomputed:{embeddings}" if embeddings is not None else backbone
    embed = dataclasses.replace(base.embed, folds=folds, train=train).with_backbone(spec)
    cfg = dataclasses.replace(base, embed=embed)
    if detector:
        cfg = dataclasses.replace(cfg, detectors=parse_detector_spec(detector))
    cfg = with_overrides(cfg, set_ or [])
    main_rank = current().is_main  # under torchrun: rank 0 writes the quarantine file and reports
    ingest = ingest_cfg(image_size, image_column, caption_column, id_column, image_id_column, fmt, root)
    stream = open_pairs(data, ingest, quarantine_dir=out if main_rank else None)
    with progress_bars() as progress:
        summary = run_diagnosis(stream, cfg, out, cache, StageBars(progress), invoked_argv())
    if not main_rank:
        return
    ing = summary["ingest"]
    typer.echo(
        f"diagnosed {summary['pairs']} pairs: "
        + ", ".join(f"{k} {v['count']}" for k, v in summary["types"].items())
        + f"; flagged {summary['flagged']}"
    )
    typer.echo(f"wrote {out / 'pairs.parquet'}, {out / 'summary.json'}, {out / 'gallery.html'}")
    qfile = ing.get("quarantine_file") if ing.get("quarantined") else None
    typer.echo(f"quarantined {ing['quarantined']} bad row(s)" + (f": {qfile}" if qfile else ""))


@app.command("benchmark-detect")
def benchmark_detect_cmd(
    out: Path = typer.Option(Path("runs/benchmark-detect"), "--out", help="Output folder (CSV + Markdown)."),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="quick | headline | full | fashion-full (Fashion-MNIST alone, 60,000 pairs, text:minilm).",
    ),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value, e.g. n=3000."),
) -> None:
    """Plant misalignment in rendered scenes and Fashion-MNIST; score every detector and the typing."""
    from misalignlab.workflows.detect_benchmark import BENCH_PRESETS, run_detect_benchmark

    cfg = with_overrides(BENCH_PRESETS.get(preset), set_ or [])
    with progress_bars() as progress:
        table = run_detect_benchmark(cfg, out, StageBars(progress))
    typer.echo(f"wrote {len(table)} rows to {out / 'benchmark_detect.csv'} and {out / 'benchmark_detect.md'}")
