"""Records shared by the ingestion readers: a raw row, where an image lives, the fatal error.

A reader (:mod:`.csv_jsonl`, :mod:`.tables`, :mod:`.tar`, :mod:`.files`, :mod:`.coco`) turns its
format into :class:`RawRow` s; :mod:`.stream` validates them into pairs whose provenance is a
:class:`SourceRow` with an :class:`ImageRef`. An image reference prints as one string that joins a
pair back to the files:

- ``/data/imgs/cat.jpg``                  an image file (resolved: symlinks and ``..`` gone)
- ``/data/00000.tar::000000042.jpg``      a member of a tar shard (``.tar``, ``.tar.gz``, ``.tgz``)
- ``/data/train.parquet::17``             the bytes in row 17 (1-based) of a parquet or Arrow file

This module reads and checks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTAINER_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".parquet", ".arrow")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class IngestError(ValueError):
    """The dataset as a whole cannot be read; names the file and, when known, the line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass(frozen=True)
class ImageRef:
    """Where an accepted image lives.

    ``path`` is the resolved image file, or the container holding the image (tar shard, parquet or
    Arrow file); ``member`` is then the tar member name or the 1-based row number, and ``column``
    the parquet/Arrow column that holds the bytes.
    """

    path: str
    member: str | None = None
    column: str | None = None

    @property
    def ref(self) -> str:
        """The reference as one string: ``path`` or ``path::member``."""
        return self.path if self.member is None else f"{self.path}::{self.member}"

    @staticmethod
    def parse(ref: str, column: str | None = None) -> ImageRef:
        """Split ``path::member`` at the first ``::`` that follows a container suffix; else a plain path."""
        start = 0
        while (at := ref.find("::", start)) != -1:
            if ref[:at].lower().endswith(CONTAINER_SUFFIXES):
                return ImageRef(ref[:at], ref[at + 2 :], column)
            start = at + 1
        return ImageRef(ref, None, column)


@dataclass(frozen=True)
class SourceRow:
    """Where a pair came from: the manifest/shard/folder, the 1-based line, row or member number, the image."""

    source: str
    line: int
    image: ImageRef

    @property
    def ref(self) -> str:
        """The image reference string (see the module docstring)."""
        return self.image.ref


@dataclass(frozen=True)
class RawRow:
    """One record as read, before validation.

    ``image`` is a path string, image bytes or ``None``; ``caption`` is whatever the format held
    (str, bytes, a list of captions, a number, None …). ``image_ref`` says where bytes came from
    (tar member, parquet/Arrow row). ``image_key`` is the image id shared by several captions
    (an image id column, COCO's ``image_id``), ``caption_index`` the position in a list-valued
    caption cell. ``error`` holds ``(reason, message)`` when the reader already found the row bad.
    """

    source: str
    line: int
    record: int  # 1-based data record number, equal across formats for the same data
    id: Any
    image: Any
    caption: Any
    image_ref: ImageRef | None = None
    image_key: Any = None
    caption_index: int | None = None
    error: tuple[str, str] | None = None


def bad_row(source: Path | str, line: int, record: int, reason: str, message: str, id: Any = None) -> RawRow:
    """A row the reader already knows to be bad."""
    return RawRow(str(source), line, record, id, None, None, error=(reason, message))
