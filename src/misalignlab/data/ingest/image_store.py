"""A disk-backed store of decoded images, so ingesting a million pairs never holds them in memory.

:func:`store_pairs` drains a :class:`~misalignlab.data.ingest.stream.PairStream` chunk by chunk: each
chunk's decoded images are appended to a ``.npy`` file in the run's cache folder and dropped, so
peak memory grows with ``chunk_size``, not with the number of pairs. Only ids, captions, image
keys and source rows (a few hundred bytes per pair) are kept as lists. The images come back as a
read-only-on-disk ``numpy.memmap`` (N, S, S, 3) uint8 that every consumer already indexes in
slices or small gathers (training batches, embedding, the gallery, :func:`update_hash`).

The file is content-addressed: ``images-<key>.npy`` where ``key`` hashes ids, captions and image
bytes. It is written under a temp name and renamed when complete, so a killed run never leaves a
half store that a later run could take for a whole one; a second run on the same data finds the
same name and keeps the existing file (decoding is redone: ingestion also re-checks every row and
rewrites the quarantine) once :func:`store_damage` has read it back: a truncated, emptied or
overwritten store is named in a warning and replaced by the fresh one. Older stores in the folder
(other data) are removed: they are large.

This module does not decode or validate anything (``ingest`` does) and holds no model code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from misalignlab.cache_files import READ_ERRORS, discard

if TYPE_CHECKING:
    from misalignlab.data.ingest.stream import PairChunk, SourceRow

__all__ = [
    "HEADER_BYTES",
    "StoredPairs",
    "open_store",
    "store_damage",
    "store_pairs",
    "update_hash",
    "update_text_hash",
]

log = logging.getLogger(__name__)
STORE_FORMAT = b"misalignlab.data.ingest.image_store/1"
# A fixed-size .npy header, reserved before the pair count is known and filled in at the end; 128
# bytes hold the shape of any dataset and keep the data 64-byte aligned, as numpy's own writer does.
HEADER_BYTES = 128
HASH_ROWS = 1024


def update_hash(h: Any, images: np.ndarray, rows: int = HASH_ROWS) -> None:
    """Feed ``images``' C-order bytes to hash ``h`` ``rows`` images at a time.

    The digest equals one ``h.update`` of the whole array (the hash is streamed), but a memmap is
    read a slice at a time instead of being copied whole when it is not contiguous.
    """
    for start in range(0, len(images), rows):
        h.update(np.ascontiguousarray(images[start : start + rows]).data)


def update_text_hash(h: Any, ids: Iterable[str], captions: Iterable[str]) -> None:
    """Feed every (id, caption) to hash ``h`` as ``id \\0 caption \\1`` (UTF-8, lone surrogates kept).

    The one encoding of pair texts behind every key that identifies a dataset (the image store,
    the embedding cache, the pilot's fingerprint), so equal pairs always give equal keys.
    """
    for pid, cap in zip(ids, captions, strict=True):
        h.update(pid.encode("utf-8", "surrogatepass") + b"\0" + cap.encode("utf-8", "surrogatepass") + b"\1")


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header for uint8 C-order data of ``shape``, exactly ``HEADER_BYTES`` long."""
    body = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape!r}, }}"
    room = HEADER_BYTES - 10  # magic (6) + version (2) + header length (2)
    if len(body) + 1 > room:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    text = (body.ljust(room - 1) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def open_store(path: Path) -> np.ndarray:
    """The stored images as a memmap (N, S, S, 3) uint8.

    Opened copy-on-write: consumers that want a writable array (``torch.from_numpy`` warns on
    read-only ones) get one, and a stray in-place write stays private, never reaching the file.
    """
    images = np.load(Path(path), mmap_mode="c", allow_pickle=False)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path}: not an image store (got {images.dtype} {images.shape})")
    return images


@dataclass(frozen=True, eq=False)
class StoredPairs:
    """Valid pairs of a dataset with their images on disk, aligned by position."""

    ids: tuple[str, ...]  # (N,)
    images: np.ndarray  # (N, S, S, 3) uint8 memmap
    captions: tuple[str, ...]  # (N,)
    rows: tuple[SourceRow, ...]  # (N,)
    path: Path
    reused: bool  # an identical store was already there
    image_keys: tuple[str, ...]  # (N,) pairs sharing a key are captions of one image

    def __len__(self) -> int:
        return len(self.ids)


