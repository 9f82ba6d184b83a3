"""Which records a cleaned copy of a dataset leaves out, and the small helpers every copier shares.

:func:`plan_drops` re-reads the dataset with the ingestion readers
(:func:`~misalignlab.data.ingest.readers.iter_layout`: the same files, line numbers and pair ids as
the diagnosis) and asks a ``keep(pair_id, raw_row)`` callable about every caption. The answer is a
:class:`DropPlan` keyed by ``(source file, line)`` as the readers name records, which the copiers of
:mod:`.write_text` and :mod:`.write_tables` follow. Which rows to keep is the caller's choice.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import Layout
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.readers import iter_layout
from misalignlab.data.ingest.records import RawRow
from misalignlab.data.ingest.validate import pair_keys

Keep = Callable[[str | None, RawRow], bool]  # (pair id, or None for a row the reader found bad; row) → keep it?
Record = tuple[str, int]  # (source file as the reader names it, 1-based line / row / member / annotation number)
Cell = tuple[Record | None, int, frozenset[int]]  # a list-valued caption cell being read: record, size, lost


@dataclass(frozen=True)
class DropPlan:
    """The records a cleaned copy leaves out.

    ``drops`` maps a record to the caption indices dropped from its list-valued caption cell, or to
    ``None`` when the whole record goes. ``kept`` and ``dropped`` count captions (pairs);
    ``kept_in`` counts the kept ones per source file.
    """

    drops: Mapping[Record, frozenset[int] | None]
    kept: int
    dropped: int
    kept_in: Mapping[str, int] = field(default_factory=dict)

    def whole(self, source: str | Path, line: int) -> bool:
        """Whether the record goes entirely."""
        key = (str(source), line)
        return key in self.drops and self.drops[key] is None

    def lost(self, source: str | Path, line: int) -> frozenset[int]:
        """Caption indices dropped from a record that stays (empty when none)."""
        return self.drops.get((str(source), line)) or frozenset()


def plan_drops(layout: Layout, cfg: IngestCfg, keep: Keep) -> DropPlan:
    """Ask ``keep`` about every caption of the dataset, in reading order, and collect the records to drop.

    The pair id is the one the diagnosis gave (:func:`~.validate.pair_keys`, counting captions per
    image as the stream does); a row the reader already found bad gets ``None``. A list-valued
    caption cell is dropped whole only when every one of its captions is.
    """
    per_image: dict[str, int] = {}
    drops: dict[Record, frozenset[int] | None] = {}
    counts = [0, 0]  # kept, dropped
    kept_in: Counter[str] = Counter()
    cell: Cell = (None, 0, frozenset())
    for raw in iter_layout(layout, cfg):
        try:
            pid: str | None = pair_keys(raw, per_image)[0]
        except PairError:
            pid = None
        ok = keep(None if raw.error is not None else pid, raw)
        counts[not ok] += 1
        kept_in[raw.source] += ok
        key = (raw.source, raw.line)
        if raw.caption_index is None:
            if not ok:
                drops[key] = None
            continue
        if key != cell[0]:
            _close(cell, drops)
            cell = (key, 0, frozenset())
        cell = (key, cell[1] + 1, cell[2] | ({raw.caption_index} if not ok else set()))
    _close(cell, drops)
    return DropPlan(drops, counts[0], counts[1], dict(kept_in))


def _close(cell: Cell, drops: dict[Record, frozenset[int] | None]) -> None:
    key, size, lost = cell
    if key is not None and lost:
        drops[key] = None if len(lost) == size else lost


def drop_indices(values: Any, lost: frozenset[int]) -> Any:
    """A caption list without the positions in ``lost`` (anything else unchanged)."""
    if not isinstance(values, (list, tuple)):
        return values
    return [v for k, v in enumerate(values) if k not in lost]


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to ``path`` when the block ends without error.

    For outputs written in a stream (tar shards, parquet row groups); whole texts go through
    :func:`misalignlab.runs.atomic_write_bytes`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
