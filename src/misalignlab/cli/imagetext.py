"""The ``imagetext`` command: the paper's MPI3D experiment (§7) on rendered scenes, by preset and scale."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from misalignlab.cli.app import app, invoked_argv
from misalignlab.cli.display import show_code_table
from misalignlab.config import SCALES, with_overrides
from misalignlab.train.callbacks import RichProgress
from misalignlab.train.trainer import Callback
from misalignlab.workflows.imagetext_lab import run_imagetext_lab
from misalignlab.workflows.imagetext_presets import PRESETS, Level, lab_config

console = Console(stderr=True)


def _progress(level: Level) -> list[Callback]:
    return [RichProgress(description=level.name, refresh_every=10)]


@app.command()
def imagetext(
    preset: str = typer.Option(..., help=f"One of: {', '.join(PRESETS.names())}."),
    scale: str = typer.Option("quick", help=f"{' | '.join(SCALES)}: quick fits 2 CPU cores, paper is §7's size."),
    out: Path = typer.Option(Path("runs/imagetext"), help="Run folder (rerunning resumes it)."),
    set_: list[str] = typer.Option([], "--set", help="Config override key=value, e.g. train.steps=500 (repeatable)."),
    resume: bool = typer.Option(
        True,
        "--resume/--fresh",
        help="Continue the folder's checkpoints and finished "
        "levels (a killed run picks up at its last checkpoint), or discard them.",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar per level."),
) -> None:
    """Train one image–text model per bias level on rendered scenes and tabulate per-factor MCC / R².

    Data-parallel under torchrun (``torchrun --nproc_per_node=N -m misalignlab.cli imagetext ...``):
    train.batch_size is the global batch; rank 0 writes the run folder.
    """
    cfg = with_overrides(lab_config(preset, scale), set_)
    callbacks = _progress if progress else None
    paths = run_imagetext_lab(cfg, out, argv=invoked_argv(), callbacks=callbacks, fresh=not resume)
    if not paths:  # a rank other than 0 of a torchrun job: rank 0 reports
        return
    probe = "mlp" if "mlp" in cfg.probes else cfg.probes[0]
    show_code_table(paths[f"table_{probe}"], f"MCC (discrete) / R² (continuous), {probe} probe")
    typer.echo(f"table:   {paths[f'markdown_{probe}']}")
    typer.echo(f"heatmap: {paths['heatmap']}")
    typer.echo(f"all results: {out / 'results.jsonl'}")
