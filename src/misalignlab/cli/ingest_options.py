"""The options that say how a user's dataset is read, shared by ``diagnose`` and ``pilot``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from misalignlab.data.ingest.config import CAPTION_COLUMNS, FORMATS, ID_COLUMNS, IMAGE_COLUMNS, IngestCfg

IMAGE_COLUMN = typer.Option(
    None,
    "--image-column",
    help=f"Manifest column of the image (path or bytes); default: first of {', '.join(IMAGE_COLUMNS)}.",
)
CAPTION_COLUMN = typer.Option(
    None,
    "--caption-column",
    help=f"Column of the caption (text, or a list: one pair each); also the KEY.json field; default: first of {', '.join(CAPTION_COLUMNS)}.",
)
ID_COLUMN = typer.Option(
    None,
    "--id-column",
    help=f"Column of the pair id; default: {' or '.join(ID_COLUMNS)} if present, else the row number.",
)
IMAGE_ID_COLUMN = typer.Option(
    None, "--image-id-column", help="Rows sharing this value are captions of one image (COCO, Flickr30k)."
)
FORMAT = typer.Option("auto", "--format", help=" | ".join(FORMATS) + " (auto: detected from the files).")
ROOT = typer.Option(
    None,
    "--root",
    help="Folder where relative image paths resolve (default: the dataset's folder); paths outside it are refused.",
)


def ingest_cfg(
    image_size: int,
    image_column: Optional[str],
    caption_column: Optional[str],
    id_column: Optional[str],
    image_id_column: Optional[str],
    fmt: str,
    root: Optional[Path],
) -> IngestCfg:
    """The :class:`IngestCfg` of the command-line options (validated: a bad format names the valid ones)."""
    return IngestCfg(
        image_column=image_column,
        caption_column=caption_column,
        id_column=id_column,
        image_id_column=image_id_column,
        format=fmt,
        root=None if root is None else str(root),
        image_size=image_size,
    )
