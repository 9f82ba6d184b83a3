"""Streaming reader for webdataset tar shards (``.tar``, ``.tar.gz``, ``.tgz``), img2dataset's included.

Consecutive members ``KEY.ext`` form one sample (:mod:`.samples`). The shard is read front to back
in tarfile's stream mode and each wanted member's bytes are read as it passes, so a gzipped shard
is decompressed once and never seeked. Nothing is extracted to disk, links and devices are never
followed, and members over the size limits are skipped unread. A shard that ends or breaks
mid-member yields one ``shard_truncated`` row and stops; earlier samples are kept.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import CAPTION_TOO_LONG, IMAGE_MISSING, IMAGE_TOO_LARGE, MALFORMED_ROW
from misalignlab.data.ingest.quarantine import SHARD_TRUNCATED as TRUNCATED
from misalignlab.data.ingest.records import ImageRef, IngestError, RawRow, bad_row
from misalignlab.data.ingest.samples import IMAGE_EXTS, TEXT_LIMIT, sidecar_fields, split_key, wanted_ext

TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class _Member:
    index: int  # 1-based member number in the shard
    name: str
    ext: str
    size: int
    data: bytes | None  # read when wanted, regular and within limits


def iter_tar(path: Path, cfg: IngestCfg) -> Iterator[RawRow]:
    """One raw row per sample; ``line`` is the member number of its image (else its first member)."""
    try:
        tf = tarfile.open(path, mode="r|*")
    except TAR_ERRORS as err:
        raise IngestError(path, None, f"cannot open tar shard: {err}") from None
    with tf:
        group: list[_Member] = []
        key, index, record = None, 0, 0
        try:
            for index, info in enumerate(tf, start=1):
                k, ext = split_key(info.name)
                if group and k != key:
                    record += 1
                    yield _sample(path, group, record, cfg)
                    group = []
                key = k
                group.append(_Member(index, info.name, ext, info.size, _read(tf, info, ext, cfg)))
            if group:
                record += 1
                yield _sample(path, group, record, cfg)
        except TAR_ERRORS as err:
            msg = f"shard unreadable after member {index}: {err}; rest of shard skipped"
            yield bad_row(path, index + 1, record + 1, TRUNCATED, msg)


def _limit(ext: str, cfg: IngestCfg) -> int:
    return cfg.max_image_bytes if ext in IMAGE_EXTS else TEXT_LIMIT


def _read(tf: tarfile.TarFile, info: tarfile.TarInfo, ext: str, cfg: IngestCfg) -> bytes | None:
    if not info.isfile() or not wanted_ext(ext, cfg) or info.size > _limit(ext, cfg):
        return None  # links and devices are never followed; oversized members are skipped unread
    fh = tf.extractfile(info)
    if fh is None:
        return None
    data = fh.read()
    if len(data) != info.size:
        raise tarfile.ReadError(f"member {info.name!r} truncated ({len(data)} of {info.size} bytes)")
    return data


def _sample(path: Path, group: list[_Member], record: int, cfg: IngestCfg) -> RawRow:
    key = split_key(group[0].name)[0]
    images = [m for m in group if m.ext in IMAGE_EXTS]
    captions = [m for m in group if m.ext == cfg.caption_ext and cfg.caption_ext != "json"]
    metas = [m for m in group if m.ext == "json"]
    line = images[0].index if images else group[0].index
    if len(images) > 1 or len(captions) > 1 or len(metas) > 1:
        names = [m.name for m in group]
        return bad_row(path, line, record, MALFORMED_ROW, f"ambiguous sample: {names}", id=key)
    too_big = [m.name for m in group if wanted_ext(m.ext, cfg) and m.size > _limit(m.ext, cfg)]
    if too_big:
        reason = IMAGE_TOO_LARGE if images and images[0].name in too_big else CAPTION_TOO_LONG
        msg = f"member(s) {too_big} larger than the limit ({cfg.max_image_bytes} bytes for images, {TEXT_LIMIT} else)"
        return bad_row(path, line, record, reason, msg, id=key)
    caption = captions[0].data if captions else None
    caption, image_key, error = sidecar_fields(caption, metas[0].data if metas else None, cfg)
    if error is None and (not images or images[0].data is None):
        error = (IMAGE_MISSING, f"tar sample {key!r} has no regular image member")
    image = images[0] if images else None
    ref = ImageRef(str(path), image.name) if image is not None else None
    data = image.data if image is not None else None
    return RawRow(str(path), line, record, key, data, caption, image_ref=ref, image_key=image_key, error=error)
