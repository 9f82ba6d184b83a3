"""Decode untrusted image bytes to model-ready RGB arrays and report thumbnails.

Every failure is turned into a :class:`~misalignlab.data.ingest.quarantine.PairError` with a reason code,
so one bad file never stops an ingestion run. Size limits guard against decompression bombs.
This module reads bytes it is given; it does not decide which files may be opened.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps

from misalignlab.data.ingest.quarantine import IMAGE_TOO_LARGE, IMAGE_UNREADABLE, PairError

FITS = ("crop", "stretch")
# Only common raster formats are parsed: PIL's rarer plugins (EPS calls Ghostscript) are attack surface.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


@dataclass(frozen=True)
class ImageCfg:
    """How images are decoded.

    size: side of the square output, in pixels.
    fit: ``crop`` scales the short side to ``size`` and centre-crops; ``stretch`` ignores aspect.
    max_bytes: larger encoded files are quarantined (``image_too_large``).
    max_pixels: larger decoded images are quarantined before their pixels are decoded.
    """

    size: int = 64
    fit: str = "crop"
    max_bytes: int = 64 * 2**20
    max_pixels: int = 64 * 2**20

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"unknown image fit {self.fit!r}; valid: {', '.join(FITS)}")
        if self.size < 1 or self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError(f"image size and limits must be positive, got {self}")


def open_checked(data: bytes, cfg: ImageCfg, min_side: int | None = None) -> Image.Image:
    """Identify, verify and fully decode ``data``; return an upright RGB image.

    JPEGs are decoded at a reduced DCT scale when both sides stay >= ``min_side`` (default
    ``cfg.size``): several times faster on photos, and every byte is still decoded.

    Raises
    ------
    PairError
        ``image_too_large`` or ``image_unreadable`` with PIL's reason in the message.
    """
    if len(data) > cfg.max_bytes:
        raise PairError(IMAGE_TOO_LARGE, f"{len(data)} bytes exceeds the limit of {cfg.max_bytes}")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone set PIL's global switch; truncated files would then decode silently.
        raise PairError(IMAGE_UNREADABLE, "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to decode")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                _check_pixels(probe, cfg)
                probe.verify()  # structural check (checksums for PNG); the object is unusable afterwards
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_pixels(img, cfg)
            if img.format == "JPEG":
                side = min_side or cfg.size
                img.draft("RGB", (side, side))
            img.load()  # full decode: catches truncated JPEG/PNG data that verify() lets through
    except PairError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise PairError(IMAGE_TOO_LARGE, str(err)) from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct.error … on bad data
        raise PairError(IMAGE_UNREADABLE, f"cannot decode image: {type(err).__name__}: {err}") from None
    return to_rgb(ImageOps.exif_transpose(img))


def _check_pixels(img: Image.Image, cfg: ImageCfg) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise PairError(IMAGE_UNREADABLE, f"image has no pixels ({w}x{h})")
    if w * h > cfg.max_pixels:
        raise PairError(IMAGE_TOO_LARGE, f"{w}x{h} pixels exceeds the limit of {cfg.max_pixels}")


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency composited over white (so a transparent logo is not a black square)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def to_square_array(img: Image.Image, size: int, fit: str = "crop") -> np.ndarray:
    """Resize an RGB image to ``(size, size, 3)`` uint8."""
    if fit == "crop":
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)
    elif fit == "stretch":
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    else:
        raise ValueError(f"unknown image fit {fit!r}; valid: {', '.join(FITS)}")
    out = np.asarray(img, dtype=np.uint8)  # (S, S, 3)
    assert out.shape == (size, size, 3), out.shape
    return out


def decode_image(data: bytes, cfg: ImageCfg) -> np.ndarray:
    """Bytes → ``(cfg.size, cfg.size, 3)`` uint8, or :class:`PairError`."""
    return to_square_array(open_checked(data, cfg), cfg.size, cfg.fit)


def thumbnail_array(data: bytes, max_side: int = 128, cfg: ImageCfg | None = None) -> np.ndarray:
    """Bytes → ``(h, w, 3)`` uint8 with ``max(h, w) <= max_side``, aspect ratio kept."""
    img = open_checked(data, cfg or ImageCfg(), min_side=max_side)
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8)
