"""Streaming readers for text manifests: CSV, TSV (open_clip's ``filepath``/``title`` files) and JSON lines.

Each reader yields :class:`~misalignlab.data.ingest.records.RawRow` s one record at a time, with the
physical line a user would look at. A hostile record never ends the run: a CSV field longer than
Python's default limit (131,072 characters) is read up to :data:`FIELD_LIMIT` characters (the
global ``csv.field_size_limit`` is set only around each read and restored), so a long caption is
quarantined as ``caption_too_long`` downstream; a longer field, an unparseable record or JSON line
becomes a ``malformed_row``. Rows are *not* validated here beyond what the format needs.
Only an unopenable file, an unparseable header or a missing column raises
:class:`~misalignlab.data.ingest.records.IngestError`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.columns import Columns, resolve_columns
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import MALFORMED_ROW
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row

FIELD_LIMIT = 16 * 2**20  # characters in one CSV field / bytes in one JSON line; longer: malformed_row


def _open_text(path: Path) -> Any:
    try:
        # surrogateescape: undecodable bytes survive as lone surrogates; the caption check flags them.
        return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as err:
        raise IngestError(path, None, f"cannot open manifest: {err.strerror or err}") from None


def _next_record(reader: Any) -> list[str]:
    """``next(reader)`` with the csv field limit set to :data:`FIELD_LIMIT` for this read only.

    ``csv.field_size_limit`` is process-wide: it is restored at once, so other code keeps its own.
    """
    old = csv.field_size_limit(FIELD_LIMIT)
    try:
        return next(reader)
    finally:
        csv.field_size_limit(old)


def iter_csv(path: Path, cfg: IngestCfg, delimiter: str = ",") -> Iterator[RawRow]:
    """CSV (or TSV with ``delimiter="\\t"``) rows with physical line numbers (header = line 1)."""
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = _next_record(reader)
        except StopIteration:
            header = []
        except csv.Error as err:
            raise IngestError(path, reader.line_num, f"unparseable CSV header: {err}") from None
        if not header:
            raise IngestError(path, 1, "empty CSV file (no header)")
        header = [h.strip() for h in header]
        try:
            cols = resolve_columns(header, cfg, path, 1)
        except IngestError as err:
            if delimiter == "," and len(header) == 1 and "\t" in header[0]:
                raise IngestError(path, 1, f"{err}; the header has tabs: a TSV? set format tsv") from None
            raise
        yield from _csv_records(path, reader, header, cols)


def _csv_records(path: Path, reader: Any, header: list[str], cols: Columns) -> Iterator[RawRow]:
    pos = {name: i for i, name in enumerate(header)}
    at = [pos.get(c) if c is not None else None for c in (cols.id, cols.image, cols.caption, cols.image_id)]
    prev_end, record = reader.line_num, 0
    while True:
        try:
            fields = _next_record(reader)
        except StopIteration:
            return
        except csv.Error as err:  # NUL byte, a field over FIELD_LIMIT …: this record only
            start, prev_end = prev_end + 1, reader.line_num
            record += 1
            yield bad_row(path, start, record, MALFORMED_ROW, f"unparseable CSV record: {err}")
            continue
        start, prev_end = prev_end + 1, reader.line_num
        if not fields:  # blank line
            continue
        record += 1
        bad = None
        if len(fields) != len(header):
            bad = (MALFORMED_ROW, f"{len(fields)} field(s), header has {len(header)}")
        id_, image, caption, image_key = (_field(fields, i) for i in at)
        yield RawRow(str(path), start, record, id_, image, caption, image_key=image_key, error=bad)


def _field(fields: list[str], i: int | None) -> str | None:
    return fields[i] if i is not None and i < len(fields) else None


def iter_jsonl(path: Path, cfg: IngestCfg, max_line_bytes: int = FIELD_LIMIT) -> Iterator[RawRow]:
    """JSON-lines records; a bad line is reported on the row, never fatal. A list caption stays a list."""
    try:
        fh = open(path, "rb")
    except OSError as err:
        raise IngestError(path, None, f"cannot open manifest: {err.strerror or err}") from None
    with fh:
        line_no, record, cols = 0, 0, None
        while raw := fh.readline(max_line_bytes + 1):
            line_no += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                while (more := fh.readline(max_line_bytes)) and not more.endswith(b"\n"):
                    pass  # skip the rest of an over-long line
                record += 1
                yield bad_row(path, line_no, record, MALFORMED_ROW, f"line longer than {max_line_bytes} bytes")
                continue
            if not raw.strip():
                continue
            record += 1
            obj, bad = _parse_json_line(raw)
            if bad is not None:
                yield bad_row(path, line_no, record, *bad)
                continue
            if cols is None:  # the first object tells us whether the user's column names exist
                cols = resolve_columns(sorted(obj), cfg, path, line_no)
            id_ = obj.get(cols.id) if cols.id else None
            key = obj.get(cols.image_id) if cols.image_id else None
            yield RawRow(str(path), line_no, record, id_, obj.get(cols.image), obj.get(cols.caption), image_key=key)


def _parse_json_line(raw: bytes) -> tuple[dict[str, Any], tuple[str, str] | None]:
    # surrogateescape: undecodable bytes inside a caption reach the caption check as lone surrogates.
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return {}, (MALFORMED_ROW, f"invalid JSON: {err.msg} at column {err.colno}")
    except RecursionError:
        return {}, (MALFORMED_ROW, "invalid JSON: nested too deeply")
    if not isinstance(obj, dict):
        return {}, (MALFORMED_ROW, f"expected a JSON object, got {type(obj).__name__}")
    return obj, None
