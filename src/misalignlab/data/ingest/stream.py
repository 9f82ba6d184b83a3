"""Ingest a user's image–caption dataset for ``diagnose``: streamed, validated, quarantined.

Sources: a manifest (CSV, JSONL or parquet) naming image files under a dataset root, or
webdataset tar shards (``KEY.jpg|png`` + ``KEY.txt``). Pairs come out as :class:`PairChunk` s of
``chunk_size``, so a million pairs never sit in memory at once. Every bad row is quarantined with
its file, line and reason (see :mod:`misalignlab.data.ingest.quarantine`) and the run goes on; only an
unreadable manifest or a dataset without a single valid pair raises :class:`IngestError`.

Untrusted input: image paths are resolved (symlinks, ``..``) and refused outside the root, files
are size-checked before reading, images are verified and fully decoded, captions must be UTF-8
text. This module does not escape captions for HTML; the report does.

Example
-------
>>> stream = open_pairs(Path("my_data/manifest.csv"), IngestCfg(image_size=64), quarantine_dir=Path("runs/x"))
>>> for chunk in stream:            # PairChunk: ids, images (N, 64, 64, 3) uint8, captions, rows
...     ...
>>> stream.summary()["quarantined"]
"""

from __future__ import annotations

import itertools
import logging
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.data.ingest.images import ImageCfg, decode_image, thumbnail_array
from misalignlab.data.ingest.manifests import (
    MANIFEST_EXTS,
    Columns,
    IngestError,
    RawRow,
    iter_csv,
    iter_jsonl,
    iter_parquet,
    iter_tar,
)
from misalignlab.data.ingest.quarantine import DUPLICATE_ID, IMAGE_MISSING, IMAGE_UNREADABLE, PairError, Quarantine
from misalignlab.data.ingest.validate import check_caption, pair_id, read_file, resolve_inside

__all__ = [
    "EmptyDatasetError",
    "ImageRef",
    "IngestCfg",
    "IngestError",
    "Pair",
    "PairChunk",
    "PairStream",
    "SourceRow",
    "check_caption",
    "open_pairs",
    "resolve_inside",
]

log = logging.getLogger(__name__)
FORMATS = ("csv", "jsonl", "parquet", "tar")
QUARANTINE_FILE = "quarantine.jsonl"


class EmptyDatasetError(IngestError):
    """The whole source was read but not one pair was valid."""


@dataclass(frozen=True)
class IngestCfg:
    """How a user dataset is read. Column names apply to manifests; tar shards use KEY.ext members."""

    image_column: str = "image"
    caption_column: str = "caption"
    id_column: str | None = "id"  # absent column or null value → the 1-based record number
    format: str | None = None  # csv | jsonl | parquet | tar; None: from the file name
    root: str | None = None  # image paths resolve under this folder; None: the manifest's folder
    chunk_size: int = 1024
    image_size: int = 64
    fit: str = "crop"  # crop | stretch
    max_image_bytes: int = 64 * 2**20
    max_image_pixels: int = 64 * 2**20
    max_caption_chars: int = 4096
    caption_ext: str = "txt"

    def check(self) -> IngestCfg:
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"unknown dataset format {self.format!r}; valid: {', '.join(FORMATS)}")
        if self.chunk_size < 1 or self.max_caption_chars < 1:
            raise ValueError(f"chunk_size and max_caption_chars must be positive, got {self}")
        self.image_cfg().check()
        return self

    def image_cfg(self) -> ImageCfg:
        return ImageCfg(self.image_size, self.fit, self.max_image_bytes, self.max_image_pixels)


@dataclass(frozen=True)
class ImageRef:
    """Where an accepted image lives: a resolved file, or a member of a tar shard."""

    path: str
    member: str | None = None


@dataclass(frozen=True)
class SourceRow:
    """The manifest (or shard) and 1-based line a pair came from, and its image."""

    source: str
    line: int
    image: ImageRef


