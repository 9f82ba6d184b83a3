"""Pairs a caller already holds in memory (arrays or PIL images, a list of captions), checked like files are.

:func:`memory_pairs` turns them into what the diagnosis takes: unique string ids, images as one
``(N, S, S, 3)`` uint8 array (each resized and centre-cropped like a decoded file, so a model sees
the same thing whether the pairs came from disk or from memory) and clean caption text. Unlike a
dataset on disk, where a bad row is quarantined and the run goes on, a bad entry here raises
``ValueError`` naming its position and reason: the caller built the list and can fix it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from misalignlab.data.ingest.images import FITS, to_rgb, to_square_array
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.validate import check_caption


def memory_pairs(
    images: Any,
    captions: Sequence[str],
    ids: Sequence[Any] | None = None,
    size: int = 32,
    fit: str = "crop",
    max_caption_chars: int = 4096,
) -> tuple[list[str], np.ndarray, list[str]]:
    """``(ids, images (N, size, size, 3) uint8, captions)`` of in-memory pairs.

    Parameters
    ----------
    images
        A uint8 array ``(N, H, W, 3)``, ``(N, H, W, 4)`` (alpha composited over white) or ``(N, H, W)``
        (grey), or a sequence of such ``(H, W[, C])`` arrays or of PIL images; any size (resized to
        ``size`` with ``fit``, as decoded files are).
    captions
        One caption string per image.
    ids
        Unique pair ids (strings or integers, kept as text); default the positions ``"0"`` … ``"N-1"``.

    Raises
    ------
    ValueError
        Naming the position and reason: lengths that differ, an image that is not uint8 pixels,
        a caption that is empty, not text or too long, a repeated id.
    """
    if fit not in FITS:
        raise ValueError(f"unknown image fit {fit!r}; valid: {', '.join(FITS)}")
    if isinstance(captions, (str, bytes)) or not isinstance(captions, Sequence | np.ndarray):
        raise ValueError(f"captions must be a list of strings, one per image, got {type(captions).__name__}")
    n = len(captions)
    if n == 0:
        raise ValueError("no pairs: captions is empty")
    if len(images) != n:
        raise ValueError(f"images and captions differ in length: {len(images)} images, {n} captions")
    texts = []
    for i, caption in enumerate(captions):
        try:
            texts.append(check_caption(caption, max_caption_chars))
        except PairError as err:
            raise ValueError(f"captions[{i}]: {err.reason}: {err}") from None
    return _ids(ids, n), _square(images, size, fit), texts


def _ids(ids: Sequence[Any] | None, n: int) -> list[str]:
    if ids is None:
        return [str(i) for i in range(n)]
    if isinstance(ids, (str, bytes)) or len(ids) != n:
        raise ValueError(f"ids must give one id per pair ({n}), got {ids if isinstance(ids, str) else len(ids)!r}")
    out: list[str] = []
    first: dict[str, int] = {}
    for i, value in enumerate(ids):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, int, np.integer)):
            raise ValueError(f"ids[{i}]: an id is a string or an integer, got {type(value).__name__}")
        text = str(value).strip()
        if not text:
            raise ValueError(f"ids[{i}]: empty id")
        if text in first:
            raise ValueError(f"ids[{i}]: id {text!r} repeats ids[{first[text]}]")
        first[text] = i
        out.append(text)
    return out


def _square(images: Any, size: int, fit: str) -> np.ndarray:
    """Every image as ``(size, size, 3)`` uint8; an array already of that shape is used as it is."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 pixels (0–255), got dtype {images.dtype}; "
                "for floats in [0, 1]: (images * 255).round().astype(np.uint8)"
            )
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
            raise ValueError(f"images must be (N, H, W), (N, H, W, 3) or (N, H, W, 4), got shape {images.shape}")
        if images.shape[1:] == (size, size, 3):
            return images
    return np.stack([_one(image, i, size, fit) for i, image in enumerate(images)])


def _one(image: Any, i: int, size: int, fit: str) -> np.ndarray:
    if isinstance(image, Image.Image):
        img = image
    else:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise ValueError(f"images[{i}]: expected uint8 pixels (0–255), got dtype {arr.dtype}")
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or 0 in arr.shape:
            raise ValueError(f"images[{i}]: expected (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {arr.shape}")
        img = Image.fromarray(arr)
    return to_square_array(to_rgb(img), size, fit)
