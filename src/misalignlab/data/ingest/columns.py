"""Which manifest columns hold the image, caption, id and image id; normalising their cell values.

:func:`resolve_columns` maps :class:`~misalignlab.data.ingest.config.IngestCfg`'s column settings
onto the names a manifest has (CSV header, first JSON object, parquet/Arrow schema), failing with
the file, line and the names found. :func:`image_value` turns a Hugging Face ``{bytes, path}``
image struct into bytes or a path. This module reads no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.config import CAPTION_COLUMNS, ID_COLUMNS, IMAGE_COLUMNS, IngestCfg
from misalignlab.data.ingest.records import IngestError

STATUS, ERROR_MESSAGE = "status", "error_message"  # img2dataset's per-row download outcome


@dataclass(frozen=True)
class Columns:
    """Resolved column names; ``id``/``image_id``/``status`` are ``None`` when the manifest has none."""

    image: str
    caption: str
    id: str | None = None
    image_id: str | None = None
    status: str | None = None  # img2dataset ``status`` (``error_message`` beside it, when present)
    error_message: str | None = None

    @property
    def read(self) -> list[str]:
        """Every column to read, in a fixed order, without repeats."""
        names = [self.image, self.caption, self.id, self.image_id, self.status, self.error_message]
        return list(dict.fromkeys(n for n in names if n is not None))


def _pick(wanted: str | None, usual: tuple[str, ...], names: Sequence[str]) -> str | None:
    if wanted is not None:
        return wanted if wanted in names else None
    return next((n for n in usual if n in names), None)


def _describe(setting: str, wanted: str | None, usual: tuple[str, ...]) -> str:
    if wanted is not None:
        return repr(wanted)
    others = ", ".join(map(repr, usual[1:]))
    return f"{usual[0]!r} (nor {others}; set {setting})"


def resolve_columns(names: Sequence[str], cfg: IngestCfg, path: Path | str, line: int | None) -> Columns:
    """Columns of a manifest whose column names are ``names``.

    Raises
    ------
    IngestError
        The image or caption column (or an id / image id column set explicitly) is missing.
    """
    names = list(names)
    image = _pick(cfg.image_column, IMAGE_COLUMNS, names)
    caption = _pick(cfg.caption_column, CAPTION_COLUMNS, names)
    missing = []
    if image is None:
        missing.append(_describe("image_column", cfg.image_column, IMAGE_COLUMNS))
    if caption is None:
        missing.append(_describe("caption_column", cfg.caption_column, CAPTION_COLUMNS))
    for setting in ("id_column", "image_id_column"):
        wanted = getattr(cfg, setting)
        if wanted is not None and wanted not in names:
            missing.append(f"{wanted!r} ({setting})")
    if missing:
        raise IngestError(path, line, f"missing required column(s) {', '.join(missing)}; found: {names}")
    assert image is not None and caption is not None
    ident = _pick(cfg.id_column, ID_COLUMNS, names)
    image_id = cfg.image_id_column
    if ident is not None and ident == image_id:
        ident = None  # the id column holds image ids: pair ids become '<image id>#<k>'
    status = STATUS if STATUS in names and image != STATUS else None
    message = ERROR_MESSAGE if status and ERROR_MESSAGE in names else None
    return Columns(image, caption, ident, image_id, status, message)


def image_value(value: Any) -> Any:
    """A cell of the image column as bytes, a path string, or what it was.

    A Hugging Face ``Image()`` cell is a struct ``{bytes, path}``: the bytes when present, else the
    path (which the stream resolves under the root, or quarantines as a URL).
    """
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        value = value.get("bytes") if value.get("bytes") is not None else value.get("path")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value