def store_pairs(
    chunks: Iterable[PairChunk], folder: Path, on_chunk: Callable[[int], None] | None = None
) -> StoredPairs:
    """Drain ``chunks`` (an opened :class:`~misalignlab.data.ingest.stream.PairStream`) into ``folder``.

    Parameters
    ----------
    chunks
        The stream; fully consumed, so its quarantine and ``summary()`` are final afterwards.
    folder : Path
        The run's cache folder; gets ``images-<key>.npy``.
    on_chunk : callable, optional
        ``on_chunk(pairs_so_far)`` after every chunk (a progress hook).

    Raises whatever the stream raises (e.g. ``EmptyDatasetError``); the temp file is removed then.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    captions: list[str] = []
    rows: list[SourceRow] = []
    keys: list[str] = []
    # texts and pixels hashed apart, so the key does not depend on where chunks happen to end
    text_hash, pixel_hash = hashlib.blake2b(STORE_FORMAT), hashlib.blake2b(STORE_FORMAT)
    shape: tuple[int, ...] | None = None
    # a unique temp name per process: torchrun ranks ingest the same data into the same folder
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".images-", suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\0" * HEADER_BYTES)  # placeholder until the pair count is known
            for chunk in chunks:
                images = np.ascontiguousarray(chunk.images)  # (n, S, S, 3) uint8, already contiguous
                if shape is not None and images.shape[1:] != shape:
                    raise ValueError(f"image shape changed mid-stream: {images.shape[1:]} after {shape}")
                shape = images.shape[1:]
                update_text_hash(text_hash, chunk.ids, chunk.captions)
                pixel_hash.update(images.data)
                fh.write(images.data)
                ids += chunk.ids
                captions += chunk.captions
                rows += chunk.rows
                keys += chunk.image_keys
                if on_chunk is not None:
                    on_chunk(len(ids))
            if shape is None:
                raise ValueError("the stream yielded no pairs")  # a PairStream raises EmptyDatasetError first
            fh.seek(0)
            fh.write(_npy_header((len(ids), *shape)))
            fh.flush()
            os.fsync(fh.fileno())
        key = hashlib.blake2b(repr((len(ids), *shape)).encode(), digest_size=8)
        key.update(text_hash.digest() + pixel_hash.digest())
        path = folder / f"images-{key.hexdigest()}.npy"
        damage = store_damage(path, (len(ids), *shape), pixel_hash.digest()) if path.is_file() else "missing"
        if damage not in ("", "missing"):
            discard(path, damage, "image store")  # os.replace below puts the fresh store in its place
        reused = not damage
        if reused:
            Path(tmp).unlink()
        else:
            os.replace(tmp, path)  # complete: only now does the store get its real name
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale(folder, keep=path)
    log.info("%s %d decoded image(s) in %s", "reused" if reused else "stored", len(ids), path)
    return StoredPairs(tuple(ids), open_store(path), tuple(captions), tuple(rows), path, reused, tuple(keys))


def store_damage(path: Path, shape: tuple[int, ...], pixel_digest: bytes) -> str:
    """Why the store at ``path`` is not the one with ``shape`` and pixel digest ``pixel_digest``, or ``""``.

    The name only promises the contents; this reads them: the header, the exact file length and the
    pixels' hash (the pixel half of the key), so truncation, an emptied file or overwritten bytes
    anywhere are found, not taken for a whole store.
    """
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except READ_ERRORS as err:
        return f"{type(err).__name__}: {err}"
    if images.dtype != np.uint8 or images.shape != shape:
        return f"holds {images.dtype} {images.shape}, expected uint8 {shape}"
    if path.stat().st_size != images.offset + images.nbytes:
        return f"{path.stat().st_size} bytes, expected {images.offset + images.nbytes}"
    h = hashlib.blake2b(STORE_FORMAT)
    update_hash(h, images)
    return "" if h.digest() == pixel_digest else "pixels do not match the key"


def _remove_stale(folder: Path, keep: Path) -> None:
    """Delete stores of other data in ``folder`` (each is N·S·S·3 bytes); temp files of running writers stay."""
    for old in folder.glob("images-*.npy"):
        if old != keep:
            log.info("removing the image store of other data: %s", old)
            old.unlink(missing_ok=True)
