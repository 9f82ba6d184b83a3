"""Streaming reader for Arrow IPC files, as Hugging Face ``datasets.save_to_disk`` writes them.

A ``save_to_disk`` folder holds ``dataset_info.json``, ``state.json`` (its ``_data_files`` list the
shards in order) and ``data-00000-of-0000N.arrow`` shards in the Arrow IPC *stream* format. Each
shard is memory-mapped and read record batch by record batch (the IPC *file* format, magic
``ARROW1``, is read too), so only one batch's Python values exist at a time. Image and caption
cells are handled as in :mod:`.tables` (``Image()`` structs, ``Sequence(Value("string"))``
captions). A batch that cannot be decoded ends that shard with one ``shard_truncated`` row: an IPC
stream has no index to resume from. Finding the shards is :mod:`.detect_format`'s job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from misalignlab.data.ingest.columns import resolve_columns
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import SHARD_TRUNCATED
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row
from misalignlab.data.ingest.tables import batch_rows, batch_size

FILE_MAGIC = b"ARROW1"


def open_arrow(path: Path) -> Any:
    """A record batch reader over the memory-mapped file (stream or file format)."""
    try:
        source = pa.memory_map(str(path), "r")
        magic = source.read(len(FILE_MAGIC))
        source.seek(0)
        return ipc.open_file(source) if magic == FILE_MAGIC else ipc.open_stream(source)
    except OSError as err:
        raise IngestError(path, None, f"cannot open Arrow file: {err}") from None
    except (pa.ArrowException, ValueError) as err:
        raise IngestError(path, None, f"not an Arrow IPC file: {err}") from None


def record_batches(reader: Any) -> Iterator[pa.RecordBatch]:
    if isinstance(reader, ipc.RecordBatchFileReader):
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
        return
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def iter_arrow(path: Path, cfg: IngestCfg) -> Iterator[RawRow]:
    """Rows of one Arrow IPC file; ``line`` is the 1-based row number in the file."""
    reader = open_arrow(path)
    cols = resolve_columns(reader.schema.names, cfg, path, None)
    size = batch_size(reader.schema, cols, cfg.chunk_size)
    row = 0
    batches = record_batches(reader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError, ValueError, EOFError) as err:
            message = f"record batch unreadable after row {row}: {err}; rest of file skipped"
            yield bad_row(path, row + 1, row + 1, SHARD_TRUNCATED, message)
            return
        for offset in range(0, batch.num_rows, size):  # big batches in slices: bounded Python objects
            part = batch.slice(offset, size)
            yield from batch_rows(part, cols, path, row + 1)
            row += part.num_rows
