"""``misalignlab.diagnose``: the ``diagnose`` command as one library call that returns the pair table.

The call takes the command's options as keyword arguments with the command's defaults, builds the
same config (:func:`~misalignlab.detect.pipeline.diagnose_config`) and runs the same workflow, so
a table from Python equals the ``pairs.parquet`` of a command-line run on the same data. It also
takes pairs held in memory (``images=``, ``captions=``). Errors are ``ValueError`` s naming the
file, row or entry and the reason; nothing here prints or exits.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from misalignlab.config import to_dict
from misalignlab.data.ingest.arrays import memory_pairs
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.quarantine import read_quarantine
from misalignlab.data.ingest.stream import open_pairs
from misalignlab.detect.base import parse_detector_spec
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_config, diagnose_pairs
from misalignlab.runs import Progress
from misalignlab.workflows.diagnose import diagnose_stream

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def diagnose(
    data: PathLike | None = None,
    *,
    images: Any = None,
    captions: Sequence[str] | None = None,
    ids: Sequence[str | int] | None = None,
    out: PathLike | None = None,
    backbone: str = "auto",
    embeddings: PathLike | None = None,
    schema: PathLike = "auto",
    image_column: str | None = None,
    caption_column: str | None = None,
    id_column: str | None = None,
    image_id_column: str | None = None,
    format: str = "auto",
    root: PathLike | None = None,
    image_size: int = 32,
    steps: int | None = None,
    folds: int | None = None,
    detectors: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    cache: PathLike | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Score, type and explain every image–caption pair of a dataset; the ``diagnose`` command as a call.

    Give either ``data`` (a dataset on disk, read as ``misalignlab diagnose DATA`` reads it) or
    ``images`` and ``captions`` (pairs in memory). Every option is keyword-only and defaults to
    the command's default.

    Parameters
    ----------
    data : str or path, optional
        A manifest (CSV/TSV/JSONL/parquet/COCO JSON/Arrow), webdataset tar shards, or a folder holding
        a dataset (img2dataset output, Hugging Face ``save_to_disk``, manifest shards). Bad rows are
        quarantined, not raised: see ``attrs["quarantine"]`` below.
    images : array or sequence, optional
        Pairs in memory instead of ``data``: a uint8 array ``(N, H, W, 3)`` (or ``(N, H, W)`` grey,
        ``(N, H, W, 4)`` with alpha), or a sequence of such arrays or PIL images of any size; each is
        resized to ``image_size`` as a decoded file is.
    captions : sequence of str, optional
        One caption per image, with ``images``.
    ids : sequence of str or int, optional
        Unique pair ids, with ``images``; default the positions ``"0"`` … ``"N-1"``.
    out : str or path, optional
        A run folder to write, as the command does: ``pairs.parquet``, ``summary.json``,
        ``gallery.html``, ``plots/``, ``quarantine.jsonl``, ``config.json`` and the cache (reused by a
        rerun). ``None`` (default) writes nothing: models and codes go to ``cache`` or a temporary
        folder removed on return. Only with ``data``: a run folder names its dataset on disk, which
        ``misalignlab export`` and the gallery read back.
    backbone : str
        ``auto`` (``text:minilm`` when the ``hf`` extra is installed, else ``scratch``), ``scratch``,
        ``text:minilm``, ``hf:PATH`` or ``precomputed:FILE.npz``.
    embeddings : str or path, optional
        Codes computed elsewhere: an ``.npz`` with ``ids``, ``image_emb`` and ``text_emb``; the same as
        ``backbone="precomputed:FILE"`` (so not together with another backbone).
    schema : str or path
        Caption slots: ``auto`` (inferred from the captions), ``none``, ``scenes``, ``fashion_mnist``
        or a vocabulary file (JSON or TOML, :func:`~misalignlab.detect.vocabulary.load_vocabulary`).
    image_column, caption_column, id_column, image_id_column, format, root
        How ``data`` is read (:class:`~misalignlab.data.ingest.config.IngestCfg`): the manifest's
        columns (``None``: the usual names), rows sharing ``image_id_column`` being captions of one
        image, the format (``auto``, ``csv``, ``tsv``, ``jsonl``, ``parquet``, ``tar``, ``coco``,
        ``arrow``, ``files``) and the folder where relative image paths resolve.
    image_size : int
        Side in pixels of the square images the fold models see (32, as the command).
    steps, folds : int, optional
        Training steps per fold model and cross-fitting folds (None: the defaults of
        :class:`~misalignlab.detect.backends.EmbedCfg`, as the command).
    detectors : sequence of str or mapping, optional
        Replaces the default detectors: ``["neighbourhood:k=10", "similarity"]`` (the command's
        ``--detector`` form) or ``{"neighbourhood": {"k": 10}, "similarity": {}}``.
    overrides : mapping or sequence of str
        Any config field by its dotted key, applied last: ``{"flag_score": 0.9, "embed.seed": 1}`` or
        the command's ``--set`` strings ``["flag_score=0.9"]``.
    cache : str or path, optional
        Folder for decoded images, codes and fold models (default ``out/cache``, or a temporary one).
    progress : callable, optional
        ``progress(stage, done, total)``, called as stages advance (reading, embedding, typing, detectors).

    Returns
    -------
    pandas.DataFrame
        One row per pair, the columns of ``pairs.parquet``: ``id``, ``caption``, where the pair came
        from (``image``, ``source``, ``image_key`` …; only with ``data``), ``score`` (combined, 0–1) and
        ``score_<detector>``, ``type`` (aligned / incomplete / wrong / unrelated), ``p_<type>``,
        ``explanation``, the evidence columns and ``quarantine`` (flagged for review). A table and
        not a result object, because the table is what one filters, sorts and saves; the rest rides
        along in ``DataFrame.attrs``: ``attrs["summary"]`` is the misalignment profile (exactly what
        ``summary.json`` holds: counts and rates by type with 95 % intervals, slot profile, ingest
        counts, the resolved config) and ``attrs["quarantine"]`` lists the rows set aside while
        reading ``data`` (``source``, ``line``, ``id``, ``reason``, ``message``).

    Raises
    ------
    ValueError
        A dataset that cannot be read (missing path, unknown format, missing column: the file and
        line named) or holds no valid pair; a bad in-memory entry (its position named); an unknown
        backbone, detector, schema or config key.

    Examples
    --------
    >>> import misalignlab
    >>> pairs = misalignlab.diagnose("my_data/captions.csv", out="runs/my_data")
    >>> pairs[pairs["type"] != "aligned"].sort_values("score", ascending=False).head()
    >>> pairs.attrs["summary"]["types"]["wrong"]["rate"]
    """
    if (data is None) == (images is None and captions is None):
        raise ValueError("give data (a dataset path) or images= and captions= (pairs in memory), not both or neither")
    if embeddings is not None and backbone != "auto":
        raise ValueError(f"give embeddings= or backbone=, not both (got backbone={backbone!r})")
    spec = f"precomputed:{os.fspath(embeddings)}" if embeddings is not None else backbone
    cfg = diagnose_config(os.fspath(schema), spec, steps, folds, _detectors(detectors), _overrides(overrides))
    if data is None:
        if images is None or captions is None:
            raise ValueError("pairs in memory need both images= and captions=")
        if out is not None:
            raise ValueError("out= writes a run folder that names a dataset on disk; with images= give cache= instead")
        return _diagnose_memory(images, captions, ids, cfg, image_size, cache, progress)
    if ids is not None:
        raise ValueError("ids= goes with images= and captions=; for a dataset on disk name its id_column=")
    ingest = IngestCfg(
        image_column=image_column,
        caption_column=caption_column,
        id_column=id_column,
        image_id_column=image_id_column,
        format=format,
        root=None if root is None else os.fspath(root),
        image_size=image_size,
    )
    out_dir = None if out is None else Path(out)
    stream = open_pairs(Path(data), ingest, quarantine_dir=out_dir)
    options = {"out": out, "backbone": backbone, "embeddings": embeddings, "schema": schema, "format": format}
    options |= {"image_column": image_column, "caption_column": caption_column, "id_column": id_column}
    options |= {"image_id_column": image_id_column, "root": root, "image_size": image_size, "steps": steps}
    options |= {"folds": folds, "detectors": detectors, "overrides": overrides, "cache": cache}
    call = _call_text(data, options)
    with _cache_folder(cache, out_dir) as cache_dir:
        table, summary = diagnose_stream(stream, cfg, out_dir, cache_dir, progress, [call])
    qfile = summary.get("ingest", {}).get("quarantine_file")  # no summary: a torchrun rank other than 0
    if qfile and Path(qfile).is_file():
        records = [vars(r) for r in read_quarantine(Path(qfile))]
    else:
        records = [vars(r) for r in stream.quarantine.records]
        if records:  # no file to look in: say which rows were left out
            log.warning("%s", stream.quarantine.describe())
    return _with_attrs(table, summary, records)


