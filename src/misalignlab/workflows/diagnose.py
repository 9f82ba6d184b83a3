"""The ``diagnose`` workflow: read a user's dataset, diagnose every pair, write the run folder.

:func:`run_diagnosis` reads pairs through :func:`~misalignlab.data.ingest.stream.open_pairs` (bad
rows quarantined), decodes images chunk by chunk into the memory-mapped store of
:mod:`~misalignlab.data.ingest.image_store`, diagnoses them with
:func:`~misalignlab.detect.pipeline.diagnose_pairs` (telling it where the original files are, for a
pretrained backbone that embeds them at its own size, and which pairs are captions of one image) and
writes ``pairs.parquet``, ``images.parquet`` (one row per image, with its verdict:
:mod:`misalignlab.detect.images`), ``summary.json``, ``gallery.html`` and ``plots/`` (score by type,
slot profile); the gallery's previews are re-read from the original files through the stream
(:func:`reread_thumbnails`). Decoded images, embeddings and fold models are cached under
``<out>/cache`` unless another cache folder is given.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.config import to_dict
from misalignlab.data.ingest.image_store import StoredPairs, store_pairs
from misalignlab.data.ingest.originals import ImageSource
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.detect.crossfit import crossfit_embeddings
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs
from misalignlab.report.gallery import THUMB_SIDE, Thumbnail, write_gallery
from misalignlab.report.gallery_plots import write_gallery_plots
from misalignlab.runs import Progress, atomic_write_bytes, write_json, write_run_files
from misalignlab.train.distributed import current

log = logging.getLogger(__name__)


def with_sources(table: pd.DataFrame, pairs: StoredPairs) -> pd.DataFrame:
    """The pair table with where each pair came from: ``image_key``, ``image`` (a path, ``shard.tar::member``
    or ``file.parquet::row``), ``source`` (``file:line``), ``source_file``, ``source_line`` and ``caption``."""
    head = pd.DataFrame(
        {
            "id": table["id"],
            "image_key": list(pairs.image_keys),
            "image": [r.image.ref for r in pairs.rows],
            "source": [f"{r.source}:{r.line}" for r in pairs.rows],
            "source_file": [r.source for r in pairs.rows],
            "source_line": [r.line for r in pairs.rows],
            "caption": list(pairs.captions),
        }
    )
    return head.join(table.drop(columns="id"))


def with_image_refs(images: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The per-image table with ``image``, the file reference of each image (that of its first caption)."""
    refs = pairs.drop_duplicates("image_key").set_index("image_key")["image"]
    out = images.copy()
    out.insert(1, "image", images["image_key"].map(refs).to_numpy())
    return out


def write_parquet(path: Path, table: pd.DataFrame) -> None:
    """``table`` to ``path`` atomically: a reader never sees half a file."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def reread_thumbnails(stream: Any, max_side: int = THUMB_SIDE, budget_s: float = 120.0) -> Thumbnail:
    """``thumbnail(ref)`` for the gallery: the original image re-read by ``stream.thumbnail`` (ingestion's
    checks), or the reason it cannot be (gone, changed, moved out of the root). After ``budget_s`` seconds of
    re-reading (a tar member is found by scanning its shard) it returns ``None``: the decoded copy is shown."""
    start, warned = time.monotonic(), []

    def thumbnail(ref: str) -> np.ndarray | str | None:
        if time.monotonic() - start > budget_s:
            if not warned:
                warned.append(ref)
                log.warning("gallery: re-reading originals took over %.0f s; the rest shows decoded copies", budget_s)
            return None
        try:
            return stream.thumbnail(ref, max_side)
        except PairError as err:
            return f"{err.reason}: {err.message}"

    return thumbnail


def run_diagnosis(
    stream: Any,
    cfg: DiagnoseCfg,
    out: Path,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Diagnose an opened :class:`~misalignlab.data.ingest.stream.PairStream` and write the outputs to ``out``.

    Returns the summary (also written to ``summary.json``), with the ingest counts under ``ingest``.
    Under ``torchrun`` the fold models are shared out over the ranks (:mod:`~misalignlab.detect.folds`)
    and rank 0 alone scores and writes; the other ranks return an empty dict.
    """
    return diagnose_stream(stream, cfg, Path(out), cache_dir, progress, argv)[1]


def diagnose_stream(
    stream: Any,
    cfg: DiagnoseCfg,
    out: Path | None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    argv: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The pair table (:func:`with_sources`) and the summary of an opened stream; the outputs written to ``out``.

    ``out`` None writes no run folder (only the cache, so ``cache_dir`` is then required). On a
    ``torchrun`` rank other than 0 the table is empty and the summary an empty dict.
    """
    if out is None and cache_dir is None:
        raise ValueError("diagnose_stream: give out (a run folder) or cache_dir (where models and codes go)")
    cache = cache_dir if cache_dir is not None else Path(out) / "cache"  # type: ignore[arg-type]
    # decoded images go chunk by chunk to a memmap on disk: a million pairs never sit in memory at once
    pairs = store_pairs(stream, cache, on_chunk=None if progress is None else lambda n: progress("reading", n, 0))
    originals = ImageSource.of_stream(stream, pairs.rows)  # re-read lazily, only if the backbone wants them
    if not current().is_main:  # a torchrun rank other than 0: train its share of the folds; rank 0 writes
        crossfit_embeddings(
            pairs.ids, pairs.images, pairs.captions, cfg.embed, cache, originals=originals, image_keys=pairs.image_keys
        )
        return pd.DataFrame(), {}
    config = {"data": str(stream.path), "ingest": to_dict(stream.cfg), "diagnose": to_dict(cfg)}
    if out is not None:  # before the work: a failed run still says what it was asked to do
        write_run_files(out, config, argv)
    diag = diagnose_pairs(pairs.ids, pairs.images, pairs.captions, cfg, cache, progress, originals, pairs.image_keys)
    table = with_sources(diag.table, pairs)
    summary = diag.summary | {"ingest": stream.summary(), "config": to_dict(cfg)}
    if out is not None:
        reread = reread_thumbnails(stream) if hasattr(stream, "thumbnail") else None
        per_image = with_image_refs(diag.images, table)
        write_outputs(out, table, per_image, summary, pairs.images, cfg.gallery, reread)
    return table, summary


def write_outputs(
    out: Path,
    table: pd.DataFrame,
    per_image: pd.DataFrame,
    summary: dict[str, Any],
    images: Any,
    gallery: int,
    thumbnail: Thumbnail | None,
) -> None:
    """``pairs.parquet``, ``images.parquet``, ``summary.json``, ``plots/`` and ``gallery.html`` (at most
    ``gallery`` pairs) in ``out``."""
    write_parquet(out / "pairs.parquet", table)
    write_parquet(out / "images.parquet", per_image)
    write_json(out / "summary.json", summary)
    plots = write_gallery_plots(table, out / "plots")
    write_gallery(out / "gallery.html", table, summary, images=images, thumbnail=thumbnail, cap=gallery, plots=plots)
