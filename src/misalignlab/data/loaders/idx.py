"""Reader and writer for the IDX format of (Fashion-)MNIST, plain or gzip-compressed.

Layout (big-endian): two zero bytes, a type code, the number of dimensions ``n``, then ``n``
uint32 sizes, then the data in C order. A malformed file (bad magic, unknown type code, missing
or extra data) raises :class:`ValueError` naming the file and what was wrong. The writer exists
so tests can build fixtures in the exact real format.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# type code → big-endian dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 8


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        head = fh.read(2)
    return gzip.open(path, "rb") if head == GZIP_MAGIC else open(path, "rb")  # type: ignore[return-value]


def _read_exact(fh: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ValueError(f"{path}: truncated IDX file: {what} needs {n} bytes, found {len(data)}")
    return data


def read_idx_header(fh: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the magic number and sizes; the stream is left at the start of the data."""
    magic = _read_exact(fh, 4, path, "magic number")
    if magic[:2] != b"\x00\x00":
        raise ValueError(f"{path}: bad IDX magic number {magic.hex()} (expected 0000 then type and rank)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; known: {known}")
    if not 1 <= ndim <= MAX_DIMS:
        raise ValueError(f"{path}: IDX rank {ndim} outside 1..{MAX_DIMS}")
    dims = struct.unpack(f">{ndim}I", _read_exact(fh, 4 * ndim, path, "dimension sizes"))
    return IDX_DTYPES[code], tuple(int(d) for d in dims)


def read_idx(path: Path | str) -> np.ndarray:
    """Read a whole IDX file (``.gz`` or plain, detected from the content) into a native-endian array.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Bad magic number, unknown type code, truncated data or trailing bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with _open(path) as fh:
            dtype, dims = read_idx_header(fh, path)
            count = int(np.prod(dims, dtype=np.int64))
            data = _read_exact(fh, count * dtype.itemsize, path, f"data of shape {dims}")
            if fh.read(1):
                raise ValueError(f"{path}: IDX file has trailing bytes after {count} items of shape {dims}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # gzip stream cut short or corrupt
        raise ValueError(f"{path}: corrupt or truncated gzip stream: {err}") from None
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: Path | str, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX; gzip when ``compress`` (default: when the name ends in ``.gz``)."""
    path = Path(path)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"dtype {array.dtype} has no IDX type code; valid: {sorted(map(str, codes))}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    compress = path.name.endswith(".gz") if compress is None else compress
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(header + body)
    return path
