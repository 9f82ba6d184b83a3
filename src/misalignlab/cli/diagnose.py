"""Diagnosis commands: ``diagnose`` (score, type and explain every pair of a dataset) and
``benchmark-detect`` (detectors against planted misalignment with ground truth).

Thin: parse options into a config (:func:`~misalignlab.detect.pipeline.diagnose_config`, the one
the library call builds too; ``DetectBenchCfg``), call one library function, show rich progress and
print where the outputs went.
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
from misalignlab.detect.backends import BACKBONE_HELP, EmbedCfg
from misalignlab.detect.base import parse_detector_spec
from misalignlab.detect.pipeline import diagnose_config
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
    schema: str = typer.Option(
        "auto",
        "--schema",
        help="Caption slots: auto (inferred from the captions) | none | scenes | fashion_mnist | FILE "
        "(a vocabulary file, JSON or TOML: slot name → values, each with optional synonyms).",
    ),
    backbone: str = typer.Option("auto", "--backbone", help=BACKBONE_HELP),
    embeddings: Optional[Path] = typer.Option(
        None,
        "--embeddings",
        help="Codes computed elsewhere: an .npz with ids, image_emb (N, D), text_emb (N, D); "
        "the same as --backbone precomputed:FILE (no word-level evidence).",
    ),
    steps: Optional[int] = typer.Option(
        None, "--steps", help=f"Training steps per fold model (default {EmbedCfg().train.steps})."
    ),
    folds: Optional[int] = typer.Option(None, "--folds", help=f"Cross-fitting folds (default {EmbedCfg().folds})."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Embedding cache folder (default OUT/cache)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value, e.g. flag_score=0.9."),
) -> None:
    """Score, type and explain every image–caption pair; write pairs.parquet, images.parquet, summary.json, gallery.html."""
    if embeddings is not None and backbone != "auto":
        raise typer.BadParameter("give --embeddings or --backbone, not both", param_hint="--embeddings")
    spec = f"precomputed:{embeddings}" if embeddings is not None else backbone
    detectors = parse_detector_spec(detector) if detector else None
    cfg = diagnose_config(schema, spec, steps, folds, detectors, set_ or [])
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
    images = summary["images"]
    if images["captions_per_image"]["max"] > 1:  # several captions per image: say what it means per image
        typer.echo(f"{images['count']} images: " + ", ".join(f"{n} {v}" for v, n in images["verdicts"].items() if n))
    typer.echo(
        f"wrote {out / 'pairs.parquet'}, {out / 'images.parquet'}, {out / 'summary.json'}, {out / 'gallery.html'}"
    )
    qfile = ing.get("quarantine_file") if ing.get("quarantined") else None
    typer.echo(f"quarantined {ing['quarantined']} bad row(s)" + (f": {qfile}" if qfile else ""))


@app.command("benchmark-detect")
def benchmark_detect_cmd(
    out: Path = typer.Option(Path("runs/benchmark-detect"), "--out", help="Output folder (CSV + Markdown)."),
    preset: str = typer.Option(
        "quick",
        "--preset",
        help="quick (smoke test) | headline (free-form scenes and Fashion, styles a and b, 4,000 pairs, 3 seeds)"
        " | large (style b, 20,000 pairs, 3 seeds) | templates (the fixed-template sets, 6,000 pairs, 3 seeds).",
    ),
    schema: Optional[list[str]] = typer.Option(
        None,
        "--schema",
        help="Typing vocabularies to benchmark (repeatable): auto, declared (each set's own words), none,"
        " a built-in name or a vocabulary file. Default: auto and declared.",
    ),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Config override key=value, e.g. seeds=1."),
) -> None:
    """Plant misalignment in free-form and template captions; diagnose as `diagnose` does; score it."""
    from misalignlab.workflows.detect_benchmark import BENCH_PRESETS, run_detect_benchmark

    cfg = with_overrides(BENCH_PRESETS.get(preset), set_ or [])
    if schema:
        cfg = dataclasses.replace(cfg, schemas=tuple(schema))
    with progress_bars() as progress:
        table = run_detect_benchmark(cfg, out, StageBars(progress))
    typer.echo(f"wrote {len(table)} rows to {out / 'benchmark_detect.csv'} and {out / 'benchmark_detect.md'}")
