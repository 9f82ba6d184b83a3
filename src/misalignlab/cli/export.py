"""The ``export`` command: a diagnosis as a review CSV, Label Studio tasks, or a cleaned copy of the dataset.

Thin: parse options into :class:`~misalignlab.workflows.export.ExportCfg`, call
:func:`~misalignlab.workflows.export.export_run`, print what was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from misalignlab.cli.app import app
from misalignlab.workflows.export import EXPORT_FORMATS, ExportCfg, export_run, parse_types


@app.command("export")
def export_cmd(
    run_dir: Path = typer.Argument(..., help="A run folder written by `misalignlab diagnose --out`."),
    to: str = typer.Option(..., "--to", help=" | ".join(EXPORT_FORMATS)),
    types: Optional[str] = typer.Option(
        None,
        "--types",
        help="Comma-separated types to export (manifest: to leave out): aligned, incomplete, wrong, unrelated, "
        "or all; default every type but aligned.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Output file (csv, label-studio) or folder (manifest); default RUN_DIR/export/review.csv, "
        "label_studio_tasks.json or manifest/.",
    ),
    keep_quarantined: bool = typer.Option(
        False, "--keep-quarantined", help="manifest: keep the rows the diagnosis never saw (quarantined)."
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", help="manifest: the dataset, when it moved since the diagnosis (default: config.json's)."
    ),
    document_root: Optional[Path] = typer.Option(
        None,
        "--document-root",
        help="label-studio: LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default: the dataset's image root).",
    ),
) -> None:
    """Write flagged pairs for people to act on: csv (review sheet), label-studio (tasks + config), manifest (cleaned copy)."""
    cfg = ExportCfg(
        to=to,
        types=parse_types(types),
        out=None if out is None else str(out),
        keep_quarantined=keep_quarantined,
        data=None if data is None else str(data),
        document_root=None if document_root is None else str(document_root),
    )
    for line in export_run(run_dir, cfg).lines():
        typer.echo(line)
