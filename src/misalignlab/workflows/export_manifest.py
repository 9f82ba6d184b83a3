"""A cleaned copy of a diagnosed dataset, in its own format, without the flagged pairs.

:func:`clean_manifest` opens the dataset the run folder names (``config.json``: ``data`` and the
ingest settings, so the same files, lines and pair ids come back), keeps every pair the diagnosis
typed outside ``types``, leaves out those inside, and leaves out the rows the diagnosis never saw
(quarantined at ingestion) unless told to keep them. The copy itself is the data layer's job
(:mod:`misalignlab.data.ingest.write`). A pair is matched by id *and* caption: if the dataset
changed since the diagnosis, the export stops and says so instead of dropping the wrong rows.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from misalignlab.config import from_dict
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import detect_layout
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.records import RawRow
from misalignlab.data.ingest.validate import check_caption
from misalignlab.data.ingest.write import CleanCopy, plan_drops, write_clean_copy

COLUMN_FLAGS = {
    "image_column": "--image-column",
    "caption_column": "--caption-column",
    "id_column": "--id-column",
    "image_id_column": "--image-id-column",
}


class _Matcher:
    """The ``keep`` callable of :func:`~misalignlab.data.ingest.write_plan.plan_drops` for one diagnosis."""

    def __init__(self, pairs: pd.DataFrame, types: Sequence[str], keep_unseen: bool, max_chars: int) -> None:
        self.captions = dict(zip(pairs["id"].astype(str), pairs["caption"].astype(str)))
        self.flagged = set(pairs.loc[pairs["type"].isin(types), "id"].astype(str))
        self.keep_unseen, self.max_chars = keep_unseen, max_chars
        self.matched: set[str] = set()
        self.unseen = 0

    def __call__(self, pid: str | None, raw: RawRow) -> bool:
        if pid is None or pid in self.matched or self.captions.get(pid) != self._caption(raw):
            self.unseen += 1  # quarantined by the diagnosis (or a later duplicate of an accepted id)
            return self.keep_unseen
        self.matched.add(pid)
        return pid not in self.flagged

    def _caption(self, raw: RawRow) -> str | None:
        try:
            return check_caption(raw.caption, self.max_chars)
        except PairError:
            return None

    def check_complete(self, data: Path) -> None:
        """``ValueError`` when pairs of the diagnosis were not found again: the dataset changed since."""
        lost = [pid for pid in self.captions if pid not in self.matched]
        if lost:
            raise ValueError(
                f"{data}: {len(lost)} pair(s) of the diagnosis are not in the dataset as it is now (e.g. id {lost[0]!r}, "
                "or its caption changed); the dataset changed since the diagnosis: diagnose it again before exporting"
            )


def dataset_path(config: Mapping[str, Any], data: str | None) -> Path:
    """The dataset to copy: ``data`` when given, else the one ``config.json`` names (relative to this folder)."""
    path = Path(data if data is not None else config["data"])
    if not path.exists():
        hint = "" if data is not None else "; run export from the folder diagnose ran in, or pass --data"
        raise ValueError(f"dataset {path} not found{hint}")
    return path


def clean_manifest(
    config: Mapping[str, Any],
    pairs: pd.DataFrame,
    types: Sequence[str],
    out: Path,
    keep_quarantined: bool = False,
    data: str | None = None,
) -> tuple[CleanCopy, list[str]]:
    """Write the dataset of a diagnosis without the pairs typed ``types`` into folder ``out``.

    Parameters
    ----------
    config : mapping
        The run's ``config.json`` (``data``, ``ingest``).
    pairs : DataFrame
        The run's pair table (``id``, ``caption``, ``type``).
    types : sequence of str
        Kinds left out of the copy.
    out : Path
        Output folder (input files are never overwritten).
    keep_quarantined : bool
        Keep the rows the diagnosis never saw.
    data : str or None
        The dataset, when it moved since the diagnosis.

    Returns
    -------
    (CleanCopy, list of str)
        What was written, and lines for people (quarantined rows, format notes, how to read it back).
    """
    path = dataset_path(config, data)
    ingest = from_dict(IngestCfg, config["ingest"], where="config.json ingest")
    layout = detect_layout(path, ingest.format, ingest.root)
    match = _Matcher(pairs, types, keep_quarantined, ingest.max_caption_chars)
    plan = plan_drops(layout, ingest, match)
    match.check_complete(path)
    if plan.kept == 0:
        raise ValueError(f"leaving out {', '.join(types)} leaves no pair in {path}; nothing written")
    copy = write_clean_copy(layout, ingest, plan, out)
    notes = [
        f"rows the diagnosis never saw (quarantined): {match.unseen}, {'kept' if keep_quarantined else 'left out'}"
    ]
    if copy.note:
        notes.append(f"note: {copy.note}")
    notes.append("diagnose it with: " + _read_back(out, copy, ingest, layout.format, layout.root))
    return copy, notes


def _read_back(out: Path, copy: CleanCopy, ingest: IngestCfg, fmt: str, root: Path) -> str:
    """The command that reads the copy with the input's settings (image root, columns)."""
    argv = ["misalignlab", "diagnose", str(copy.files[0] if len(copy.files) == 1 else out)]
    if fmt != "tar":  # image paths resolve under the input's root, not beside the copy
        argv += ["--root", str(root)]
    # a files layout becomes a CSV of id, image_id, image, caption; other copies keep the input's columns
    columns = {"image_id_column": "image_id"} if fmt == "files" else {n: getattr(ingest, n) for n in COLUMN_FLAGS}
    for name, value in columns.items():
        if value is not None:
            argv += [COLUMN_FLAGS[name], value]
    if ingest.format != "auto" and copy.format == fmt:
        argv += ["--format", ingest.format]
    return shlex.join(argv)
