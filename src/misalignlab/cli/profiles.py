"""The ``profiles`` command: misalignment profiles of several diagnose runs side by side."""

from __future__ import annotations

from pathlib import Path

import typer

from misalignlab.cli.app import app
from misalignlab.report.profiles_page import write_profiles


@app.command("profiles")
def profiles_cmd(
    runs: list[Path] = typer.Argument(..., help="Diagnose output folders (each holds summary.json)."),
    out: Path = typer.Option(Path("runs/profiles"), "--out", help="Output folder."),
    top: int = typer.Option(5, "--top", help="How many of the most omitted / most often wrong slots to show."),
) -> None:
    """Lay the summaries of diagnose runs side by side: rates by type, top slots, plot, one HTML page."""
    paths = write_profiles(runs, out, top)
    typer.echo(Path(paths["markdown"]).read_text(encoding="utf-8"))
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
