"""Reader for folders of sample files, img2dataset's ``files`` output: ``00000/000000000.jpg|txt|json``.

Each shard folder is listed once (names only, sorted), files are grouped by KEY as in a webdataset
shard (:mod:`.samples`), and one raw row per sample carries the image *path*: the stream resolves it
under the root (symlinks out of the root are refused there) and reads it. Caption and JSON sidecars
are read here through the same containment and size checks. Subfolders are not entered; finding the
shard folders is :mod:`.detect_format`'s job, and img2dataset's status parquet beside each folder is
read by :func:`~misalignlab.data.ingest.parquet.iter_download_failures`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import CAPTION_TOO_LONG, IMAGE_MISSING, MALFORMED_ROW, PairError
from misalignlab.data.ingest.records import IngestError, RawRow, bad_row
from misalignlab.data.ingest.samples import IMAGE_EXTS, TEXT_LIMIT, sidecar_fields, split_key, wanted_ext
from misalignlab.data.ingest.validate import read_file


def iter_files(folder: Path, cfg: IngestCfg, root: Path) -> Iterator[RawRow]:
    """One raw row per KEY in ``folder``; ``line`` is the sample's 1-based number in the folder."""
    try:
        names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError as err:
        raise IngestError(folder, None, f"cannot list sample folder: {err.strerror or err}") from None
    samples: dict[str, dict[str, list[str]]] = {}  # KEY → ext → names, in name order
    for name in names:
        key, ext = split_key(name)
        if wanted_ext(ext, cfg):
            samples.setdefault(key, {}).setdefault(ext, []).append(name)
    for record, (key, by_ext) in enumerate(samples.items(), start=1):
        yield _sample(folder, key, by_ext, record, cfg, root)


def _sample(folder: Path, key: str, by_ext: dict[str, list[str]], record: int, cfg: IngestCfg, root: Path) -> RawRow:
    images = [n for ext in IMAGE_EXTS for n in by_ext.get(ext, [])]
    cap_ext = None if cfg.caption_ext == "json" else cfg.caption_ext
    captions, metas = by_ext.get(cap_ext or "", []), by_ext.get("json", [])
    if len(images) > 1 or len(captions) > 1:
        return bad_row(folder, record, record, MALFORMED_ROW, f"ambiguous sample: {images + captions}", id=key)
    try:
        caption = _text(folder / captions[0], root, CAPTION_TOO_LONG) if captions else None
        meta = _text(folder / metas[0], root, MALFORMED_ROW) if metas else None
    except PairError as err:
        return bad_row(folder, record, record, err.reason, err.message, id=key)
    caption, image_key, error = sidecar_fields(caption, meta, cfg)
    if error is None and not images:
        error = (IMAGE_MISSING, f"sample {key!r} has no image file in {folder}")
    image = str(folder / images[0]) if images else None
    return RawRow(str(folder), record, record, key, image, caption, image_key=image_key, error=error)


def _text(path: Path, root: Path, too_large: str) -> bytes:
    return read_file(root, str(path), TEXT_LIMIT, too_large=too_large, what="caption")[0]
