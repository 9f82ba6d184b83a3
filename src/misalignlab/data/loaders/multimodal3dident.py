"""Multimodal3DIdent (Daunhawer et al., ICLR 2023; the parent of the paper's Causal3DIdent, §8).

Layout of the released ``m3di`` folder, one sub-folder per split (``train``, ``val``, ``test``)::

    <split>/images/000000.png …      # zero-padded to ceil(log10(N)) digits by the generator
    <split>/text/text_raw.txt         # one caption per line, line i ↔ image i
    <split>/latents_image.csv         # object_shape, object_xpos, object_ypos, rotations, colours …
    <split>/latents_text.csv          # object_shape, object_xpos, object_ypos, object_color_name, …

Captions and latents are read on opening (small); images only when asked for. A missing split or
file, a CSV lacking a column, a non-numeric latent or mismatched counts raise errors naming the
file and, where it applies, the line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

log = logging.getLogger(__name__)

M3DI_SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_LATENTS: tuple[str, ...] = (
    "object_shape",
    "object_xpos",
    "object_ypos",
    "object_alpharot",
    "object_betarot",
    "object_gammarot",
    "spotlight_pos",
    "object_color",
    "spotlight_color",
    "background_color",
)
TEXT_LATENTS: tuple[str, ...] = ("object_shape", "object_xpos", "object_ypos", "object_color_index", "text_phrasing")
TEXT_STRING_LATENTS: tuple[str, ...] = ("object_color_name",)  # kept when present, not required
SHAPES: tuple[str, ...] = ("teapot", "hare", "dragon", "cow", "armadillo", "horse", "head")


@dataclass(frozen=True)
class M3DISample:
    index: int
    image_path: Path
    caption: str
    latents_image: dict[str, float]
    latents_text: dict[str, Any]  # floats, plus object_color_name (str) when present


def _read_captions(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"Multimodal3DIdent captions not found: {path}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8") from None
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]  # not splitlines(): keep U+2028 inside captions
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline
    for i, ln in enumerate(lines, start=1):
        if not ln.strip():
            raise ValueError(f"{path}, line {i}: empty caption")
    return lines


def _read_latents(path: Path, numeric: tuple[str, ...], strings: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"Multimodal3DIdent latents not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: unreadable CSV: {err}") from None
    missing = [c for c in numeric if c not in df.columns]
    if missing:
        raise ValueError(f"{path}, line 1: missing column(s) {missing}; found: {list(df.columns)}")
    out = pd.DataFrame(index=df.index)
    for col in numeric:
        values = pd.to_numeric(df[col].str.strip(), errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float)))
        if bad.size:
            row = int(bad[0])
            raise ValueError(f"{path}, line {row + 2}: column {col!r} is not a number: {df[col].iloc[row]!r}")
        out[col] = values.astype(float)
    for col in strings:
        if col in df.columns:
            out[col] = df[col]
    return out


def _image_width(image_dir: Path, n: int) -> int:
    """Digits in the file names: the generator's ceil(log10(N)), else whatever index 0 uses."""
    rule = max(1, math.ceil(math.log10(n))) if n > 0 else 1
    for width in (rule, *range(1, 9)):
        if (image_dir / f"{0:0{width}d}.png").is_file():
            return width
    raise FileNotFoundError(f"Multimodal3DIdent image 0 not found in {image_dir} (expected {0:0{rule}d}.png)")


class Multimodal3DIdent:
    """One split of a local Multimodal3DIdent folder; iterate or index for :class:`M3DISample` s."""

    def __init__(self, root: Path | str, split: str = "train") -> None:
        self.root = Path(root)
        if split not in M3DI_SPLITS:
            raise ValueError(f"unknown Multimodal3DIdent split {split!r}; valid: {', '.join(M3DI_SPLITS)}")
        self.dir = self.root / split
        if not self.dir.is_dir():
            present = [s for s in M3DI_SPLITS if (self.root / s).is_dir()]
            raise FileNotFoundError(f"Multimodal3DIdent split folder not found: {self.dir} (splits present: {present})")
        self.captions = _read_captions(self.dir / "text" / "text_raw.txt")
        self.latents_image = _read_latents(self.dir / "latents_image.csv", IMAGE_LATENTS)
        self.latents_text = _read_latents(self.dir / "latents_text.csv", TEXT_LATENTS, TEXT_STRING_LATENTS)
        counts = {
            "text/text_raw.txt": len(self.captions),
            "latents_image.csv": len(self.latents_image),
            "latents_text.csv": len(self.latents_text),
        }
        if len(set(counts.values())) != 1:
            raise ValueError(f"{self.dir}: row counts differ: {counts}")
        self.image_dir = self.dir / "images"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"Multimodal3DIdent image folder not found: {self.image_dir}")
        self._width = _image_width(self.image_dir, len(self.captions)) if self.captions else 1
        log.info("opened Multimodal3DIdent %s: %d samples", self.dir, len(self))

    def __len__(self) -> int:
        return len(self.captions)

    def image_path(self, i: int) -> Path:
        if not 0 <= i < len(self):
            raise IndexError(f"Multimodal3DIdent index {i} out of range 0..{len(self) - 1}")
        return self.image_dir / f"{i:0{self._width}d}.png"

    def __getitem__(self, i: int) -> M3DISample:
        path = self.image_path(i)
        return M3DISample(
            i,
            path,
            self.captions[i],
            {k: float(v) for k, v in self.latents_image.iloc[i].items()},
            {k: (v if isinstance(v, str) else float(v)) for k, v in self.latents_text.iloc[i].items()},
        )

    def __iter__(self) -> Iterator[M3DISample]:
        return (self[i] for i in range(len(self)))

    def image(self, i: int, size: int | None = None) -> np.ndarray:
        """Image ``i`` as ``(H, W, 3)`` uint8 (``(size, size, 3)`` when ``size`` is given)."""
        path = self.image_path(i)
        if not path.is_file():
            raise FileNotFoundError(f"Multimodal3DIdent image {i} not found: {path}")
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if size is not None:
                rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(rgb, dtype=np.uint8)
