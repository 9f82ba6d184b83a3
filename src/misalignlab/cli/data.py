"""Image–text lab commands: ``render`` writes a rendered scene dataset with planted misalignment.

Thin: parses options, builds :class:`SceneCfg` and :class:`InjectionCfg`, calls
:func:`make_scene_pairs` and :func:`write_dataset_folder`, and reports where files went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import Progress

from misalignlab.cli.app import app
from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
from misalignlab.data.scenes.factors import FACTOR_NAMES, SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _probabilities(items: list[str], option: str) -> dict[str, float]:
    """``["defect=0.3", "colour=0.1,size=0.2"]`` → ``{"defect": 0.3, "colour": 0.1, "size": 0.2}``."""
    out: dict[str, float] = {}
    for item in (s for text in items for s in _names(text)):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value) if sep else float("nan")
        except ValueError:
            raise ValueError(f"{option} expects factor=probability, got {item!r}") from None
        if not sep:
            raise ValueError(f"{option} expects factor=probability, got {item!r}")
    return out


@app.command("render")
def render_cmd(
    n: int = typer.Option(1000, "--n", help="Number of image–caption pairs."),
    out: Path = typer.Option(Path("runs/scenes"), "--out", help="Output folder."),
    size: int = typer.Option(64, "--size", help="Image side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed: fixes every byte written."),
    factors: str = typer.Option(
        "", "--factors", help=f"Active factors, comma-separated (default: {','.join(FACTOR_NAMES)})."
    ),
    causal: bool = typer.Option(False, "--causal", help="Colour depends on position, defect on size."),
    omit: str = typer.Option("", "--omit", help="Factors never stated, e.g. colour,size (selection bias)."),
    perturb: Optional[list[str]] = typer.Option(None, "--perturb", help="factor=prob, e.g. defect=0.3 (repeatable)."),
    outlier_rate: float = typer.Option(0.0, "--outlier-rate", help="Share of pairs given another image's caption."),
    drop_rate: float = typer.Option(0.0, "--drop-rate", help="Share of pairs leaving out one stated factor."),
    synonyms: bool = typer.Option(False, "--synonyms", help="Write synonyms for some value words."),
) -> None:
    """Render production-line scenes and write images/, captions.csv, truth.parquet, config.json."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    scene_cfg = SceneCfg(size=size, factors=_names(factors) or FACTOR_NAMES, causal=causal)
    inj_cfg = InjectionCfg(
        omit=_names(omit),
        perturb=_probabilities(perturb or [], "--perturb"),
        outlier_rate=outlier_rate,
        drop_rate=drop_rate,
        synonyms=synonyms,
    )
    pairs = make_scene_pairs(n, scene_cfg, inj_cfg, seed)
    with Progress(transient=True) as progress:
        task = progress.add_task("writing PNGs", total=n)
        folder = write_dataset_folder(pairs, out, on_image=lambda _: progress.advance(task))
    counts = pairs.truth["kind"].value_counts().to_dict()
    summary = ", ".join(f"{k} {counts[k]}" for k in ("aligned", "incomplete", "wrong", "unrelated") if k in counts)
    typer.echo(f"wrote {n} pairs ({summary}) to {folder}: images/, captions.csv, truth.parquet, config.json")
