"""Row-level checks for ingestion: path containment, URLs, caption text, pair ids and image keys, bounded reads.

Each check returns clean values or raises :class:`~misalignlab.data.ingest.quarantine.PairError` with a
reason code; none of them stops a run. Used by the readers and :mod:`misalignlab.data.ingest.stream`.
Nothing here decodes images or fetches anything from a network.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from misalignlab.data.ingest.quarantine import (
    CAPTION_EMPTY,
    CAPTION_NOT_TEXT,
    CAPTION_NOT_UTF8,
    CAPTION_TOO_LONG,
    IMAGE_MISSING,
    IMAGE_TOO_LARGE,
    IMAGE_UNREADABLE,
    MALFORMED_ROW,
    PATH_INVALID,
    PATH_OUTSIDE_ROOT,
    REMOTE_URL,
    PairError,
)
from misalignlab.data.ingest.records import RawRow

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")  # http://, https://, s3://, gs://, hf://, file:// …


def resolve_inside(root: Path, ref: str) -> Path:
    """Resolve ``ref`` (relative to ``root`` unless absolute) and refuse it outside ``root``.

    ``root`` must already be resolved. Symlinks and ``..`` are resolved first, so
    ``../../etc/passwd`` and a symlink pointing out of the root are both refused.
    """
    if "\x00" in ref:
        raise PairError(PATH_INVALID, "image path contains a NUL byte")
    candidate = Path(ref)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as err:  # symlink loops
        raise PairError(PATH_INVALID, f"cannot resolve image path {ref!r}: {err}") from None
    if not resolved.is_relative_to(root):
        raise PairError(
            PATH_OUTSIDE_ROOT, f"image path {ref!r} resolves to {resolved}, outside the dataset root {root}"
        )
    return resolved


def refuse_url(ref: str) -> None:
    """Raise ``remote_url`` for a URL: images are never downloaded here."""
    if URL.match(ref.strip()):
        scheme = ref.strip().split("://", 1)[0]
        raise PairError(
            REMOTE_URL,
            f"image field is a {scheme}:// URL ({ref[:200]!r}); misalignlab never downloads images: "
            "fetch them first (e.g. with img2dataset) and point the dataset at the local files",
        )


def check_caption(value: Any, max_chars: int = 4096) -> str:
    """A caption as clean text, or :class:`PairError` (empty, not text, not UTF-8, too long)."""
    if value is None:
        raise PairError(CAPTION_EMPTY, "caption is missing")
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise PairError(CAPTION_NOT_UTF8, f"caption is not valid UTF-8 (byte {err.start})") from None
    if not isinstance(value, str):
        raise PairError(CAPTION_NOT_TEXT, f"caption is a {type(value).__name__}, not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates: undecodable bytes in a CSV, or \udcxx in JSON
        raise PairError(CAPTION_NOT_UTF8, f"caption has undecodable bytes at character {err.start}") from None
    text = value.strip()
    if not text:
        raise PairError(CAPTION_EMPTY, "caption is empty")
    if len(text) > max_chars:
        raise PairError(CAPTION_TOO_LONG, f"caption has {len(text)} characters, limit {max_chars}")
    return text


def clean_id(value: Any, what: str = "id") -> str:
    """An id cell as text: strings, integers and UTF-8 bytes pass; others are ``malformed_row``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, bytes)):
        raise PairError(MALFORMED_ROW, f"{what} is a {type(value).__name__}, expected text or an integer")
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="surrogateescape")
    text = str(value).strip()
    if not text:
        raise PairError(MALFORMED_ROW, f"{what} is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PairError(MALFORMED_ROW, f"{what} has undecodable bytes") from None
    return text


def pair_id(raw: RawRow) -> str:
    """The row's own id (the record number when it has none); no image-key derivation."""
    return str(raw.record) if raw.id is None else clean_id(raw.id)


def pair_keys(raw: RawRow, per_image: dict[str, int]) -> tuple[str, str]:
    """``(pair id, image key)`` of a row.

    - an id: the pair id (``<id>#<k>`` for the k-th caption of a list cell); image key: the image
      id when there is one, else the id;
    - no id but an image id: ``<image id>#<k>``, k counting that image's captions in reading order
      (``per_image`` holds the counts and is updated, also for rows later quarantined, so ids stay stable);
    - neither: the record number (``#<k>`` for list cells); image key: the record number.
    """
    ident = None if raw.id is None else clean_id(raw.id)
    image = None if raw.image_key is None else clean_id(raw.image_key, "image id")
    suffix = "" if raw.caption_index is None else f"#{raw.caption_index}"
    if ident is not None:
        return ident + suffix, image or ident
    if image is not None:
        k = per_image.get(image, 0)
        per_image[image] = k + 1
        return f"{image}#{k}", image
    return str(raw.record) + suffix, str(raw.record)


def read_file(
    root: Path, ref: Any, max_bytes: int, too_large: str = IMAGE_TOO_LARGE, what: str = "image"
) -> tuple[bytes, Path]:
    """The bytes of file ``ref`` under ``root`` (at most ``max_bytes``) and its resolved path.

    ``too_large`` is the reason code for a bigger file (``image_too_large`` for images,
    ``caption_too_long`` for caption files).
    """
    if ref is None or (isinstance(ref, str) and not ref.strip()):
        raise PairError(IMAGE_MISSING, f"{what} field is empty")
    if not isinstance(ref, str):
        raise PairError(PATH_INVALID, f"{what} field is a {type(ref).__name__}, expected a path")
    path = resolve_inside(root, ref.strip())
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise PairError(IMAGE_MISSING, f"{ref!r} is not a regular file")
        if st.st_size > max_bytes:
            raise PairError(too_large, f"{ref!r} has {st.st_size} bytes, limit {max_bytes}")
        with open(path, "rb") as fh:
            # sized by the stat: read(n) allocates n bytes up front, and a 64 MB buffer per small
            # image would dominate ingestion's memory; a file that grows after the stat is cut at
            # its stat size (+1) and then fails to decode as truncated rather than being read whole
            return fh.read(min(st.st_size, max_bytes) + 1), path
    except FileNotFoundError:
        raise PairError(IMAGE_MISSING, f"{what} file {ref!r} not found under {root}") from None
    except OSError as err:
        raise PairError(IMAGE_UNREADABLE, f"cannot read {ref!r}: {err.strerror or err}") from None
