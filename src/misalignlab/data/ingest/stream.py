"""Ingest a user's image–caption dataset for ``diagnose``: streamed, validated, quarantined.

Sources (detected by :mod:`.detect_format`): CSV/TSV/JSONL/parquet/Arrow manifests (one file or a
folder of shards) naming image files under a root or holding image bytes; webdataset and
img2dataset tar shards; img2dataset ``files`` folders; COCO captions JSON; Hugging Face
``save_to_disk`` folders; this project's ``render`` folders. Pairs come out as :class:`PairChunk` s
of ``chunk_size``, so a million pairs never sit in memory at once. A list of captions gives one
pair per caption; every pair has an image key (:func:`~.validate.pair_keys`) so later stages can
split and group by image. Every bad row is quarantined with its file, line and reason (see
:mod:`misalignlab.data.ingest.quarantine`) and the run goes on; only an unreadable dataset or one
without a single valid pair raises :class:`IngestError`.

Untrusted input: image paths are resolved (symlinks, ``..``) and refused outside the root, URLs
are refused (never fetched), files are size-checked before reading, images are verified and fully
decoded, captions must be UTF-8 text. This module does not escape captions for HTML; the report does.

Example
-------
>>> stream = open_pairs(Path("my_data/manifest.csv"), IngestCfg(image_size=64), quarantine_dir=Path("runs/x"))
>>> for chunk in stream:            # PairChunk: ids, images (N, 64, 64, 3) uint8, captions, rows, image_keys
...     ...
>>> stream.summary()["quarantined"]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import detect_layout
from misalignlab.data.ingest.images import decode_image
from misalignlab.data.ingest.quarantine import DUPLICATE_ID, PairError, Quarantine
from misalignlab.data.ingest.readers import iter_layout
from misalignlab.data.ingest.records import ImageRef, IngestError, RawRow, SourceRow
from misalignlab.data.ingest.reread import reread_image
from misalignlab.data.ingest.validate import check_caption, pair_id, pair_keys, read_file, refuse_url, resolve_inside

__all__ = [
    "EmptyDatasetError",
    "ImageRef",
    "IngestCfg",
    "IngestError",
    "Pair",
    "PairChunk",
    "PairError",
    "PairStream",
    "SourceRow",
    "check_caption",
    "open_pairs",
    "resolve_inside",
]

log = logging.getLogger(__name__)
QUARANTINE_FILE = "quarantine.jsonl"


class EmptyDatasetError(IngestError):
    """The whole source was read but not one pair was valid."""


@dataclass(frozen=True)
class Pair:
    id: str
    image: np.ndarray  # (S, S, 3) uint8
    caption: str
    row: SourceRow
    image_key: str  # pairs sharing it are captions of one image


@dataclass(frozen=True)
class PairChunk:
    """A batch of valid pairs, aligned by position; ``image_keys`` left empty means the ids (one caption per image)."""

    ids: tuple[str, ...]  # (N,)
    images: np.ndarray  # (N, S, S, 3) uint8
    captions: tuple[str, ...]  # (N,)
    rows: tuple[SourceRow, ...]  # (N,)
    image_keys: tuple[str, ...] = ()  # (N,)

    def __post_init__(self) -> None:
        if not self.image_keys:
            object.__setattr__(self, "image_keys", self.ids)
        n = len(self.ids)
        assert self.images.ndim == 4 and self.images.shape[0] == n and self.images.dtype == np.uint8
        assert len(self.captions) == n and len(self.rows) == n and len(self.image_keys) == n

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Pair:
        return Pair(self.ids[i], self.images[i], self.captions[i], self.rows[i], self.image_keys[i])

    @staticmethod
    def concat(chunks: Sequence[PairChunk]) -> PairChunk:
        """One chunk from many (for small datasets and tests; defeats streaming on big ones)."""
        if not chunks:
            raise ValueError("no chunks to concatenate")
        return PairChunk(
            tuple(itertools.chain.from_iterable(c.ids for c in chunks)),
            np.concatenate([c.images for c in chunks]),
            tuple(itertools.chain.from_iterable(c.captions for c in chunks)),
            tuple(itertools.chain.from_iterable(c.rows for c in chunks)),
            tuple(itertools.chain.from_iterable(c.image_keys for c in chunks)),
        )


class PairStream:
    """An opened dataset: iterate once for :class:`PairChunk` s; then read :meth:`summary`.

    The first record is read on opening, so a missing file or column fails at once. When the
    iteration ends the quarantine file (if any) is written atomically; if no pair was valid,
    :class:`EmptyDatasetError` is raised after writing it.
    """

    def __init__(self, path: Path, cfg: IngestCfg = IngestCfg(), quarantine_dir: Path | None = None) -> None:
        self.path, self.cfg = Path(path), cfg
        self.layout = detect_layout(self.path, cfg.format, cfg.root)
        self.format, self.files, self.root = self.layout.format, list(self.layout.files), self.layout.root
        self.accepted = self.rows_read = 0
        self.complete = False
        self._img_cfg = cfg.image_cfg()
        self._seen: set[str] = set()  # accepted ids; ~100 bytes each, so 1M ids ≈ 100 MB
        self._images: set[str] = set()  # accepted image keys
        self._per_image: dict[str, int] = {}  # captions seen per image id, for '<image id>#<k>' ids
        self._last: tuple[str | None, Any] = (None, None)  # the last image decoded (or its error)
        self._pid: str | None = None
        self._started = False
        rows = iter_layout(self.layout, cfg)
        first = next(rows, None)  # fail fast on an unreadable manifest
        self._rows = itertools.chain([first] if first is not None else [], rows)
        qpath = Path(quarantine_dir) / QUARANTINE_FILE if quarantine_dir is not None else None
        self.quarantine = Quarantine(qpath)

    def __iter__(self) -> Iterator[PairChunk]:
        if self._started:
            raise RuntimeError("a PairStream can be iterated only once; open the dataset again")
        self._started = True
        try:
            yield from self._chunks()
        except (IngestError, GeneratorExit):
            self.quarantine.close()  # keep what was found; summary() says the run was incomplete
            raise
        except BaseException:
            self.quarantine.abort()
            raise
        self.complete = True
        self.quarantine.close()
        log.info("ingested %d pair(s) from %s; %s", self.accepted, self.path, self.quarantine.describe(0))
        if self.accepted == 0:
            raise EmptyDatasetError(self.path, None, "no valid image–caption pair; " + self.quarantine.describe())

    def _chunks(self) -> Iterator[PairChunk]:
        pairs: list[Pair] = []
        for raw in self._rows:
            self.rows_read += 1
            try:
                pairs.append(self._accept(raw))
            except PairError as err:
                self.quarantine.add(raw.source, raw.line, self._pid or _safe_id(raw), err.reason, err.message)
                continue
            if len(pairs) == self.cfg.chunk_size:
                yield _chunk(pairs)
                pairs = []
        if pairs:
            yield _chunk(pairs)

    def _accept(self, raw: RawRow) -> Pair:
        self._pid = None
        try:
            pid, key = pair_keys(raw, self._per_image)
        except PairError:
            if raw.error is None:
                raise
            pid = key = None  # the reader's reason is the one to report
        self._pid = pid
        if raw.error is not None:
            raise PairError(*raw.error)
        assert pid is not None and key is not None
        caption = check_caption(raw.caption, self.cfg.max_caption_chars)
        image, ref = self._image(raw)
        if pid in self._seen:
            raise PairError(DUPLICATE_ID, f"id {pid!r} was already used by an earlier row")
        self._seen.add(pid)
        self._images.add(key)
        self.accepted += 1
        return Pair(pid, image, caption, SourceRow(raw.source, raw.line, ref), key)

    def _image(self, raw: RawRow) -> tuple[np.ndarray, ImageRef]:
        """Decode the row's image, once for consecutive rows of one image (list captions, COCO)."""
        key = raw.image_ref.ref if raw.image_ref is not None else raw.image if isinstance(raw.image, str) else None
        if key is not None and key == self._last[0]:
            if isinstance(self._last[1], PairError):
                raise PairError(self._last[1].reason, self._last[1].message)
            return self._last[1]
        try:
            value = self._load(raw)
        except PairError as err:
            self._last = (key, err)
            raise
        self._last = (key, value)
        return value

    def _load(self, raw: RawRow) -> tuple[np.ndarray, ImageRef]:
        if isinstance(raw.image, (bytes, bytearray, memoryview)):
            data, ref = bytes(raw.image), raw.image_ref or ImageRef(raw.source, str(raw.line))
        else:
            if isinstance(raw.image, str):
                refuse_url(raw.image)
            data, path = read_file(self.root, raw.image, self.cfg.max_image_bytes)
            ref = ImageRef(str(path))
        return decode_image(data, self._img_cfg), ref

    def summary(self) -> dict[str, Any]:
        """Counts for the report: rows read, accepted, distinct images, quarantined per reason, the files."""
        return {
            "source": str(self.path),
            "format": self.format,
            "layout": self.layout.name,
            "files": len(self.files),
            "root": str(self.root),
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "images": len(self._images),
            "complete": self.complete,
            "quarantine_file": str(self.quarantine.path) if self.quarantine.path else None,
            **self.quarantine.summary(),
        }

    def thumbnail(self, ref: ImageRef | str, max_side: int = 128) -> np.ndarray:
        """``(h, w, 3)`` uint8 preview of an accepted image, re-read and re-checked, for reports.

        Raises :class:`PairError` if the file changed since ingestion (gone, moved out of the root).
        """
        cfg = self.cfg
        kwargs = {"max_bytes": cfg.max_image_bytes, "max_pixels": cfg.max_image_pixels, "containers": self.files}
        return reread_image(ref, self.root, max_side, **kwargs)


def _chunk(pairs: list[Pair]) -> PairChunk:
    return PairChunk(
        tuple(p.id for p in pairs),
        np.stack([p.image for p in pairs]),
        tuple(p.caption for p in pairs),
        tuple(p.row for p in pairs),
        tuple(p.image_key for p in pairs),
    )


def _safe_id(raw: RawRow) -> str | None:
    try:
        return pair_id(raw)
    except PairError:
        return None if raw.id is None else repr(raw.id)[:200]


def open_pairs(path: Path | str, cfg: IngestCfg = IngestCfg(), quarantine_dir: Path | None = None) -> PairStream:
    """Open a user dataset (a manifest, shard, JSON or folder; see :mod:`.detect_format`) for streaming.

    Raises
    ------
    IngestError
        Missing file, unknown or unparseable format, missing required column (file and line named).
    """
    return PairStream(Path(path), cfg, quarantine_dir)
