"""Streaming readers for user manifests (CSV, JSONL, parquet) and webdataset tar shards.

Each reader yields :class:`RawRow` s one at a time (CSV and JSONL line by line, parquet by record
batches, tar member by member), with the line number a user would look at. Rows are *not*
validated here beyond what the format needs; :mod:`misalignlab.data.ingest.stream` does that. A reader
raises :class:`IngestError` only when the manifest as a whole cannot be read (missing file,
unparseable format, missing required column).
"""

from __future__ import annotations

import csv
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from misalignlab.data.ingest.quarantine import IMAGE_TOO_LARGE, MALFORMED_ROW, SHARD_TRUNCATED

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
MANIFEST_EXTS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".tar": "tar"}


class IngestError(ValueError):
    """The dataset as a whole cannot be read; names the file and, when known, the line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass(frozen=True)
class Columns:
    """Manifest column names; ``id`` is optional (the record number is used when absent)."""

    image: str = "image"
    caption: str = "caption"
    id: str | None = "id"


@dataclass(frozen=True)
class RawRow:
    """One record as read, before validation.

    ``image`` is a path string (manifests), raw bytes (tar shards, or a binary parquet column) or
    ``None``; ``caption`` is whatever the format held (str, bytes, number, None …); ``member`` is
    the tar member name of the image. ``error`` holds ``(reason, message)`` when the format
    itself already showed the row to be bad.
    """

    source: str
    line: int
    record: int  # 1-based data record number, equal across formats for the same data
    id: Any
    image: Any
    caption: Any
    member: str | None = None
    error: tuple[str, str] | None = None


def _missing(path: Path, line: int | None, wanted: list[str], found: list[str]) -> IngestError:
    return IngestError(path, line, f"missing required column(s) {', '.join(map(repr, wanted))}; found: {found}")


def iter_csv(path: Path, cols: Columns) -> Iterator[RawRow]:
    """CSV rows with physical line numbers (header = line 1), quoted newlines included."""
    try:
        # surrogateescape: undecodable bytes survive as lone surrogates; the caption check flags them.
        fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as err:
        raise IngestError(path, None, f"cannot open manifest: {err.strerror or err}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except csv.Error as err:
            raise IngestError(path, reader.line_num, f"unparseable CSV header: {err}") from None
        if not header:
            raise IngestError(path, 1, "empty CSV file (no header)")
        header = [h.strip() for h in header]
        wanted = [c for c in (cols.image, cols.caption) if c not in header]
        if wanted:
            raise _missing(path, 1, wanted, header)
        pos = {name: header.index(name) for name in header}
        id_pos = pos.get(cols.id) if cols.id else None
        yield from _csv_records(path, reader, header, pos[cols.image], pos[cols.caption], id_pos)


def _csv_records(path: Path, reader: Any, header: list[str], img: int, cap: int, idp: int | None) -> Iterator[RawRow]:
    prev_end, record = reader.line_num, 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise IngestError(path, prev_end + 1, f"unparseable CSV: {err}") from None
        start, prev_end = prev_end + 1, reader.line_num
        if not fields:  # blank line
            continue
        record += 1
        bad = None
        if len(fields) != len(header):
            bad = (MALFORMED_ROW, f"{len(fields)} field(s), header has {len(header)}")
        yield RawRow(str(path), start, record, _field(fields, idp), _field(fields, img), _field(fields, cap), error=bad)


def _field(fields: list[str], i: int | None) -> str | None:
    return fields[i] if i is not None and i < len(fields) else None


def iter_jsonl(path: Path, cols: Columns, max_line_bytes: int = 2**20) -> Iterator[RawRow]:
    """JSON-lines records; a bad line is reported on the row, never fatal."""
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise IngestError(path, None, f"cannot open manifest: {err.strerror or err}") from None
    with fh:
        line_no, record, checked = 0, 0, False
        while raw := fh.readline(max_line_bytes + 1):
            line_no += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                while (more := fh.readline(max_line_bytes)) and not more.endswith(b"\n"):
                    pass  # skip the rest of an over-long line
                record += 1
                yield RawRow(str(path), line_no, record, None, None, None, error=(MALFORMED_ROW, "line too long"))
                continue
            if not raw.strip():
                continue
            record += 1
            obj, bad = _parse_json_line(raw)
            if bad is None and not checked:
                checked = True  # the first object tells us whether the user's column names exist
                wanted = [c for c in (cols.image, cols.caption) if c not in obj]
                if wanted:
                    raise _missing(path, line_no, wanted, sorted(obj))
            id_ = obj.get(cols.id) if cols.id else None
            yield RawRow(str(path), line_no, record, id_, obj.get(cols.image), obj.get(cols.caption), error=bad)


def _parse_json_line(raw: bytes) -> tuple[dict[str, Any], tuple[str, str] | None]:
    # surrogateescape: undecodable bytes inside a caption reach the caption check as lone surrogates.
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return {}, (MALFORMED_ROW, f"invalid JSON: {err.msg} at column {err.colno}")
    if not isinstance(obj, dict):
        return {}, (MALFORMED_ROW, f"expected a JSON object, got {type(obj).__name__}")
    return obj, None


def iter_parquet(path: Path, cols: Columns, batch_size: int = 1024) -> Iterator[RawRow]:
    """Parquet rows read by record batches; ``line`` is the 1-based row number."""
    try:
        pf = pq.ParquetFile(path)
    except OSError as err:
        raise IngestError(path, None, f"cannot open parquet manifest: {err}") from None
    except (pa.ArrowException, ValueError) as err:
        raise IngestError(path, None, f"unparseable parquet file: {err}") from None
    names = pf.schema_arrow.names
    wanted = [c for c in (cols.image, cols.caption) if c not in names]
    if wanted:
        raise _missing(path, None, wanted, names)
    use = [cols.image, cols.caption] + ([cols.id] if cols.id in names else [])
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size, columns=use):
            data = batch.to_pydict()
            ids = data.get(cols.id) if cols.id in data else [None] * batch.num_rows
            for id_, img, cap in zip(ids, data[cols.image], data[cols.caption], strict=True):
                row += 1
                yield RawRow(str(path), row, row, id_, img, cap)
    except (pa.ArrowException, OSError) as err:
        raise IngestError(path, row + 1, f"unparseable parquet data: {err}") from None


def iter_tar(path: Path, caption_ext: str = "txt", max_bytes: int = 64 * 2**20) -> Iterator[RawRow]:
    """Webdataset samples: consecutive members ``KEY.ext`` grouped by KEY; image bytes read directly.

    Nothing is extracted to disk, so member names cannot escape anywhere. A shard that ends
    mid-member yields one ``shard_truncated`` row and stops.
    """
    try:
        tf = tarfile.open(path, mode="r:*")
    except (OSError, tarfile.TarError) as err:
        raise IngestError(path, None, f"cannot open tar shard: {err}") from None
    with tf:
        group: list[tuple[int, tarfile.TarInfo]] = []
        key, index, record = None, 0, 0
        try:
            for index, info in enumerate(tf, start=1):
                k = _split_key(info.name)[0]
                if group and k != key:
                    record += 1
                    yield _tar_sample(tf, path, group, record, caption_ext, max_bytes)
                    group = []
                key = k
                group.append((index, info))
            if group:
                record += 1
                yield _tar_sample(tf, path, group, record, caption_ext, max_bytes)
        except (tarfile.TarError, OSError, EOFError) as err:
            msg = f"shard unreadable after member {index}: {err}; rest of shard skipped"
            yield RawRow(str(path), index + 1, record + 1, None, None, None, error=(SHARD_TRUNCATED, msg))


def _split_key(name: str) -> tuple[str, str]:
    """'dir/000001.seg.jpg' → ('dir/000001', 'seg.jpg') as webdataset does (first dot of the file name)."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), (ext.lower() if dot else "")


