"""Image previews for HTML reports: pixel arrays → base64 PNG or JPEG text and ``data:`` URIs.

Pictures are re-encoded from decoded ``(h, w, 3)`` uint8 arrays, never copied from user files,
so a page holds only images this module wrote. This module does not read files or choose images.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 75  # a 192-px photo is then about 6–8 kB
LOSSLESS_SIDE = 64  # images this small (decoded copies, renders) are kept exact as PNG


def thumbnail_b64(image: np.ndarray) -> str:
    """(S, S, 3) uint8 → base64 PNG text."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image_data_uri(image: np.ndarray, max_side: int) -> str:
    """A ``data:image/…;base64,`` URI of ``image`` ((h, w, 3) uint8) shrunk to ``max_side``, aspect kept.

    Small images (longest side ≤ :data:`LOSSLESS_SIDE`) become PNG, larger ones JPEG.
    """
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if max(img.size) <= LOSSLESS_SIDE:
        img.save(buf, format="PNG")
        kind = "png"
    else:
        img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        kind = "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
