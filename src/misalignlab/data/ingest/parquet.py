"""Streaming reader for parquet manifests, row group by row group.

Paths, image bytes (a binary column such as img2dataset's ``jpg``) and Hugging Face ``{bytes, path}``
structs are all read (see :mod:`.tables`). Each row group is read on its own in batches, so a row
group that cannot be decoded (corrupt pages, bad compression) quarantines its rows as
``row_group_unreadable`` and the rest of the file is still read. Only a file whose footer cannot be
read, or that lacks a required column, raises :class:`~misalignlab.data.ingest.records.IngestError`.
img2dataset's per-shard status parquet (no images) is read by :func:`iter_download_failures`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from misalignlab.data.ingest.columns import ERROR_MESSAGE, STATUS, resolve_columns
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import DOWNLOAD_FAILED, ROW_GROUP_UNREADABLE
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row
from misalignlab.data.ingest.tables import batch_rows, batch_size

READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except OSError as err:
        raise IngestError(path, None, f"cannot open parquet manifest: {err}") from None
    except (pa.ArrowException, ValueError) as err:
        raise IngestError(path, None, f"unparseable parquet file: {err}") from None


def iter_parquet(path: Path, cfg: IngestCfg) -> Iterator[RawRow]:
    """Parquet rows; ``line`` is the 1-based row number in the file."""
    pf = open_parquet(path)
    cols = resolve_columns(pf.schema_arrow.names, cfg, path, None)
    size = batch_size(pf.schema_arrow, cols, cfg.chunk_size)
    start = 0  # rows before the current row group
    for group in range(pf.num_row_groups):
        n_rows, done = pf.metadata.row_group(group).num_rows, 0
        try:
            for batch in pf.iter_batches(batch_size=size, row_groups=[group], columns=cols.read):
                yield from batch_rows(batch, cols, path, start + done + 1)
                done += batch.num_rows
        except READ_ERRORS as err:
            message = f"row group {group + 1} of {pf.num_row_groups} cannot be decoded: {err}"
            for row in range(start + done + 1, start + n_rows + 1):
                yield bad_row(path, row, row, ROW_GROUP_UNREADABLE, message)
        start += n_rows


def iter_download_failures(path: Path, key: str = "key") -> Iterator[RawRow]:
    """Rows of an img2dataset status parquet whose ``status`` is not ``success`` (they have no image).

    A file without a ``status`` column yields nothing; an unreadable one yields one
    ``row_group_unreadable`` row per lost row, as :func:`iter_parquet` does.
    """
    pf = open_parquet(path)
    names = pf.schema_arrow.names
    if STATUS not in names:
        return
    use = [c for c in (key, STATUS, ERROR_MESSAGE) if c in names]
    start = 0
    for group in range(pf.num_row_groups):
        n_rows = pf.metadata.row_group(group).num_rows
        try:
            data = pf.read_row_group(group, columns=use).to_pydict()
        except READ_ERRORS as err:
            message = f"row group {group + 1} of the status file cannot be decoded: {err}"
            for row in range(start + 1, start + n_rows + 1):
                yield bad_row(path, row, row, ROW_GROUP_UNREADABLE, message)
            start += n_rows
            continue
        keys, messages = data.get(key, [None] * n_rows), data.get(ERROR_MESSAGE, [None] * n_rows)
        for i, status in enumerate(data[STATUS]):
            if status != "success":
                row = start + i + 1
                text = f"img2dataset status {status!r}: {messages[i] or 'no error message'}"
                yield bad_row(path, row, row, DOWNLOAD_FAILED, text, id=keys[i])
        start += n_rows