def _tar_sample(
    tf: tarfile.TarFile, path: Path, group: list[tuple[int, tarfile.TarInfo]], record: int, cap_ext: str, max_bytes: int
) -> RawRow:
    key = _split_key(group[0][1].name)[0]
    images = [(i, m) for i, m in group if _split_key(m.name)[1] in IMAGE_EXTS]
    texts = [m for _, m in group if _split_key(m.name)[1] == cap_ext]
    line = group[0][0]
    if len(images) > 1 or len(texts) > 1:
        names = [m.name for _, m in group]
        return RawRow(str(path), line, record, key, None, None, error=(MALFORMED_ROW, f"ambiguous sample: {names}"))
    too_big = [m.name for _, m in group if m.size > max_bytes]
    if too_big:
        msg = f"member(s) {too_big} larger than {max_bytes} bytes"
        return RawRow(str(path), line, record, key, None, None, error=(IMAGE_TOO_LARGE, msg))
    image = member = None
    if images:
        line, info = images[0]
        member = info.name
        image = _read_member(tf, info)
    caption = _read_member(tf, texts[0]) if texts else None
    return RawRow(str(path), line, record, key, image, caption, member=member)


def _read_member(tf: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | None:
    if not info.isfile():  # links and devices are never followed
        return None
    fh = tf.extractfile(info)
    if fh is None:
        return None
    data = fh.read()
    if len(data) != info.size:
        raise tarfile.ReadError(f"member {info.name!r} truncated ({len(data)} of {info.size} bytes)")
    return data
