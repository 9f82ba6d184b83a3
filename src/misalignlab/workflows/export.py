"""The ``export`` workflow: turn a diagnosis run folder into files people act on.

:func:`export_run` reads a ``diagnose`` run folder (``pairs.parquet``, ``summary.json``,
``config.json``) and writes one of:

- ``csv``: ``review.csv`` for annotators (:data:`~misalignlab.report.annotation.REVIEW_COLUMNS`,
  most suspicious first, safe to open in a spreadsheet);
- ``label-studio``: ``label_studio_tasks.json`` (tasks pre-annotated with the diagnosed type) and
  ``label_studio_config.xml`` beside it. An image file becomes a local storage URL
  ``/data/local-files/?d=<path relative to the document root>`` (the document root is Label
  Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``; default the dataset's image root); an image
  inside a tar shard, parquet or Arrow file is embedded as a ``data:`` PNG (at most 256 pixels a side);
- ``manifest``: a cleaned copy of the dataset without the exported types
  (:mod:`~misalignlab.workflows.export_manifest`).

Only pairs whose type is in ``types`` are exported (default: every misaligned type). Suggested
fixes come from the table's ``suggested_fix`` column when it has one, else from the evidence
columns (:func:`suggested_fix`). Every file is written atomically; the run folder is only read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.records import ImageRef
from misalignlab.data.ingest.reread import reread_image
from misalignlab.kinds import KINDS, MISALIGNED
from misalignlab.report.annotation import (
    REVIEW_COLUMNS,
    label_studio_tasks,
    labeling_config,
    local_files_url,
    review_csv,
    tasks_json,
)
from misalignlab.report.thumbs import thumbnail_b64
from misalignlab.runs import atomic_write_text
from misalignlab.workflows.export_manifest import clean_manifest

EXPORT_FORMATS = ("csv", "label-studio", "manifest")
DEFAULT_OUT = {"csv": "review.csv", "label-studio": "label_studio_tasks.json", "manifest": "manifest"}
CONFIG_NAME = "label_studio_config.xml"
RUN_FILES = ("pairs.parquet", "summary.json", "config.json")
THUMB_SIDE = 256  # longest side of an image embedded in a Label Studio task


def parse_types(text: str | None) -> tuple[str, ...]:
    """``"wrong,unrelated"`` → ``("wrong", "unrelated")``; ``"all"`` → every kind; ``None`` → the misaligned kinds."""
    if text is None:
        return MISALIGNED
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return KINDS
    bad = [n for n in names if n not in KINDS]
    if bad or not names:
        raise ValueError(f"unknown type(s) {', '.join(map(repr, bad)) or repr(text)}; valid: {', '.join(KINDS)} or all")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ExportCfg:
    """What to export and where.

    Attributes
    ----------
    to : str
        One of :data:`EXPORT_FORMATS`.
    types : tuple of str
        The kinds exported (``manifest``: left out of the copy); default every misaligned kind.
    out : str or None
        The output file (``csv``, ``label-studio``) or folder (``manifest``); default
        ``<run>/export/`` + :data:`DEFAULT_OUT`.
    keep_quarantined : bool
        ``manifest``: keep the rows the diagnosis never saw (quarantined at ingestion).
    data : str or None
        ``manifest``: the dataset, when it is no longer where ``config.json`` says.
    document_root : str or None
        ``label-studio``: Label Studio's local files document root (default: the dataset's image root).
    """

    to: str
    types: tuple[str, ...] = MISALIGNED
    out: str | None = None
    keep_quarantined: bool = False
    data: str | None = None
    document_root: str | None = None

    def __post_init__(self) -> None:
        if self.to not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {self.to!r}; valid: {', '.join(EXPORT_FORMATS)}")
        object.__setattr__(self, "types", tuple(self.types))
        bad = [t for t in self.types if t not in KINDS]
        if bad or not self.types or len(set(self.types)) != len(self.types):
            raise ValueError(f"types must be distinct kinds out of {', '.join(KINDS)}, got {self.types!r}")
        for name in ("out", "data", "document_root"):
            value = getattr(self, name)
            if isinstance(value, Path):  # accepted for convenience; stored as text so configs stay JSON
                object.__setattr__(self, name, str(value))


@dataclass(frozen=True, eq=False)
class RunFolder:
    """A diagnosis run folder as read: its settings, summary, pair table and the model version that typed it."""

    path: Path
    config: Mapping[str, Any]
    summary: Mapping[str, Any]
    pairs: pd.DataFrame
    model_version: str


def read_run(run_dir: Path | str) -> RunFolder:
    """Read a ``diagnose`` run folder; ``ValueError`` naming what is missing when it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder; pass the --out folder of `misalignlab diagnose`")
    missing = [name for name in RUN_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(
            f"{path} is not a diagnose run folder (no {', '.join(missing)}); run `misalignlab diagnose DATA --out {path}` first"
        )
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        pairs = pd.read_parquet(path / "pairs.parquet")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable run folder: {err}") from None
    absent = sorted({"id", "caption", "type", "score"} - set(pairs.columns))
    if absent or "data" not in config or "ingest" not in config:
        raise ValueError(
            f"{path} holds no diagnosis (pairs.parquet lacks {absent or 'nothing'}; config.json: data, ingest)"
        )
    versions_file = path / "versions.json"
    versions = json.loads(versions_file.read_text(encoding="utf-8")) if versions_file.is_file() else {}
    return RunFolder(path, config, summary, pairs, f"misalignlab {versions.get('misalignlab', 'unknown')}")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def suggested_fix(caption: str, kind: str, stated: str, likely: str, missing: str, better_match: str) -> str:
    """A fix for one pair from its evidence.

    ``wrong``: the caption with the first whole-word, case-insensitive occurrence of ``stated``
    replaced by ``likely`` (``replace 'x' by 'y'`` when it does not occur); ``unrelated``: replace
    the caption (naming the pair whose image it fits better, when known); ``incomplete``:
    ``add: <missing>`` when known; otherwise ``""``.
    """
    if kind == "wrong" and stated and likely:
        pattern = re.compile(rf"(?<!\w){re.escape(stated)}(?!\w)", re.IGNORECASE)
        fixed, n = pattern.subn(lambda m: likely, caption, count=1)
        return fixed if n else f"replace '{stated}' by '{likely}'"
    if kind == "unrelated":
        return f"replace the caption (it fits image {better_match} better)" if better_match else "replace the caption"
    if kind == "incomplete" and missing:
        return f"add: {missing}"
    return ""


def suggested_fixes(pairs: pd.DataFrame) -> pd.Series:
    """The ``suggested_fix`` column when the table has one (gaps as ``""``), else :func:`suggested_fix` per pair."""
    if "suggested_fix" in pairs.columns:
        return pairs["suggested_fix"].map(_text)
    cols = ["caption", "type", "stated", "likely", "missing", "better_match"]
    values = [pairs[c].map(_text) if c in pairs.columns else pd.Series("", index=pairs.index) for c in cols]
    return pd.Series([suggested_fix(*row) for row in zip(*values)], index=pairs.index, dtype=object)


def review_table(pairs: pd.DataFrame, select: np.ndarray | pd.Series | None = None) -> pd.DataFrame:
    """The rows of ``pairs`` chosen by the boolean ``select`` (default all) as :data:`REVIEW_COLUMNS`, by score, highest first.

    Columns the table lacks are filled: ``image_key`` with the id, text with ``""``, probabilities with NaN.
    """
    chosen = pairs if select is None else pairs[np.asarray(select, dtype=bool)]
    table = pd.DataFrame(index=chosen.index)
    fixes = suggested_fixes(chosen)
    for col in REVIEW_COLUMNS:
        if col == "suggested_fix":
            table[col] = fixes
        elif col in chosen.columns:
            table[col] = chosen[col] if col.startswith("p_") or col == "score" else chosen[col].map(_text)
        else:
            table[col] = np.nan if col.startswith("p_") else chosen["id"].map(_text) if col == "image_key" else ""
    table["score"] = table["score"].astype(float)
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def write_review_csv(path: Path, table: pd.DataFrame) -> Path:
    """Write a :func:`review_table` as CSV (atomically); returns the path."""
    atomic_write_text(Path(path), review_csv(table))
    return Path(path)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_run` wrote: the files, how many pairs they hold (or the copy kept and dropped), notes."""

    to: str
    files: tuple[Path, ...]
    rows: int
    dropped: int = 0
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Lines for people: what was written, then the notes."""
        files = ", ".join(str(f) for f in self.files)
        if self.to == "manifest":
            head = f"wrote a cleaned copy ({self.rows} pairs kept, {self.dropped} left out): {files}"
        else:
            head = f"wrote {self.rows} pairs to {files}"
        return [head, *self.notes]


def export_run(run_dir: Path | str, cfg: ExportCfg) -> ExportResult:
    """Export a diagnosis run folder as ``cfg`` says (see the module docstring)."""
    run = read_run(run_dir)
    out = Path(cfg.out) if cfg.out is not None else run.path / "export" / DEFAULT_OUT[cfg.to]
    if cfg.to == "manifest":
        copy, notes = clean_manifest(run.config, run.pairs, cfg.types, out, cfg.keep_quarantined, cfg.data)
        return ExportResult("manifest", copy.files, copy.kept, copy.dropped, tuple(notes))
    chosen = run.pairs["type"].isin(cfg.types).to_numpy()
    table = review_table(run.pairs, chosen)
    if cfg.to == "csv":
        return ExportResult("csv", (write_review_csv(out, table),), len(table))
    images, failed = _task_images(table, run, cfg.document_root)
    atomic_write_text(out, tasks_json(label_studio_tasks(table, images, run.model_version)))
    config = out.with_name(CONFIG_NAME)
    atomic_write_text(config, labeling_config())
    notes = [f"import {out.name} into a Label Studio project whose labeling config is {config}"]
    if any(i.startswith("/data/local-files/") for i in images):
        root = cfg.document_root or run.summary.get("ingest", {}).get("root", "")
        notes.append(
            f"image files are local storage URLs: start Label Studio with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
            f"and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={Path(root).resolve()}"
        )
    if failed:
        notes.append(
            f"{failed} image(s) inside shards could not be re-read (moved since the diagnosis?); data.image is empty"
        )
    return ExportResult("label-studio", (out, config), len(table), notes=tuple(notes))


def _task_images(table: pd.DataFrame, run: RunFolder, document_root: str | None) -> tuple[list[str], int]:
    """``data.image`` per row: a local-files URL for an image file, a ``data:`` PNG for a container member."""
    ingest = run.config.get("ingest", {})
    root = run.summary.get("ingest", {}).get("root") or ingest.get("root") or "."
    limits = {
        "max_bytes": ingest.get("max_image_bytes", 64 * 2**20),
        "max_pixels": ingest.get("max_image_pixels", 64 * 2**20),
    }
    images, failed = [], 0
    for value in table["image"]:
        ref = ImageRef.parse(value)
        if not value:
            images.append("")
        elif ref.member is None:
            images.append(local_files_url(ref.path, document_root or root))
        else:
            try:
                pixels = reread_image(ref, root, THUMB_SIDE, containers=(ref.path,), **limits)
                images.append("data:image/png;base64," + thumbnail_b64(pixels))
            except PairError:
                images.append("")
                failed += 1
    return images, failed