def _diagnose_memory(
    images: Any,
    captions: Sequence[str],
    ids: Sequence[str | int] | None,
    cfg: DiagnoseCfg,
    image_size: int,
    cache: PathLike | None,
    progress: Progress | None,
) -> pd.DataFrame:
    pair_ids, pixels, texts = memory_pairs(images, captions, ids, size=image_size)
    with _cache_folder(cache, None) as cache_dir:
        diag = diagnose_pairs(pair_ids, pixels, texts, cfg, cache_dir, progress)
    table = diag.table
    table.insert(1, "caption", texts)  # where a table from a dataset has it, after the id and its source
    ingest = {"source": "memory", "rows_read": len(texts), "accepted": len(texts), "quarantined": 0, "by_reason": {}}
    return _with_attrs(table, diag.summary | {"ingest": ingest, "config": to_dict(cfg)}, [])


def _with_attrs(table: pd.DataFrame, summary: Mapping[str, Any], quarantine: list[dict[str, Any]]) -> pd.DataFrame:
    # JSON round trip: attrs["summary"] equals summary.json, and plain values keep pandas' attrs
    # comparisons (concat checks them) and deep copies cheap and unambiguous
    table.attrs["summary"] = json.loads(json.dumps(summary, default=str))
    table.attrs["quarantine"] = quarantine
    return table


