"""Re-read one accepted image from its reference, with ingestion's safety checks (report thumbnails).

A reference is an :class:`~misalignlab.data.ingest.records.ImageRef` or its string (``/a/b.jpg``,
``shard.tar::member``, ``file.parquet::row``, ``file.arrow::row``). Files and containers must lie
inside the root (containers may also be named as trusted: the manifests a stream was opened on),
sizes and pixel counts are bounded as during ingestion, and nothing is fetched from a network.
Failures raise :class:`~misalignlab.data.ingest.quarantine.PairError` (the file changed, moved or
left the root since ingestion). This module does not pick which pairs get thumbnails.
"""

from __future__ import annotations

import tarfile
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from misalignlab.data.ingest.arrow import open_arrow, record_batches
from misalignlab.data.ingest.columns import image_value
from misalignlab.data.ingest.images import ImageCfg, thumbnail_array
from misalignlab.data.ingest.quarantine import IMAGE_MISSING, IMAGE_TOO_LARGE, IMAGE_UNREADABLE, PATH_INVALID, PairError
from misalignlab.data.ingest.records import TAR_SUFFIXES, ImageRef, IngestError
from misalignlab.data.ingest.tables import bytes_column
from misalignlab.data.ingest.tar import TAR_ERRORS
from misalignlab.data.ingest.validate import read_file, refuse_url, resolve_inside

DEFAULT_MAX_BYTES = 64 * 2**20


def reread_image(
    ref: ImageRef | str,
    root: Path | str,
    max_side: int = 256,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = 64 * 2**20,
    containers: Collection[Path | str] = (),
) -> np.ndarray:
    """``(h, w, 3)`` uint8 image with ``max(h, w) <= max_side`` (aspect kept) re-read from ``ref``.

    Parameters
    ----------
    ref : ImageRef or str
        Where the image lives (see the module docstring).
    root : Path or str
        The dataset root; files and containers outside it are refused (``path_outside_root``).
    max_side : int
        Longest side of the returned image, in pixels.
    max_bytes, max_pixels : int
        The ingestion limits (``image_too_large`` beyond them).
    containers : collection of paths
        Containers trusted even outside ``root`` (the manifests the dataset was opened from).
    """
    data = read_ref_bytes(ref, root, max_bytes, containers=containers)
    return thumbnail_array(data, max_side, ImageCfg(max_side, "crop", max_bytes, max_pixels))


def read_ref_bytes(
    ref: ImageRef | str, root: Path | str, max_bytes: int = DEFAULT_MAX_BYTES, containers: Collection[Path | str] = ()
) -> bytes:
    """The encoded bytes behind ``ref``, checked as in :func:`reread_image`."""
    ref = ImageRef.parse(ref) if isinstance(ref, str) else ref
    root = Path(root).resolve()
    if ref.member is None:
        refuse_url(ref.path)
        return read_file(root, ref.path, max_bytes)[0]
    path = container_path(ref, root, containers)
    try:
        if path.name.lower().endswith(TAR_SUFFIXES):
            return _tar_member(path, ref.member, max_bytes)
        value = _table_cell(path, ref)
    except (pa.ArrowException, OSError, ValueError, LookupError, IngestError) as err:
        raise PairError(IMAGE_UNREADABLE, f"cannot re-read {ref.ref}: {err}") from None
    if isinstance(value, bytes):
        if len(value) > max_bytes:
            raise PairError(IMAGE_TOO_LARGE, f"{ref.ref} has {len(value)} bytes, limit {max_bytes}")
        return value
    if isinstance(value, str):  # a path cell: the same checks as any image path
        refuse_url(value)
        return read_file(root, value, max_bytes)[0]
    raise PairError(IMAGE_MISSING, f"{ref.ref} holds no image")


def container_path(ref: ImageRef, root: Path, containers: Collection[Path | str] = ()) -> Path:
    """The resolved container of ``ref`` (a tar shard, parquet or Arrow file): a trusted one or one inside ``root``."""
    path = Path(ref.path).resolve()
    if path not in {Path(c).resolve() for c in containers}:
        path = resolve_inside(Path(root).resolve(), ref.path)
    return path


def _tar_member(path: Path, member: str, max_bytes: int) -> bytes:
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for info in tf:
                if info.name != member:
                    continue
                if not info.isfile():
                    raise PairError(IMAGE_UNREADABLE, f"{member!r} in {path} is not a regular file")
                if info.size > max_bytes:
                    raise PairError(IMAGE_TOO_LARGE, f"{member!r} in {path} has {info.size} bytes, limit {max_bytes}")
                fh = tf.extractfile(info)
                assert fh is not None  # a regular file always has a reader
                return fh.read()
    except TAR_ERRORS as err:
        raise PairError(IMAGE_UNREADABLE, f"cannot re-read {member!r} from {path}: {err}") from None
    raise PairError(IMAGE_MISSING, f"{path} has no member {member!r}")


def _table_cell(path: Path, ref: ImageRef) -> object:
    """The image cell of 1-based row ``ref.member`` in a parquet or Arrow file."""
    if not ref.member or not ref.member.isdigit() or int(ref.member) < 1:
        raise PairError(PATH_INVALID, f"{ref.ref}: {ref.member!r} is not a row number")
    row = int(ref.member) - 1
    if path.suffix.lower() == ".parquet":
        pf = pq.ParquetFile(path)
        column = ref.column or bytes_column(pf.schema_arrow, path)
        for group in range(pf.num_row_groups):
            n_rows = pf.metadata.row_group(group).num_rows
            if row < n_rows:
                return image_value(pf.read_row_group(group, columns=[column]).column(0)[row].as_py())
            row -= n_rows
    else:
        reader = open_arrow(path)
        column = ref.column or bytes_column(reader.schema, path)
        for batch in record_batches(reader):
            if row < batch.num_rows:
                return image_value(batch.column(batch.schema.get_field_index(column))[row].as_py())
            row -= batch.num_rows
    raise PairError(IMAGE_MISSING, f"{path} has fewer than {ref.member} rows")
