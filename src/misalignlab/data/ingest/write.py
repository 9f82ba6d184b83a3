"""Cleaned copies of a dataset in its own format: the records a diagnosis flagged are left out.

The writers mirror the readers: :func:`~.write_plan.plan_drops` re-reads the dataset and collects
the records to drop; :func:`write_clean_copy` writes the copy into a new folder, one output file
per input file and under the same name, in the input's format:

======================  ==============================================================================
input                   cleaned copy
======================  ==============================================================================
CSV, TSV, JSON lines    every kept line byte for byte, header kept (:mod:`.write_text`)
COCO captions JSON      dropped annotations removed, then images left without a caption
parquet                 rewritten without the dropped rows, every column kept (:mod:`.write_tables`)
webdataset tar shards   new shards (same compression) without the dropped samples' members
Hugging Face Arrow      **parquet** shards with the same columns (``note`` says so)
img2dataset ``files``   **one CSV manifest** naming the kept image files (``note`` says so)
======================  ==============================================================================

A list-valued caption cell loses only its dropped captions. Nothing is written over an input file:
:class:`~.records.IngestError` instead. Each file is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import Layout
from misalignlab.data.ingest.records import IngestError
from misalignlab.data.ingest.write_plan import DropPlan, Keep, plan_drops
from misalignlab.data.ingest.write_tables import arrow_to_parquet, copy_parquet, copy_tar, files_to_csv
from misalignlab.data.ingest.write_text import copy_coco, copy_csv, copy_jsonl

__all__ = ["CleanCopy", "DropPlan", "Keep", "guard_inputs", "plan_drops", "write_clean_copy"]

Copier = Callable[[Path, IngestCfg, DropPlan, Path], Path]  # (input file, config, plan, output file)
COPIERS: dict[str, Copier] = {
    "csv": lambda path, cfg, plan, target: copy_csv(path, cfg, plan, target, ","),
    "tsv": lambda path, cfg, plan, target: copy_csv(path, cfg, plan, target, "\t"),
    "jsonl": copy_jsonl,
    "coco": copy_coco,
    "parquet": copy_parquet,
    "arrow": arrow_to_parquet,
    "tar": copy_tar,
}
FILES_NOTE = (
    "an img2dataset files layout is written as one CSV manifest (id, image_id, image, caption) naming the "
    "kept image files relative to {root}; the sample folders are not copied"
)
COPY_ERRORS = (IngestError, OSError, EOFError, ValueError, tarfile.TarError, zlib.error, pa.ArrowException)
ARROW_NOTE = (
    "a Hugging Face Arrow (save_to_disk) folder is written as parquet shards with the same columns; "
    "rewriting save_to_disk's own metadata is left to `datasets`"
)


@dataclass(frozen=True)
class CleanCopy:
    """What :func:`write_clean_copy` wrote: the format, the files, the pairs kept and dropped, and a
    note for people when the copy is not in the input's format."""

    format: str
    files: tuple[Path, ...]
    kept: int
    dropped: int
    note: str = ""


def write_clean_copy(layout: Layout, cfg: IngestCfg, plan: DropPlan, out: Path) -> CleanCopy:
    """Write the dataset of ``layout`` without ``plan``'s records into the folder ``out``.

    Raises
    ------
    IngestError
        An output file would overwrite an input file.
    """
    out = Path(out)
    if layout.format == "files":
        target = out / "manifest.csv"
        guard_inputs([target], layout)
        path = files_to_csv(layout, cfg, plan, target)
        return CleanCopy("csv", (path,), plan.kept, plan.dropped, FILES_NOTE.format(root=layout.root))
    targets = [out / (f"{f.stem}.parquet" if layout.format == "arrow" else f.name) for f in layout.files]
    if len(set(targets)) != len(targets):
        raise IngestError(out, None, "two input files have the same name; they cannot share one output folder")
    guard_inputs(targets, layout)
    files, skipped = [], []
    for source, target in zip(layout.files, targets):
        try:
            files.append(COPIERS[layout.format](source, cfg, plan, target))
        except COPY_ERRORS as err:
            if plan.kept_in.get(str(source), 0):
                raise IngestError(source, None, f"cannot copy it: {err}") from None
            skipped.append(f"{source} (unreadable, none of its rows kept)")  # the diagnosis quarantined it whole
    notes = [ARROW_NOTE] if layout.format == "arrow" else []
    notes += [f"skipped {', '.join(skipped)}"] if skipped else []
    fmt = "parquet" if layout.format == "arrow" else layout.format
    return CleanCopy(fmt, tuple(files), plan.kept, plan.dropped, "; ".join(notes))


def guard_inputs(targets: Iterable[Path], layout: Layout) -> None:
    """Raise :class:`IngestError` if a target is one of the dataset's files: the input is never overwritten."""
    inputs = [Path(f).resolve() for f in (*layout.files, *layout.status.values())]
    for target in targets:
        resolved = Path(target).resolve()
        if resolved in inputs or (resolved.exists() and any(_same(resolved, f) for f in inputs)):
            raise IngestError(target, None, "refusing to write over the input dataset; choose another output folder")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
