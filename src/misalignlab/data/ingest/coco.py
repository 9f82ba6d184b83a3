"""Reader for COCO captions JSON: ``images`` [{id, file_name, …}] + ``annotations`` [{image_id, caption, id}].

One raw row per annotation: its ``id`` is the pair id, ``image_id`` the image key, the image's
``file_name`` (resolved under the root by the stream; ``coco_url`` only when there is no file name,
and then quarantined as ``remote_url``) the image. Rows come grouped by image, in the order of
``images`` and then of ``annotations``, so the stream decodes an image once for all its captions;
``line`` is the 1-based position of the annotation in ``annotations``. Annotations naming an image
that is not listed come last, as ``image_missing``.

The JSON document is parsed whole: it holds the captions, not the pixels (about 90 MB for COCO
train2017), and JSON offers no record boundaries to stream by. Images are read one at a time.
This module does not choose the image root (:mod:`.detect_format` does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.quarantine import IMAGE_MISSING, MALFORMED_ROW
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row


def load_coco(path: Path) -> tuple[list[Any], list[Any]]:
    """``(images, annotations)`` of a COCO captions file, or :class:`IngestError`."""
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except OSError as err:
        raise IngestError(path, None, f"cannot open COCO JSON: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise IngestError(path, None, f"unparseable COCO JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise IngestError(path, None, "not a COCO captions file: no 'images' list at the top level")
    if not isinstance(doc.get("annotations"), list):
        raise IngestError(path, None, "not a COCO captions file: no 'annotations' list at the top level")
    return doc["images"], doc["annotations"]


def _image_files(images: list[Any]) -> dict[Any, Any]:
    """image id → file name (or URL when the entry has no file name); entries without an id are skipped."""
    files: dict[Any, Any] = {}
    for entry in images:
        if isinstance(entry, dict) and _hashable(entry.get("id")):
            files.setdefault(entry["id"], entry.get("file_name") or entry.get("coco_url"))
    return files


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def iter_coco(path: Path) -> Iterator[RawRow]:
    """One raw row per annotation, grouped by image (see the module docstring)."""
    images, annotations = load_coco(path)
    files = _image_files(images)
    by_image: dict[Any, list[int]] = {}
    orphans: list[int] = []
    for i, ann in enumerate(annotations):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if _hashable(image_id) and image_id in files:
            by_image.setdefault(image_id, []).append(i)
        else:
            orphans.append(i)
    for image_id in files:
        for i in by_image.get(image_id, ()):
            ann = annotations[i]
            yield RawRow(
                str(path), i + 1, i + 1, ann.get("id"), files[image_id], ann.get("caption"), image_key=image_id
            )
    for i in orphans:
        ann = annotations[i]
        if not isinstance(ann, dict):
            yield bad_row(path, i + 1, i + 1, MALFORMED_ROW, f"annotation is a {type(ann).__name__}, not an object")
            continue
        msg = f"annotation refers to image id {ann.get('image_id')!r}, which 'images' does not list"
        yield bad_row(path, i + 1, i + 1, IMAGE_MISSING, msg, id=ann.get("id"))
