"""Self-checking cache files: a damaged one is named in a warning, removed and rebuilt, never fatal.

Caches (the image store, embeddings, fold parts and models, slot evidence) are rebuilt from the
data whenever they are missing, so damage only has to be *noticed*. Two checks cover every file:

- ``.npz`` archives are zip files whose members carry a CRC-32, which :func:`read_npz` verifies by
  reading every array whole (``allow_pickle=False``); the caller then checks shapes and values;
- folders of other files (a fold model: ``model.pt``, JSON settings, a tokenizer) are *sealed*
  after writing: :func:`seal` writes ``checksums.json`` with every file's size and BLAKE2b digest,
  and :func:`check_seal` compares them again (``torch.load`` itself reads garbage in tensor data
  without complaint).

:func:`discard` logs the warning (the file and the reason) and removes the file or folder. This
module knows nothing about what the files mean.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from tokenize import TokenError

import numpy as np
from numpy.lib.npyio import NpzFile

from misalignlab.runs import write_json

log = logging.getLogger(__name__)
SEAL_FILE = "checksums.json"
# What numpy, zipfile and the OS raise on a truncated, overwritten or empty file (a garbled .npy header
# reaches ast.literal_eval: SyntaxError, or tokenize's TokenError).
READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    SyntaxError,
    TokenError,
    zipfile.BadZipFile,
    zlib.error,
)


def file_digest(path: Path) -> str:
    """BLAKE2b (16 bytes, hex) of the file's bytes, read 1 MiB at a time."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(2**20):
            h.update(block)
    return h.hexdigest()


def seal(folder: Path) -> None:
    """Write ``folder/checksums.json``: size and digest of every other file directly in ``folder``."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != SEAL_FILE and not p.name.startswith("."))
    write_json(folder / SEAL_FILE, {p.name: {"size": p.stat().st_size, "blake2b": file_digest(p)} for p in files})


def check_seal(folder: Path) -> str:
    """Why ``folder`` does not match its seal (naming the file), or ``""`` when every file is intact."""
    folder = Path(folder)
    try:
        sealed = json.loads((folder / SEAL_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder / SEAL_FILE} is missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{folder / SEAL_FILE} is unreadable ({err})"
    if not isinstance(sealed, dict) or not sealed:
        return f"{folder / SEAL_FILE} lists no files"
    for name, want in sorted(sealed.items()):
        path = folder / name
        if not isinstance(want, dict) or "size" not in want or "blake2b" not in want:
            return f"{folder / SEAL_FILE} has a malformed entry for {name!r}"
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != want["size"]:
            return f"{path} has {path.stat().st_size} bytes, {want['size']} were written"
        if file_digest(path) != want["blake2b"]:
            return f"{path} does not match its checksum"
    return ""


def discard(path: Path, reason: str, what: str) -> None:
    """Warn that the ``what`` at ``path`` is damaged (``reason``) and remove it (a file or a folder)."""
    log.warning("%s %s is unreadable or damaged (%s); removing it and rebuilding it", what, path, reason)
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def read_npz(
    path: Path,
    keys: Sequence[str],
    what: str,
    check: Callable[[dict[str, np.ndarray]], str] | None = None,
) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of the ``.npz`` at ``path``, every one read whole (so each CRC is checked).

    ``check(arrays)`` returns why valid-looking arrays are still wrong (shapes, non-finite values),
    or ``""``. A missing file gives None silently; a damaged or rejected one is :func:`discard` ed
    (warning named ``what``) and gives None, so the caller rebuilds it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise ValueError("a bare .npy array, not an .npz archive")
        with loaded as npz:
            arrays = {k: np.asarray(npz[k]) for k in keys}
    except READ_ERRORS as err:
        discard(path, f"{type(err).__name__}: {err}", what)
        return None
    reason = check(arrays) if check is not None else ""
    if reason:
        discard(path, reason, what)
        return None
    return arrays