@dataclass(frozen=True)
class Pair:
    id: str
    image: np.ndarray  # (S, S, 3) uint8
    caption: str
    row: SourceRow


@dataclass(frozen=True)
class PairChunk:
    """A batch of valid pairs, aligned by position."""

    ids: tuple[str, ...]  # (N,)
    images: np.ndarray  # (N, S, S, 3) uint8
    captions: tuple[str, ...]  # (N,)
    rows: tuple[SourceRow, ...]  # (N,)

    def __post_init__(self) -> None:
        n = len(self.ids)
        assert self.images.ndim == 4 and self.images.shape[0] == n and self.images.dtype == np.uint8
        assert len(self.captions) == n and len(self.rows) == n

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Pair:
        return Pair(self.ids[i], self.images[i], self.captions[i], self.rows[i])

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
        )


def _find_sources(path: Path, fmt: str | None) -> tuple[str, list[Path]]:
    """(format, files) for a manifest file, a tar shard, or a folder holding one of them."""
    if not path.exists():
        raise IngestError(path, None, "no such file or folder")
    if path.is_file():
        found = fmt or MANIFEST_EXTS.get(path.suffix.lower())
        if found is None:
            raise IngestError(
                path,
                None,
                f"unknown manifest type {path.suffix!r}; use one of "
                f"{', '.join(MANIFEST_EXTS)} or set format ({', '.join(FORMATS)})",
            )
        return found, [path]
    candidates = sorted(p for p in path.iterdir() if p.is_file() and MANIFEST_EXTS.get(p.suffix.lower()))
    if fmt is not None:
        candidates = [p for p in candidates if MANIFEST_EXTS[p.suffix.lower()] == fmt]
    shards = [p for p in candidates if p.suffix.lower() == ".tar"]
    manifests = [p for p in candidates if p.suffix.lower() != ".tar"]
    if shards and not manifests:
        return "tar", shards
    if len(manifests) == 1 and not shards:
        return MANIFEST_EXTS[manifests[0].suffix.lower()], manifests
    if not candidates:
        raise IngestError(path, None, f"no manifest ({', '.join(MANIFEST_EXTS)}) found in this folder")
    names = ", ".join(p.name for p in candidates)
    raise IngestError(path, None, f"several possible manifests ({names}); pass the file to use or set format")


