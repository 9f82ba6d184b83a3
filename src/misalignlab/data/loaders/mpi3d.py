"""MPI3D-Complex (paper §7): lazily read real photographs, factors from the index, biased captions.

The released file ``real3d_complicated_shapes_ordered.npz`` holds one array under the key
``images``: 460,800 × 64 × 64 × 3 uint8 in factor order [4, 4, 2, 3, 3, 40, 40] (colour, shape,
size, camera height, background, horizontal axis, vertical axis), last factor fastest. Factor
values are computed from the index, never stored. The 5.3 GB array is never loaded whole: an
uncompressed ``.npz`` member (``np.savez``) or a ``.npy`` file is memory-mapped; a compressed one
can only be read whole (``allow_full_load=True``) or converted once with :func:`extract_npz_member`.

Captions follow the paper's selection / perturbation settings 1–5. They are deterministic per
``(seed, index)`` (the authors' code used an unseeded RNG), whatever order indices are asked in.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from misalignlab.data.loaders.mpi3d_captions import (
    MPI3D_WORDS,
    SEMANTIC_FACTORS,
    CaptionSetting,
    MPI3DCaptions,
    make_captions,
)

log = logging.getLogger(__name__)

MPI3D_FILE = "real3d_complicated_shapes_ordered.npz"
MPI3D_KEY = "images"
MPI3D_FACTORS: tuple[str, ...] = ("colour", "shape", "size", "camera", "background", "horizontal", "vertical")
MPI3D_SIZES: tuple[int, ...] = (4, 4, 2, 3, 3, 40, 40)
MPI3D_IMAGE_SHAPE: tuple[int, int, int] = (64, 64, 3)


def factors_of(index: np.ndarray | Sequence[int] | int, sizes: Sequence[int] = MPI3D_SIZES) -> np.ndarray:
    """Factor values ``(N, len(sizes))`` of flat indices (row-major: the last factor varies fastest)."""
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
    total = int(np.prod(sizes))
    if idx.size and (idx.min() < 0 or idx.max() >= total):
        raise ValueError(f"index out of range 0..{total - 1} for factor sizes {tuple(sizes)}")
    return np.stack(np.unravel_index(idx, tuple(sizes)), axis=1).astype(np.int64)


def index_of(factors: np.ndarray | Sequence[Sequence[int]], sizes: Sequence[int] = MPI3D_SIZES) -> np.ndarray:
    """Inverse of :func:`factors_of`: ``(N, F)`` factor values → ``(N,)`` flat indices."""
    f = np.atleast_2d(np.asarray(factors, dtype=np.int64))
    if f.shape[1] != len(sizes):
        raise ValueError(f"expected {len(sizes)} factor columns, got {f.shape[1]}")
    return np.ravel_multi_index(tuple(f.T), tuple(sizes)).astype(np.int64)


def _npy_header(fh: object, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from a ``.npy`` header (never unpickles anything)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, fortran, dtype = readers[version](fh)
    except ValueError as err:
        raise ValueError(f"{where}: not a readable .npy array: {err}") from None
    if dtype.hasobject:
        raise ValueError(f"{where}: array holds Python objects (pickles); refusing to load it")
    return tuple(shape), bool(fortran), dtype


def _memmap_member(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map an uncompressed ``.npy`` member at its offset inside the zip file."""
    where = f"{path}[{info.filename}]"
    if not 0 <= info.header_offset < path.stat().st_size:
        raise ValueError(f"{where}: corrupt or truncated zip (member offset {info.header_offset})")
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # zip local file header: fixed 30 bytes, then name and extra field
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{where}: corrupt zip local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        fh.seek(start)
        shape, fortran, dtype = _npy_header(fh, where)
        offset = fh.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + nbytes != info.file_size or offset + nbytes > path.stat().st_size:
        raise ValueError(f"{where}: truncated: header promises {nbytes} bytes of {dtype} {shape}")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def open_npz_array(path: Path | str, key: str = MPI3D_KEY, allow_full_load: bool = False) -> np.ndarray:
    """Array ``key`` of an ``.npz`` (memory-mapped when stored uncompressed) or of a ``.npy`` file.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not a zip/npy file, no member ``key``, pickled objects, truncated data, or a compressed
        member without ``allow_full_load``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPI3D file not found: {path} (expected {MPI3D_FILE} with array {key!r})")
    if path.suffix == ".npy":
        with open(path, "rb") as fh:
            _npy_header(fh, str(path))  # refuses object arrays before numpy sees them
        return np.load(path, mmap_mode="r", allow_pickle=False)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path}: not a readable .npz (zip) file: {err}") from None
    with zf:
        names = zf.namelist()
        member = f"{key}.npy"
        if member not in names:
            found = [n.removesuffix(".npy") for n in names]
            raise ValueError(f"{path}: no array {key!r} in the archive; found: {found}")
        info = zf.getinfo(member)
        if info.compress_type == zipfile.ZIP_STORED:
            return _memmap_member(path, info)
        if not allow_full_load:
            raise ValueError(
                f"{path}: array {key!r} is compressed, so it cannot be memory-mapped and would be read whole "
                f"({info.file_size / 2**30:.1f} GiB). Convert it once with extract_npz_member({str(path)!r}, "
                f"{key!r}, 'images.npy') and open the .npy, or pass allow_full_load=True."
            )
        log.warning("%s: %r is compressed; reading all %.1f GiB into memory", path, key, info.file_size / 2**30)
        with zf.open(info) as fh:
            _npy_header(fh, f"{path}[{member}]")
        with zf.open(info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)


def extract_npz_member(src: Path | str, key: str, dst: Path | str) -> Path:
    """Stream-decompress member ``key`` of ``src`` to the ``.npy`` file ``dst`` (atomic), for memory-mapping."""
    src, dst = Path(src), Path(dst)
    with zipfile.ZipFile(src) as zf:
        try:
            info = zf.getinfo(f"{key}.npy")
        except KeyError:
            raise ValueError(f"{src}: no array {key!r}; found: {zf.namelist()}") from None
        with zf.open(info) as fh:
            _npy_header(fh, f"{src}[{info.filename}]")
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
        try:
            with zf.open(info) as fin, os.fdopen(fd, "wb") as fout:
                shutil.copyfileobj(fin, fout, length=16 * 2**20)
            os.replace(tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return dst


class MPI3DComplex:
    """MPI3D-Complex opened from a local file; images are read only when asked for.

    ``factor_sizes`` and ``image_shape`` default to the real dataset; tests pass small ones to
    build fixtures with the same key and layout.
    """

    factor_names: tuple[str, ...] = MPI3D_FACTORS

    def __init__(
        self,
        path: Path | str,
        factor_sizes: Sequence[int] = MPI3D_SIZES,
        image_shape: Sequence[int] = MPI3D_IMAGE_SHAPE,
        key: str = MPI3D_KEY,
        allow_full_load: bool = False,
    ) -> None:
        self.path = Path(path)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        if len(self.factor_sizes) != len(MPI3D_FACTORS) or min(self.factor_sizes) < 1:
            raise ValueError(
                f"need {len(MPI3D_FACTORS)} positive factor sizes {MPI3D_FACTORS}, got {self.factor_sizes}"
            )
        too_many = [f for f, s in zip(SEMANTIC_FACTORS, self.factor_sizes) if s > len(MPI3D_WORDS[f])]
        if too_many:
            raise ValueError(f"factor sizes {self.factor_sizes} exceed the caption words for {too_many}")
        self.image_shape = tuple(int(s) for s in image_shape)
        arr = open_npz_array(self.path, key, allow_full_load)
        n = int(np.prod(self.factor_sizes))
        flat, factored = (n, *self.image_shape), (*self.factor_sizes, *self.image_shape)
        if arr.dtype != np.uint8 or arr.shape not in (flat, factored):
            raise ValueError(
                f"{self.path}: array {key!r} is {arr.dtype} {arr.shape}; expected uint8 {flat} "
                f"(or {factored}) for factor sizes {self.factor_sizes}"
            )
        self._images = arr.reshape(flat)  # (N, H, W, C); a view, nothing read yet

    def __len__(self) -> int:
        return self._images.shape[0]

    def factors(self, indices: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """``(N, 7)`` factor values, in the order of :data:`MPI3D_FACTORS`."""
        return factors_of(indices, self.factor_sizes)

    def images(self, indices: np.ndarray | Sequence[int] | int) -> np.ndarray:
        """``(N, H, W, 3)`` uint8, read from disk now (sorted reads, returned in the asked order)."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"MPI3D index out of range 0..{len(self) - 1}")
        order = np.argsort(idx, kind="stable")
        out = np.empty((idx.size, *self.image_shape), dtype=np.uint8)
        out[order] = self._images[idx[order]]
        return out

    def captions(
        self, indices: np.ndarray | Sequence[int] | int, setting: CaptionSetting, seed: int = 0
    ) -> MPI3DCaptions:
        """Captions of ``indices`` under ``setting`` (see :func:`mpi3d_setting`)."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        return make_captions(self.factors(idx)[:, :5], idx, setting, seed, self.factor_sizes[:5])
