"""Webdataset-style samples: files or tar members ``KEY.ext`` grouped by KEY into one raw row.

Shared by :mod:`.tar` (webdataset and img2dataset ``webdataset`` shards) and :mod:`.files`
(img2dataset ``files`` folders). A sample holds one image (``KEY.jpg|png|…``), its caption in
``KEY.<caption_ext>`` (``txt`` by default) or, when that is absent, in a field of ``KEY.json``
(``caption_column``, default ``caption``), and optionally its image id in ``KEY.json``
(``image_id_column``). This module parses sidecar bytes it is given; it opens nothing.
"""

from __future__ import annotations

import json
from typing import Any

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import MALFORMED_ROW

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
TEXT_LIMIT = 16 * 2**20  # bytes of a caption or JSON sidecar; larger ones are quarantined unread


def split_key(name: str) -> tuple[str, str]:
    """'dir/000001.seg.jpg' → ('dir/000001', 'seg.jpg') as webdataset does (first dot of the file name)."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), (ext.lower() if dot else "")


def wanted_ext(ext: str, cfg: IngestCfg) -> bool:
    """Whether a member/file with this extension is read: images, the caption, the JSON sidecar."""
    return ext in IMAGE_EXTS or ext == cfg.caption_ext or ext == "json"


def sidecar_fields(
    caption: bytes | None, meta: bytes | None, cfg: IngestCfg
) -> tuple[Any, Any, tuple[str, str] | None]:
    """``(caption, image key, error)`` of a sample from its caption bytes and ``KEY.json`` bytes.

    ``caption`` is ``KEY.<caption_ext>`` (``None`` when absent or when ``caption_ext`` is ``json``).
    """
    field = cfg.caption_column or "caption"
    need_json = caption is None or cfg.image_id_column is not None
    if meta is None or not need_json:
        return caption, None, None
    try:
        obj = json.loads(meta.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        return caption, None, (MALFORMED_ROW, f"KEY.json is not valid JSON: {err}")
    if not isinstance(obj, dict):
        return caption, None, (MALFORMED_ROW, f"KEY.json holds a {type(obj).__name__}, expected an object")
    key = obj.get(cfg.image_id_column) if cfg.image_id_column else None
    return (obj.get(field) if caption is None else caption), key, None
