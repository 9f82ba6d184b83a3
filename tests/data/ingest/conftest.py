"""Helpers for the ingestion tests: tiny seeded images, and one call that ingests a path completely."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from misalignlab.data.ingest.quarantine import QuarantineRecord
from misalignlab.data.ingest.stream import IngestCfg, PairChunk, PairStream, open_pairs

S = 8  # model image size in these tests


def png_bytes(seed: int, size: tuple[int, int] = (10, 12), fmt: str = "PNG") -> bytes:
    """Seeded noise, ``size`` = (width, height), encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def decoded(seed: int, size: tuple[int, int] = (10, 12), fmt: str = "PNG") -> np.ndarray:
    """What ingestion should make of ``png_bytes(seed, size, fmt)`` at ``image_size=S``."""
    from misalignlab.data.ingest.images import ImageCfg, decode_image

    return decode_image(png_bytes(seed, size, fmt), ImageCfg(S))


def write_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Ingested:
    pairs: PairChunk | None  # None when no pair was accepted
    summary: dict
    records: list[QuarantineRecord]
    stream: PairStream

    def reasons(self) -> list[tuple[int | None, str | None, str]]:
        return [(r.line, r.id, r.reason) for r in self.records]


def ingest(path: Path, **cfg: object) -> Ingested:
    """Ingest ``path`` completely with ``IngestCfg(**cfg)`` (``image_size`` S unless given); records kept in memory."""
    stream = open_pairs(path, IngestCfg(**({"image_size": S} | cfg)))  # type: ignore[arg-type]
    chunks = list(stream)
    return Ingested(PairChunk.concat(chunks), stream.summary(), stream.quarantine.records, stream)


@pytest.fixture
def run() -> Callable[..., Ingested]:
    return ingest


@pytest.fixture
def png() -> Callable[..., bytes]:
    return png_bytes


@pytest.fixture
def pixels() -> Callable[..., np.ndarray]:
    return decoded


@pytest.fixture
def tar() -> Callable[..., Path]:
    return write_tar
