"""The original image files of a dataset, re-read lazily at the size a pretrained backbone wants.

The image store holds every image decoded at one small size (32 px by default): enough for models
trained from scratch, far too little for a pretrained CLIP or SigLIP that was trained at 224 px.
:class:`ImageSource` says where each pair's original lives (its :class:`ImageRef`, the dataset
root, the trusted containers and ingestion's size limits); :meth:`ImageSource.decoded` gives an
array-like (N, S, S, 3) uint8 whose rows are read and decoded from the originals only when indexed,
a batch at a time (as the store's rows are), never the whole dataset at once. Every read passes
the checks of :mod:`.reread` (inside the root, bounded sizes, no network). A file that cannot be
re-read (moved, changed, deleted) falls back to its store image, scaled up, with a warning.

:class:`RefReader` indexes each uncompressed tar shard once and keeps the last parquet row group,
so reading a shard's images one after another does not rescan the shard for each. This module
decides nothing about which size a backbone wants (:class:`ImageInput` carries the answer).
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from misalignlab.data.ingest.columns import image_value
from misalignlab.data.ingest.images import FITS, ImageCfg, decode_image, to_square_array
from misalignlab.data.ingest.quarantine import IMAGE_MISSING, IMAGE_TOO_LARGE, IMAGE_UNREADABLE, PairError
from misalignlab.data.ingest.records import ImageRef
from misalignlab.data.ingest.reread import DEFAULT_MAX_BYTES, container_path, read_ref_bytes
from misalignlab.data.ingest.tables import bytes_column
from misalignlab.data.ingest.tar import TAR_ERRORS

log = logging.getLogger(__name__)
DEFAULT_MAX_PIXELS = 64 * 2**20
NAMED_FAILURES = 3  # failures warned one by one; after that, one warning per thousand


@dataclass(frozen=True)
class ImageInput:
    """The images a backbone wants: the originals decoded to ``size`` × ``size`` with ``fit``
    (``crop``: short side to ``size``, centre crop; ``stretch``: aspect ignored)."""

    size: int
    fit: str = "crop"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"image input size must be >= 1, got {self.size}")
        if self.fit not in FITS:
            raise ValueError(f"unknown image fit {self.fit!r}; valid: {', '.join(FITS)}")


class RefReader:
    """The encoded bytes behind references, checked as :func:`~.reread.read_ref_bytes` checks them."""

    def __init__(self, root: Path, containers: Sequence[Path] = (), max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root, self.containers, self.max_bytes = Path(root).resolve(), tuple(containers), max_bytes
        self._tars: OrderedDict[Path, dict[str, tuple[int, int]]] = OrderedDict()  # the last 16 shards' indexes
        self._group: tuple[Path, str, int, int, Any] | None = None  # (file, column, group, first row, cells)

    def __call__(self, ref: ImageRef) -> bytes:
        path = Path(ref.path).name.lower()
        if ref.member is not None and path.endswith(".tar"):  # seekable: index once, then read in place
            return self._tar(ref)
        if ref.member is not None and path.endswith(".parquet") and ref.member.isdigit() and int(ref.member) >= 1:
            return self._parquet(ref)
        return read_ref_bytes(ref, self.root, self.max_bytes, self.containers)  # files, Arrow (memory-mapped)

    def _tar(self, ref: ImageRef) -> bytes:
        path = container_path(ref, self.root, self.containers)
        if path not in self._tars:
            index: dict[str, tuple[int, int]] = {}
            try:
                with tarfile.open(path, mode="r:") as tf:
                    for info in tf:  # headers only: the data of each member is skipped by seeking
                        index.setdefault(info.name, (info.offset_data if info.isfile() else -1, info.size))
            except TAR_ERRORS as err:
                raise PairError(IMAGE_UNREADABLE, f"cannot re-read {ref.ref}: {err}") from None
            self._tars[path] = index
            if len(self._tars) > 16:
                self._tars.popitem(last=False)
        offset, size = self._tars[path].get(ref.member or "", (None, 0))
        if offset is None:
            raise PairError(IMAGE_MISSING, f"{path} has no member {ref.member!r}")
        if offset < 0:
            raise PairError(IMAGE_UNREADABLE, f"{ref.member!r} in {path} is not a regular file")
        if size > self.max_bytes:
            raise PairError(IMAGE_TOO_LARGE, f"{ref.member!r} in {path} has {size} bytes, limit {self.max_bytes}")
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(size)
        except OSError as err:
            raise PairError(IMAGE_UNREADABLE, f"cannot re-read {ref.ref}: {err}") from None
        if len(data) != size:
            raise PairError(IMAGE_UNREADABLE, f"{ref.ref} is cut short ({len(data)} of {size} bytes)")
        return data

    def _parquet(self, ref: ImageRef) -> bytes:
        path = container_path(ref, self.root, self.containers)
        row = int(ref.member or 0) - 1
        group = self._group
        if group is None or group[0] != path or not group[3] <= row < group[3] + len(group[4]):
            try:
                group = self._read_group(path, ref, row)
            except (OSError, ValueError, LookupError) as err:
                raise PairError(IMAGE_UNREADABLE, f"cannot re-read {ref.ref}: {err}") from None
            self._group = group
        value = image_value(group[4][row - group[3]].as_py())
        if isinstance(value, bytes):
            if len(value) > self.max_bytes:
                raise PairError(IMAGE_TOO_LARGE, f"{ref.ref} has {len(value)} bytes, limit {self.max_bytes}")
            return value
        return read_ref_bytes(ref, self.root, self.max_bytes, self.containers)  # a path cell: the usual checks

    @staticmethod
    def _read_group(path: Path, ref: ImageRef, row: int) -> tuple[Path, str, int, int, Any]:
        pf = pq.ParquetFile(path)
        column = ref.column or bytes_column(pf.schema_arrow, path)
        first = 0
        for group in range(pf.num_row_groups):
            n_rows = pf.metadata.row_group(group).num_rows
            if row < first + n_rows:
                return path, column, group, first, pf.read_row_group(group, columns=[column]).column(0)
            first += n_rows
        raise PairError(IMAGE_MISSING, f"{path} has fewer than {ref.member} rows")


@dataclass(frozen=True, eq=False)
class ImageSource:
    """Where the original image of each of ``N`` pairs can be re-read (see the module docstring)."""

    refs: tuple[ImageRef, ...]  # (N,) in pair order
    root: Path
    containers: tuple[Path, ...] = ()  # manifests and shards trusted even outside the root
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def of_stream(cls, stream: Any, rows: Sequence[Any]) -> ImageSource:
        """The originals of ``rows`` (:class:`SourceRow` s) of an opened ``PairStream``, read as it reads them."""
        cfg = stream.cfg
        files = tuple(Path(f) for f in stream.files)
        return cls(tuple(r.image for r in rows), Path(stream.root), files, cfg.max_image_bytes, cfg.max_image_pixels)

    def __len__(self) -> int:
        return len(self.refs)

    def digest(self) -> str:
        """Hash of the root and every reference (hex): part of an embedding cache key."""
        h = hashlib.blake2b(digest_size=12)
        h.update(str(Path(self.root).resolve()).encode("utf-8", "surrogatepass") + b"\0")
        for ref in self.refs:
            h.update(f"{ref.ref}\0{ref.column or ''}\1".encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def decoded(self, want: ImageInput, fallback: Any) -> OriginalImages:
        """The originals at ``want``, lazily; ``fallback`` (N, S, S, 3) uint8 stands in for unreadable files."""
        if len(fallback) != len(self.refs):
            raise ValueError(f"{len(self.refs)} image references for {len(fallback)} stored images")
        return OriginalImages(self, want, fallback)


class OriginalImages:
    """(N, S, S, 3) uint8, row ``i`` decoded from pair ``i``'s original when indexed (``S`` = ``want.size``)."""

    def __init__(self, source: ImageSource, want: ImageInput, fallback: Any) -> None:
        self.source, self.want, self.fallback = source, want, fallback
        self._cfg = ImageCfg(want.size, want.fit, source.max_bytes, source.max_pixels)
        self._read = RefReader(source.root, source.containers, source.max_bytes)
        self.failed = 0  # rows that fell back to the store so far

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.source), self.want.size, self.want.size, 3)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: Any) -> np.ndarray:
        """Rows at ``idx`` (an int, a slice or an index array), decoded now: (S, S, 3) or (n, S, S, 3)."""
        rows = np.arange(len(self))[idx]
        if np.ndim(rows) == 0:
            return self._row(int(rows))
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        for j, i in enumerate(rows):
            out[j] = self._row(int(i))
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("OriginalImages are read in batches; index them (images[i:j]) instead of converting whole")

    def _row(self, i: int) -> np.ndarray:
        ref = self.source.refs[i]
        try:
            return decode_image(self._read(ref), self._cfg)
        except PairError as err:
            self.failed += 1
            if self.failed <= NAMED_FAILURES:
                log.warning("cannot re-read the original %s (%s); using its stored image instead", ref.ref, err)
            elif self.failed % 1000 == 0:
                log.warning("%d originals could not be re-read so far; their stored images stand in", self.failed)
        stored = np.ascontiguousarray(self.fallback[i])  # (s, s, 3) uint8
        return to_square_array(Image.fromarray(stored), self.want.size, self.want.fit)