class PairStream:
    """An opened dataset: iterate once for :class:`PairChunk` s; then read :meth:`summary`.

    The first record is read on opening, so a missing file or column fails at once. When the
    iteration ends the quarantine file (if any) is written atomically; if no pair was valid,
    :class:`EmptyDatasetError` is raised after writing it.
    """

    def __init__(self, path: Path, cfg: IngestCfg = IngestCfg(), quarantine_dir: Path | None = None) -> None:
        self.path, self.cfg = Path(path), cfg.check()
        self.format, self.files = _find_sources(self.path, cfg.format)
        default_root = self.path if self.path.is_dir() else self.path.parent
        self.root = Path(cfg.root if cfg.root is not None else default_root).resolve()
        self.accepted = self.rows_read = 0
        self.complete = False
        self._img_cfg = cfg.image_cfg()
        self._seen: set[str] = set()  # accepted ids; ~100 bytes each, so 1M ids ≈ 100 MB
        self._started = False
        rows = self._raw_rows()
        first = next(rows, None)  # fail fast on an unreadable manifest
        self._rows = itertools.chain([first] if first is not None else [], rows)
        qpath = Path(quarantine_dir) / QUARANTINE_FILE if quarantine_dir is not None else None
        self.quarantine = Quarantine(qpath)

    def _raw_rows(self) -> Iterator[RawRow]:
        cols = Columns(self.cfg.image_column, self.cfg.caption_column, self.cfg.id_column)
        for file in self.files:
            log.info("reading %s (%s)", file, self.format)
            if self.format == "csv":
                yield from iter_csv(file, cols)
            elif self.format == "jsonl":
                yield from iter_jsonl(file, cols)
            elif self.format == "parquet":
                yield from iter_parquet(file, cols, batch_size=self.cfg.chunk_size)
            else:
                yield from iter_tar(file, self.cfg.caption_ext, self.cfg.max_image_bytes)

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
        ids: list[str] = []
        images: list[np.ndarray] = []
        captions: list[str] = []
        rows: list[SourceRow] = []
        for raw in self._rows:
            self.rows_read += 1
            try:
                pair = self._accept(raw)
            except PairError as err:
                self.quarantine.add(raw.source, raw.line, _safe_id(raw), err.reason, err.message)
                continue
            ids.append(pair.id)
            images.append(pair.image)
            captions.append(pair.caption)
            rows.append(pair.row)
            if len(ids) == self.cfg.chunk_size:
                yield PairChunk(tuple(ids), np.stack(images), tuple(captions), tuple(rows))
                ids, images, captions, rows = [], [], [], []
        if ids:
            yield PairChunk(tuple(ids), np.stack(images), tuple(captions), tuple(rows))

    def _accept(self, raw: RawRow) -> Pair:
        if raw.error is not None:
            raise PairError(*raw.error)
        pid = pair_id(raw)
        caption = check_caption(raw.caption, self.cfg.max_caption_chars)
        if self.format == "tar":
            if raw.image is None:
                raise PairError(IMAGE_MISSING, f"tar sample {pid!r} has no regular image member")
            data, ref = raw.image, ImageRef(raw.source, raw.member)
        else:
            data, path = read_file(self.root, raw.image, self.cfg.max_image_bytes)
            ref = ImageRef(str(path))
        image = decode_image(data, self._img_cfg)
        if pid in self._seen:
            raise PairError(DUPLICATE_ID, f"id {pid!r} was already used by an earlier row")
        self._seen.add(pid)
        self.accepted += 1
        return Pair(pid, image, caption, SourceRow(raw.source, raw.line, ref))

    def summary(self) -> dict[str, Any]:
        """Counts for the report: rows read, accepted, quarantined per reason, and the files involved."""
        return {
            "source": str(self.path),
            "format": self.format,
            "files": len(self.files),
            "root": str(self.root),
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "complete": self.complete,
            "quarantine_file": str(self.quarantine.path) if self.quarantine.path else None,
            **self.quarantine.summary(),
        }

    def thumbnail(self, ref: ImageRef, max_side: int = 128) -> np.ndarray:
        """``(h, w, 3)`` uint8 preview of an accepted image, re-read and re-checked, for reports.

        Raises :class:`PairError` if the file changed since ingestion (gone, moved out of the root).
        """
        if ref.member is None:
            data, _ = read_file(self.root, ref.path, self.cfg.max_image_bytes)
        else:
            try:
                with tarfile.open(ref.path, mode="r:*") as tf:
                    fh = tf.extractfile(tf.getmember(ref.member))
                    if fh is None:
                        raise PairError(IMAGE_UNREADABLE, f"{ref.member!r} in {ref.path} is not a regular file")
                    data = fh.read(self.cfg.max_image_bytes + 1)
            except (KeyError, OSError, tarfile.TarError) as err:
                raise PairError(IMAGE_UNREADABLE, f"cannot re-read {ref.member!r} from {ref.path}: {err}") from None
        return thumbnail_array(data, max_side, self._img_cfg)


def _safe_id(raw: RawRow) -> str | None:
    try:
        return pair_id(raw)
    except PairError:
        return None if raw.id is None else repr(raw.id)[:200]


def open_pairs(path: Path | str, cfg: IngestCfg = IngestCfg(), quarantine_dir: Path | None = None) -> PairStream:
    """Open a user dataset (manifest file, tar shard, or a folder holding either) for streaming.

    Raises
    ------
    IngestError
        Missing file, unknown or unparseable format, missing required column (file and line named).
    """
    return PairStream(Path(path), cfg, quarantine_dir)