@contextmanager
def _cache_folder(cache: PathLike | None, out: Path | None) -> Iterator[Path]:
    """The cache folder of a call: ``cache`` when given, ``out/cache`` with a run folder, else a temporary one."""
    if cache is not None:
        yield Path(cache)
    elif out is not None:
        yield out / "cache"
    else:
        with tempfile.TemporaryDirectory(prefix="misalignlab-diagnose-", ignore_cleanup_errors=True) as tmp:
            yield Path(tmp)


def _detectors(spec: Sequence[str] | Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
    if spec is None or isinstance(spec, Mapping):
        return None if spec is None else {str(k): dict(v) for k, v in spec.items()}
    if isinstance(spec, str):  # one name, not its letters
        spec = [spec]
    return parse_detector_spec(list(spec))


def _overrides(spec: Mapping[str, Any] | Sequence[str]) -> list[str]:
    if isinstance(spec, Mapping):
        return [f"{key}={json.dumps(value, default=str)}" for key, value in spec.items()]
    if isinstance(spec, str):
        return [spec]
    return list(spec)


def _call_text(data: PathLike, options: Mapping[str, Any]) -> str:
    """The call as text for ``argv.txt`` (the command line's place): the dataset and every option not at its default."""
    defaults = {name: p.default for name, p in inspect.signature(diagnose).parameters.items()}
    shown = [repr(os.fspath(data))]
    for name, value in options.items():
        if value is None or value == defaults.get(name):
            continue
        shown.append(f"{name}={os.fspath(value) if isinstance(value, os.PathLike) else value!r}")
    return f"misalignlab.diagnose({', '.join(shown)})"
