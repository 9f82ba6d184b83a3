"""Cleaned copies of binary layouts: parquet, Arrow (as parquet), webdataset tar shards, sample folders (as CSV).

- **parquet**: rewritten row group by row group with the input's schema (every column kept), so a
  file of image bytes never sits in memory whole; rows are numbered as the reader numbers them.
- **Arrow IPC** (Hugging Face ``save_to_disk``): each shard becomes a parquet file with the same
  columns and schema metadata, which the parquet reader (and ``datasets``) reads back.
- **tar**: read in stream mode as the reader does; the members of each kept sample are copied with
  their headers into a new shard of the same compression; a dropped sample loses all its members.
  A sample whose ``KEY.json`` caption list loses some captions gets that member re-serialised.
- **img2dataset files**: one CSV manifest (``id``, ``image_id``, ``image``, ``caption``) with image
  paths relative to the image root; rewriting thousands of sample folders would copy every image.

The plan comes from :mod:`.write_plan`; nothing here decides what goes.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from misalignlab.data.ingest.arrow import open_arrow, record_batches
from misalignlab.data.ingest.columns import resolve_columns
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import Layout
from misalignlab.data.ingest.parquet import READ_ERRORS
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.readers import iter_layout
from misalignlab.data.ingest.records import TAR_SUFFIXES, RawRow
from misalignlab.data.ingest.samples import IMAGE_EXTS, split_key
from misalignlab.data.ingest.tar import TAR_ERRORS
from misalignlab.data.ingest.validate import pair_keys, resolve_inside
from misalignlab.data.ingest.write_plan import DropPlan, atomic_target, drop_indices

log = logging.getLogger(__name__)


def filter_batch(batch: pa.RecordBatch | pa.Table, path: Path, first_row: int, caption: str, plan: DropPlan):  # noqa: ANN201
    """``batch`` (rows numbered from ``first_row``, 1-based) without the dropped rows and captions."""
    rows = range(first_row, first_row + batch.num_rows)
    keep = pa.array([not plan.whole(path, r) for r in rows], type=pa.bool_())
    partial = {i: plan.lost(path, r) for i, r in enumerate(rows) if plan.lost(path, r)}
    if partial:
        at = batch.schema.get_field_index(caption)
        cells = batch.column(at).to_pylist()
        for i, lost in partial.items():
            cells[i] = drop_indices(cells[i], lost)
        column = pa.array(cells, type=batch.schema.field(at).type)
        batch = batch.set_column(at, batch.schema.field(at), column)
    return batch.filter(keep)


def copy_parquet(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """Copy a parquet manifest without the dropped rows (every column kept), row group by row group."""
    pf = pq.ParquetFile(path)
    caption = resolve_columns(pf.schema_arrow.names, cfg, path, None).caption
    with atomic_target(target) as tmp, pq.ParquetWriter(tmp, pf.schema_arrow) as writer:
        start = 0
        for group in range(pf.num_row_groups):
            try:
                table = pf.read_row_group(group)
            except READ_ERRORS:  # the reader quarantined these rows: nothing of them to copy
                log.warning("%s: row group %d cannot be decoded; its rows are left out", path, group + 1)
            else:
                writer.write_table(filter_batch(table, path, start + 1, caption, plan))
            start += pf.metadata.row_group(group).num_rows
    return target


def arrow_to_parquet(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """Write an Arrow IPC shard without the dropped rows as a parquet file with the same schema."""
    reader = open_arrow(path)
    caption = resolve_columns(reader.schema.names, cfg, path, None).caption
    with atomic_target(target) as tmp, pq.ParquetWriter(tmp, reader.schema) as writer:
        row, batches = 0, record_batches(reader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except READ_ERRORS:  # the reader stops here too and quarantines the rest of the file
                log.warning("%s: record batch unreadable after row %d; the rest is left out", path, row)
                break
            writer.write_batch(filter_batch(batch, path, row + 1, caption, plan))
            row += batch.num_rows
    return target


def _tar_mode(path: Path) -> str:
    return "w:gz" if path.name.lower().endswith(TAR_SUFFIXES[1:]) else "w"


Member = tuple[int, tarfile.TarInfo, bytes | None]  # (1-based index in the shard, header, bytes of a regular file)


def copy_tar(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """Copy a webdataset shard without the dropped samples; members are copied with their headers."""
    with atomic_target(target) as tmp:
        with tarfile.open(path, mode="r|*") as src, tarfile.open(tmp, mode=_tar_mode(target)) as dst:
            group: list[Member] = []
            key = None
            try:
                for index, info in enumerate(src, start=1):
                    k = split_key(info.name)[0]
                    if group and k != key:
                        _write_sample(dst, group, path, cfg, plan)
                        group = []
                    key = k
                    group.append((index, info, _member_bytes(src, info)))
            except TAR_ERRORS as err:  # as the reader does: samples before the break stay, the rest is lost
                log.warning("%s: shard breaks off (%s); the samples after the break are left out", path, err)
                group = []
            if group:
                _write_sample(dst, group, path, cfg, plan)
    return target


def _member_bytes(src: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | None:
    fh = src.extractfile(info) if info.isfile() else None
    if fh is None:
        return None
    data = fh.read()
    if len(data) != info.size:
        raise tarfile.ReadError(f"member {info.name!r} truncated ({len(data)} of {info.size} bytes)")
    return data


def _write_sample(dst: tarfile.TarFile, group: list[Member], path: Path, cfg: IngestCfg, plan: DropPlan) -> None:
    images = [index for index, info, _ in group if split_key(info.name)[1] in IMAGE_EXTS]
    line = images[0] if images else group[0][0]  # the reader's line: the image member, else the first
    if plan.whole(path, line):
        return
    lost = plan.lost(path, line)
    for _, info, data in group:
        if lost and split_key(info.name)[1] == "json" and data is not None:
            obj = json.loads(data.decode("utf-8-sig"))
            field = cfg.caption_column or "caption"
            obj[field] = drop_indices(obj.get(field), lost)
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            info = copy.copy(info)  # TarInfo.replace is Python ≥ 3.10.12 / 3.11.4
            info.size = len(data)
        dst.addfile(info, io.BytesIO(data) if data is not None else None)


def files_to_csv(layout: Layout, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """One CSV manifest of the kept samples of an img2dataset ``files`` layout (paths relative to the root).

    Samples without a readable image path or caption (quarantined rows kept on request) are left out:
    a manifest row cannot say what they lack.
    """
    per_image: dict[str, int] = {}
    with atomic_target(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "image_id", "image", "caption"])
        for raw in iter_layout(layout, cfg):
            try:
                pid, image_key = pair_keys(raw, per_image)
            except PairError:
                continue
            gone = plan.whole(raw.source, raw.line) or raw.caption_index in plan.lost(raw.source, raw.line)
            row = None if gone else _sample_row(raw, layout.root)
            if row is not None:
                out.writerow([pid, image_key, *row])
    return target


def _sample_row(raw: RawRow, root: Path) -> tuple[str, str] | None:
    if not isinstance(raw.image, str) or raw.caption is None:
        return None
    try:
        image = resolve_inside(root, str(Path(raw.image).resolve()))
    except PairError:
        return None
    caption = raw.caption.decode("utf-8-sig", errors="replace") if isinstance(raw.caption, bytes) else raw.caption
    return image.relative_to(root).as_posix(), str(caption)
