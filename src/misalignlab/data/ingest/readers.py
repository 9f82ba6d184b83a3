"""A dataset's raw rows in reading order: one reader per format, record numbers across shards, list captions.

:func:`iter_layout` runs the reader of a :class:`~misalignlab.data.ingest.detect_format.Layout`'s
format over its files in order, numbers records across all of them (so the ids of id-less rows stay
unique in a folder of shards), adds img2dataset's download failures after each shard, and splits
list-valued captions into one row each (:func:`expand_captions`). A later shard that cannot be read
at all becomes one ``shard_unreadable`` row; the first one raises (a wrong path, format or column
should stop a run at once). Nothing here validates a row.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from misalignlab.data.ingest.arrow import iter_arrow
from misalignlab.data.ingest.coco import iter_coco
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.csv_jsonl import iter_csv, iter_jsonl
from misalignlab.data.ingest.detect_format import Layout
from misalignlab.data.ingest.files import iter_files
from misalignlab.data.ingest.parquet import iter_download_failures, iter_parquet
from misalignlab.data.ingest.quarantine import CAPTION_EMPTY, SHARD_UNREADABLE
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row
from misalignlab.data.ingest.tar import iter_tar

log = logging.getLogger(__name__)
Reader = Callable[[Path, IngestCfg, Path], Iterator[RawRow]]  # (file or folder, config, image root)
READERS: dict[str, Reader] = {
    "csv": lambda path, cfg, root: iter_csv(path, cfg, ","),
    "tsv": lambda path, cfg, root: iter_csv(path, cfg, "\t"),
    "jsonl": lambda path, cfg, root: iter_jsonl(path, cfg),
    "parquet": lambda path, cfg, root: iter_parquet(path, cfg),
    "arrow": lambda path, cfg, root: iter_arrow(path, cfg),
    "tar": lambda path, cfg, root: iter_tar(path, cfg),
    "coco": lambda path, cfg, root: iter_coco(path),
    "files": iter_files,
}


def iter_layout(layout: Layout, cfg: IngestCfg) -> Iterator[RawRow]:
    """Every raw row of the dataset, one per caption."""
    return expand_captions(_shards(layout, cfg))


def _shards(layout: Layout, cfg: IngestCfg) -> Iterator[RawRow]:
    before = 0  # records in earlier files
    for n, file in enumerate(layout.files):
        log.info("reading %s (%s)", file, layout.name)
        last = 0
        try:
            for raw in READERS[layout.format](file, cfg, layout.root):
                last = raw.record
                yield dataclasses.replace(raw, record=raw.record + before) if before else raw
        except IngestError as err:
            if n == 0:
                raise  # the first file fails the run at once: likely a wrong path, format or column
            log.warning("skipping %s: %s", file, err)  # a later shard: the rest of the dataset is still read
            yield bad_row(file, err.line or 1, before + last + 1, SHARD_UNREADABLE, f"shard skipped: {err}")
        before += last
        if file in layout.status:  # img2dataset: rows that failed to download have no sample
            yield from iter_download_failures(layout.status[file])


def expand_captions(rows: Iterable[RawRow]) -> Iterator[RawRow]:
    """One row per caption of a list-valued caption cell (``caption_index`` k); other rows unchanged."""
    for raw in rows:
        if raw.error is not None or not isinstance(raw.caption, (list, tuple)):
            yield raw
        elif not raw.caption:
            yield dataclasses.replace(raw, caption=None, error=(CAPTION_EMPTY, "caption list is empty"))
        else:
            for k, caption in enumerate(raw.caption):
                yield dataclasses.replace(raw, caption=caption, caption_index=k)
