"""How a user dataset is read: :class:`IngestCfg`, validated on construction.

Column fields left at ``None`` pick the first usual name present (listed below), so open_clip
(``filepath``/``title``), img2dataset (``key``/``jpg``/``caption``), Hugging Face (``image``/``text``)
and plain ``image``/``caption`` manifests read without settings. This module reads no data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from misalignlab.data.ingest.images import ImageCfg

FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet", "tar", "coco", "arrow", "files")
IMAGE_COLUMNS = ("image", "filepath", "file_name", "jpg", "png", "webp")
CAPTION_COLUMNS = ("caption", "title", "text", "txt")
ID_COLUMNS = ("id", "key")


@dataclass(frozen=True)
class IngestCfg:
    """How a user dataset is read.

    Attributes
    ----------
    image_column, caption_column : str or None
        Manifest columns of the image (path, bytes, or a Hugging Face ``{bytes, path}`` struct) and
        the caption (text, or a list of captions: one pair each). ``None``: the first of
        :data:`IMAGE_COLUMNS` / :data:`CAPTION_COLUMNS` present. In webdataset and img2dataset
        ``files`` samples, ``caption_column`` names the field of ``KEY.json`` read when there is no
        ``KEY.<caption_ext>`` (default ``caption``).
    id_column : str or None
        Pair ids. ``None``: ``id`` or ``key`` if present, else the 1-based record number.
        Tar and files samples use their KEY, COCO the annotation id.
    image_id_column : str or None
        Rows sharing this value are captions of one image (their image key). When it is also the id
        column, or there is no id column, pair ids become ``<image id>#<k>`` (k = 0, 1, … per image).
    format : str
        One of :data:`FORMATS`; ``auto`` detects it (rules in :mod:`.detect_format`).
    root : str or None
        Folder where relative image paths resolve (itself relative to the current folder); paths
        outside it are refused. ``None``: the dataset folder (a manifest's folder; for COCO the
        ``<split>`` folder beside the JSON when there is one).
    chunk_size : int
        Pairs per :class:`~misalignlab.data.ingest.stream.PairChunk`.
    image_size, fit, max_image_bytes, max_image_pixels
        Decoding (:class:`~misalignlab.data.ingest.images.ImageCfg`).
    max_caption_chars : int
        Longer captions are quarantined (``caption_too_long``).
    caption_ext : str
        Member/file extension of the caption in tar and files samples (``txt``; ``json`` reads the
        ``caption_column`` field of ``KEY.json``).
    """

    image_column: str | None = None
    caption_column: str | None = None
    id_column: str | None = None
    image_id_column: str | None = None
    format: str = "auto"
    root: str | None = None
    chunk_size: int = 1024
    image_size: int = 64
    fit: str = "crop"
    max_image_bytes: int = 64 * 2**20
    max_image_pixels: int = 64 * 2**20
    max_caption_chars: int = 4096
    caption_ext: str = "txt"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown dataset format {self.format!r}; valid: {', '.join(FORMATS)}")
        for name in ("image_column", "caption_column", "id_column", "image_id_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty column name or None, got {value!r}")
        if isinstance(self.root, Path):  # accepted for convenience; stored as text so configs stay JSON
            object.__setattr__(self, "root", str(self.root))
        if self.root is not None and (not isinstance(self.root, str) or not self.root):
            raise ValueError(f"root must be a folder path or None, got {self.root!r}")
        if self.chunk_size < 1 or self.max_caption_chars < 1:
            raise ValueError(f"chunk_size and max_caption_chars must be positive, got {self}")
        ext = self.caption_ext
        if not ext or ext.startswith(".") or "/" in ext or "\\" in ext:
            raise ValueError(f"caption_ext must be an extension such as 'txt' or 'json', got {ext!r}")
        self.image_cfg()  # ImageCfg validates fit and the image limits

    def image_cfg(self) -> ImageCfg:
        return ImageCfg(self.image_size, self.fit, self.max_image_bytes, self.max_image_pixels)
