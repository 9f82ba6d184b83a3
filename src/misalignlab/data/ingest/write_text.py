"""Cleaned copies of text manifests: CSV, TSV, JSON lines and COCO captions JSON.

CSV and TSV records are located with the reader itself (:func:`~.csv_jsonl.iter_csv`: a record may
span several physical lines), then every line outside a dropped record is copied byte for byte,
header and blank lines included; undecodable bytes survive (``surrogateescape``). JSON lines are
copied line by line; a line whose caption list loses only some captions is re-serialised. A COCO
file loses its dropped annotations and then the images left without any caption; the JSON is
re-serialised (key order kept). The plan comes from :mod:`.write_plan`; nothing here decides what goes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.columns import resolve_columns
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.csv_jsonl import iter_csv
from misalignlab.data.ingest.write_plan import DropPlan, atomic_target, drop_indices
from misalignlab.runs import atomic_write_text


def dropped_spans(starts: Iterable[int], whole: Callable[[int], bool]) -> list[tuple[int, float]]:
    """Line spans ``(first, last)`` of the dropped records, from every record's first line in order.

    A record runs up to the line before the next record (blank lines after it go with it); the last
    one runs to the end of the file.
    """
    spans: list[tuple[int, float]] = []
    opened: int | None = None
    for start in starts:
        if opened is not None:
            spans.append((opened, start - 1))
            opened = None
        if whole(start):
            opened = start
    if opened is not None:
        spans.append((opened, math.inf))
    return spans


def copy_csv(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path, delimiter: str = ",") -> Path:
    """Copy a CSV/TSV manifest without its dropped records, every other line byte for byte."""
    starts = (raw.line for raw in iter_csv(path, cfg, delimiter))
    spans = dropped_spans(starts, lambda line: plan.whole(path, line))
    with atomic_target(target) as tmp:
        # the reader's line splitting (universal newlines, endings kept); surrogateescape keeps every byte
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src, open(tmp, "wb") as dst:
            at = 0
            for number, line in enumerate(src, start=1):
                while at < len(spans) and spans[at][1] < number:
                    at += 1
                if at < len(spans) and spans[at][0] <= number:
                    continue
                dst.write(line.encode("utf-8", errors="surrogateescape"))
    return target


def copy_jsonl(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """Copy a JSON-lines manifest without its dropped lines; a line losing part of its caption list is rewritten."""
    field: str | None = None  # the caption field, resolved from the first object as the reader does
    with atomic_target(target) as tmp, open(path, "rb") as src, open(tmp, "wb") as dst:
        for number, line in enumerate(iter(src.readline, b""), start=1):
            if field is None and line.strip():
                field = _caption_field(line, cfg, path, number)
            if plan.whole(path, number):
                continue
            lost = plan.lost(path, number)
            if lost and field is not None:
                body = line.rstrip(b"\r\n")
                obj = _parse(body)
                obj[field] = drop_indices(obj[field], lost)
                line = json.dumps(obj, ensure_ascii=False).encode("utf-8") + line[len(body) :]
            dst.write(line)
    return target


def _parse(line: bytes) -> Any:
    return json.loads(line.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff"))


def _caption_field(line: bytes, cfg: IngestCfg, path: Path, number: int) -> str | None:
    try:
        obj = _parse(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return resolve_columns(sorted(obj), cfg, path, number).caption if isinstance(obj, dict) else None


def copy_coco(path: Path, cfg: IngestCfg, plan: DropPlan, target: Path) -> Path:
    """Copy a COCO captions JSON without the dropped annotations and the images they leave without any."""
    with open(path, "rb") as fh:
        doc = json.load(fh)
    captioned, kept = set(), []
    for i, ann in enumerate(doc["annotations"]):
        captioned.add(_image_id(ann))
        if plan.whole(path, i + 1):
            continue
        lost = plan.lost(path, i + 1)
        kept.append(ann | {"caption": drop_indices(ann["caption"], lost)} if lost else ann)
    still = {_image_id(ann) for ann in kept}
    doc["annotations"] = kept
    doc["images"] = [im for im in doc["images"] if _id(im) in still or _id(im) not in captioned]
    atomic_write_text(target, json.dumps(doc, ensure_ascii=False) + "\n")
    return target


def _image_id(ann: Any) -> Any:
    return _hashable(ann.get("image_id")) if isinstance(ann, dict) else None


def _id(image: Any) -> Any:
    return _hashable(image.get("id")) if isinstance(image, dict) else None


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None
