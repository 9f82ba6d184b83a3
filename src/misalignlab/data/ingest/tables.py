"""Rows of Arrow record batches (from parquet or Arrow IPC files) as raw rows.

Shared by :mod:`.parquet` and :mod:`.arrow`: the image column may hold paths (string), image bytes
(binary: img2dataset's ``jpg``) or Hugging Face ``Image()`` structs ``{bytes, path}``; the caption
column text, bytes or a list of captions. Bytes get an :class:`~misalignlab.data.ingest.records.ImageRef`
``file::row``. A row without an image whose img2dataset ``status`` is not ``success`` is
``download_failed`` with img2dataset's ``error_message``. This module opens no files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from misalignlab.data.ingest.columns import Columns, image_value
from misalignlab.data.ingest.config import IMAGE_COLUMNS
from misalignlab.data.ingest.quarantine import DOWNLOAD_FAILED
from misalignlab.data.ingest.records import ImageRef, RawRow

BYTES_BATCH = 64  # rows per batch when the image column holds bytes: bounds memory at ~64 images


def holds_bytes(kind: pa.DataType) -> bool:
    """Binary, or a struct with a binary ``bytes`` field (Hugging Face ``Image()``)."""
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    if pa.types.is_struct(kind):
        index = kind.get_field_index("bytes")
        return index >= 0 and holds_bytes(kind.field(index).type)
    return False


def bytes_column(schema: pa.Schema, path: Path | str) -> str:
    """The column holding image bytes, for references that do not name one; ``LookupError`` if unclear."""
    found = [f.name for f in schema if holds_bytes(f.type)]
    preferred = [n for n in IMAGE_COLUMNS if n in found]
    if len(found) == 1 or preferred:
        return preferred[0] if preferred else found[0]
    raise LookupError(f"{path}: {'several' if found else 'no'} image byte columns ({found}); name the column")


def batch_size(schema: pa.Schema, cols: Columns, chunk_size: int) -> int:
    kind = schema.field(cols.image).type
    return min(chunk_size, BYTES_BATCH) if holds_bytes(kind) else chunk_size


def batch_rows(batch: pa.RecordBatch, cols: Columns, path: Path, first_row: int) -> Iterator[RawRow]:
    """The batch's rows; ``first_row`` is the 1-based file row number of its first row."""
    names = batch.schema.names
    data = {name: batch.column(names.index(name)).to_pylist() for name in cols.read}
    nothing = [None] * batch.num_rows
    ids, keys = data.get(cols.id or "", nothing), data.get(cols.image_id or "", nothing)
    status, message = data.get(cols.status or "", nothing), data.get(cols.error_message or "", nothing)
    for i in range(batch.num_rows):
        row = first_row + i
        image = image_value(data[cols.image][i])
        ref = ImageRef(str(path), str(row), cols.image) if isinstance(image, bytes) else None
        error = None
        if image is None and status[i] is not None and status[i] != "success":
            error = (DOWNLOAD_FAILED, f"img2dataset status {status[i]!r}: {message[i] or 'no error message'}")
        caption = data[cols.caption][i]
        yield RawRow(str(path), row, row, ids[i], image, caption, image_ref=ref, image_key=keys[i], error=error)
