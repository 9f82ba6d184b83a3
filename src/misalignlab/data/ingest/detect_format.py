"""Which layout a dataset path has: format, the files or folders to read in order, the image root.

Rules for ``format="auto"``. A **file** is read by its name: ``.csv`` (TSV when its header line
has tabs and no comma, as open_clip writes them), ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``,
``.parquet``, ``.arrow``, ``.tar``/``.tar.gz``/``.tgz``, ``.json`` (COCO captions). A **folder**
is checked in this order; the first rule that matches wins:

1. ``dataset_dict.json``: a Hugging Face ``DatasetDict``; refused, naming its splits (pass one).
2. ``state.json``: a Hugging Face ``save_to_disk`` folder; its ``_data_files`` (``data-*.arrow``) in order.
3. ``captions.csv`` + ``config.json``: this project's ``render`` output; read as ``captions.csv``.
4. tar shards: all of them, in name order (img2dataset ``webdataset``: a ``NNNNN.parquet`` beside
   shard ``NNNNN.tar`` is its status file, not a manifest; ``*_stats.json`` is ignored).
5. numbered subfolders holding images (img2dataset ``files``: ``00000/000000000.jpg|txt|json``,
   ``00000.parquet`` beside is the status file).
6. ``captions_*.json`` in the folder or in ``annotations/``: COCO captions (exactly one).
7. manifests of one kind (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, ``.arrow``): all read, in
   name order, as one dataset (shards; img2dataset ``parquet`` output is this case). Two kinds
   are ambiguous: pass the file or set ``format``.
8. image files beside ``.txt``/``.json`` sidecars: one folder of samples (``files``).

An explicit ``format`` applies the matching rule alone. The image root is the folder (a file's
folder); for COCO ``captions_<split>.json`` it is a ``<split>`` folder beside the JSON or beside its
folder (COCO's ``annotations/`` + ``val2017/``) when one exists. ``root`` overrides it.
This module opens no data beyond ``state.json``/``dataset_dict.json`` and a CSV's first line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from misalignlab.data.ingest.config import FORMATS
from misalignlab.data.ingest.records import TAR_SUFFIXES, IngestError
from misalignlab.data.ingest.samples import IMAGE_EXTS

SUFFIX_KINDS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SUFFIX_KINDS |= {".parquet": "parquet", ".arrow": "arrow", ".json": "coco"}
MANIFEST_KINDS = ("csv", "tsv", "jsonl", "parquet", "arrow")
NAMES = {
    "csv": "CSV manifest",
    "tsv": "TSV manifest",
    "jsonl": "JSON lines manifest",
    "parquet": "parquet manifest",
    "arrow": "Arrow IPC file",
    "tar": "webdataset tar shards",
    "coco": "COCO captions JSON",
    "files": "folder of sample files",
}


@dataclass(frozen=True)
class Layout:
    """How to read a dataset: ``format``, ``files`` (or sample folders) in order, image ``root``."""

    format: str
    files: tuple[Path, ...]
    root: Path
    name: str  # for people: "img2dataset webdataset", "render folder", …
    status: dict[Path, Path] = field(default_factory=dict)  # shard → img2dataset status parquet


Rule = Callable[[Path, list[Path], list[Path]], "Layout | None"]  # (folder, its files, all its entries)


def kind_of(path: Path) -> str | None:
    """The format a file name says, or ``None``."""
    if path.name.lower().endswith(TAR_SUFFIXES):
        return "tar"
    return SUFFIX_KINDS.get(path.suffix.lower())


def detect_layout(path: Path, fmt: str = "auto", root: str | None = None) -> Layout:
    """The layout of ``path`` (see the module docstring); ``root`` replaces the default image root.

    Raises
    ------
    IngestError
        Missing path, unknown file type, ambiguous or empty folder, missing root.
    """
    if not path.exists():
        raise IngestError(path, None, "no such file or folder")
    layout = _file(path, fmt) if path.is_file() else _folder(path, fmt)
    if root is not None:
        if not Path(root).is_dir():
            raise IngestError(root, None, "the image root is not a folder")
        layout = replace(layout, root=Path(root))
    return replace(layout, root=layout.root.resolve())


def _file(path: Path, fmt: str) -> Layout:
    kind = kind_of(path) if fmt == "auto" else fmt
    if kind is None:
        known = ", ".join([*SUFFIX_KINDS, *TAR_SUFFIXES])
        raise IngestError(path, None, f"unknown manifest type {path.suffix!r}; use one of {known} or set format")
    if kind == "files":
        raise IngestError(path, None, "format 'files' reads a folder of sample files, not a file")
    if fmt == "auto" and kind == "csv" and _tab_header(path):
        kind = "tsv"
    root = _coco_root(path) if kind == "coco" else path.parent
    return Layout(kind, (path,), root, NAMES[kind])


def _tab_header(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            line = fh.readline(65536)
    except OSError:
        return False  # the reader reports the file
    return b"\t" in line and b"," not in line


def _coco_root(json_path: Path) -> Path:
    match = re.fullmatch(r"captions_(.+)\.json", json_path.name)
    if match:
        for candidate in (json_path.parent / match[1], json_path.parent.parent / match[1]):
            if candidate.is_dir():
                return candidate
    return json_path.parent


def _folder(path: Path, fmt: str) -> Layout:
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    files = [p for p in entries if p.is_file()]
    rules: tuple[Rule, ...] = ()
    if fmt == "auto":
        rules = (_hf_dict, _hf_saved, _render, _tar, _numbered, _coco, _manifests, _flat_samples)
    elif fmt in MANIFEST_KINDS:
        found = (_hf_saved(path, files, entries) if fmt == "arrow" else None) or _manifests_of(path, files, fmt)
        if found is not None:
            return found
    else:
        rules = {"tar": (_tar,), "files": (_numbered, _flat_samples), "coco": (_coco,)}[fmt]
        files = files if fmt == "files" else [p for p in files if kind_of(p) == fmt]
    for rule in rules:
        found = rule(path, files, entries)
        if found is not None:
            return found
    wanted = "a manifest, tar shards or sample files" if fmt == "auto" else f"nothing readable as {fmt}"
    raise IngestError(path, None, f"no dataset found in this folder ({wanted}); valid formats: {', '.join(FORMATS)}")


def _hf_dict(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    marker = path / "dataset_dict.json"
    if not marker.is_file():
        return None
    try:
        splits = json.loads(marker.read_text(encoding="utf-8")).get("splits")
    except (OSError, ValueError, AttributeError):
        splits = None
    names = ", ".join(str(s) for s in splits) if isinstance(splits, list) else "unknown"
    raise IngestError(path, None, f"a Hugging Face DatasetDict (splits: {names}); pass one split folder")


def _hf_saved(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    state = path / "state.json"
    if not state.is_file():
        return None
    try:
        listed = json.loads(state.read_text(encoding="utf-8"))["_data_files"]
        names = [entry["filename"] for entry in listed]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IngestError(state, None, f"unreadable save_to_disk state (no _data_files list): {err}") from None
    shards = []
    for name in names:
        if not isinstance(name, str) or Path(name).name != name or not (path / name).is_file():
            raise IngestError(state, None, f"_data_files names {name!r}, not a file in this folder")
        shards.append(path / name)
    return Layout("arrow", tuple(shards), path, "Hugging Face save_to_disk folder")


def _render(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    if (path / "captions.csv").is_file() and (path / "config.json").is_file():
        return Layout("csv", (path / "captions.csv",), path, "render folder")
    return None


def _status_files(path: Path, stems: list[str]) -> dict[str, Path]:
    return {s: path / f"{s}.parquet" for s in stems if (path / f"{s}.parquet").is_file()}


def _tar(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    shards = [p for p in files if kind_of(p) == "tar"]
    if not shards:
        return None
    stems = [_tar_stem(p) for p in shards]
    status = _status_files(path, stems)
    others = [p for p in files if kind_of(p) in MANIFEST_KINDS and p not in status.values()]
    if others:
        names = ", ".join(p.name for p in shards[:3] + others[:3])
        raise IngestError(path, None, f"several possible manifests ({names}, …); pass the file to use or set format")
    name = "img2dataset webdataset" if status else NAMES["tar"]
    return Layout("tar", tuple(shards), path, name, {shards[i]: status[s] for i, s in enumerate(stems) if s in status})


def _tar_stem(shard: Path) -> str:
    """'00000.tar.gz' → '00000'."""
    suffix = next(s for s in TAR_SUFFIXES if shard.name.lower().endswith(s))
    return shard.name[: -len(suffix)]


def _has_image(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:  # stops at the first image: shard folders hold thousands of files
            return any(e.name.rpartition(".")[2].lower() in IMAGE_EXTS for e in it)
    except OSError:
        return False


def _numbered(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    shards = [p for p in entries if p.is_dir() and p.name.isdigit() and _has_image(p)]
    if not shards:
        return None
    status = _status_files(path, [p.name for p in shards])
    name = "img2dataset files" if status else NAMES["files"]
    return Layout("files", tuple(shards), path, name, {p: status[p.name] for p in shards if p.name in status})


def _coco(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    found = sorted(path.glob("captions_*.json")) + sorted(path.glob("annotations/captions_*.json"))
    if not found and files and all(kind_of(p) == "coco" for p in files) and len(files) == 1:
        found = files  # format coco on a folder holding one JSON
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in found)
        raise IngestError(path, None, f"several COCO caption files ({names}); pass the one to use")
    return Layout("coco", (found[0],), _coco_root(found[0]), NAMES["coco"])


def _manifests(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    found = [p for p in files if kind_of(p) in MANIFEST_KINDS]
    if not found:
        return None
    kinds = sorted({kind_of(p) or "" for p in found})
    if len(kinds) > 1:
        names = ", ".join(p.name for p in found)
        raise IngestError(path, None, f"several possible manifests ({names}); pass the file to use or set format")
    kind = kinds[0]
    if kind == "csv" and _tab_header(found[0]):
        kind = "tsv"
    name = NAMES[kind] if len(found) == 1 else f"folder of {len(found)} {kind} shards"
    return Layout(kind, tuple(found), path, name)


def _flat_samples(path: Path, files: list[Path], entries: list[Path]) -> Layout | None:
    exts = {p.name.partition(".")[2].lower() for p in files}
    if exts & set(IMAGE_EXTS) and exts & {"txt", "json"}:
        return Layout("files", (path,), path, NAMES["files"])
    return None


def _manifests_of(path: Path, files: list[Path], fmt: str) -> Layout | None:
    """An explicit manifest format: its files (``tsv``: ``.tsv``/``.tab`` files, else ``.csv`` ones)."""
    found = [p for p in files if kind_of(p) == fmt]
    if fmt == "tsv" and not found:
        found = [p for p in files if kind_of(p) == "csv"]
    if not found:
        return None
    name = NAMES[fmt] if len(found) == 1 else f"folder of {len(found)} {fmt} shards"
    return Layout(fmt, tuple(found), path, name)
