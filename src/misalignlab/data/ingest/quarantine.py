"""Quarantine of bad rows met while ingesting a user's image–caption dataset.

A bad row (unreadable image, empty caption, path escaping the dataset root, …) is recorded here with
its source file, the line a user would look at, its id when known, a reason code and a message; the
run goes on. Records are spooled to a temporary file beside the final one and renamed into place at
the end, so a million bad rows never sit in memory and a killed run never leaves a half-written file.

This module does not decide what is bad; :mod:`misalignlab.data.ingest.stream` does.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

# Reason codes: fixed strings, so reports and tests can count them.
IMAGE_MISSING = "image_missing"  # no such file, not a regular file, empty field, no image in a tar sample
IMAGE_UNREADABLE = "image_unreadable"  # PIL cannot identify, verify or fully decode it (truncated, corrupt)
IMAGE_TOO_LARGE = "image_too_large"  # more bytes or pixels than the configured limits
PATH_OUTSIDE_ROOT = "path_outside_root"  # after resolving symlinks and '..', not under the dataset root
PATH_INVALID = "path_invalid"  # not a usable file name (NUL byte, not text)
CAPTION_EMPTY = "caption_empty"  # missing, null or only whitespace
CAPTION_NOT_TEXT = "caption_not_text"  # a number, list, object … instead of a string
CAPTION_NOT_UTF8 = "caption_not_utf8"  # undecodable bytes
CAPTION_TOO_LONG = "caption_too_long"
DUPLICATE_ID = "duplicate_id"  # an id already accepted earlier in the run
MALFORMED_ROW = "malformed_row"  # wrong field count, unparseable CSV record or JSON line, empty id, ambiguous sample
SHARD_TRUNCATED = "shard_truncated"  # a tar shard or Arrow file breaks mid-way; the rest of that file is skipped
REMOTE_URL = "remote_url"  # the image field is a URL (http://, s3:// …): never fetched; download first
ROW_GROUP_UNREADABLE = "row_group_unreadable"  # a parquet row group cannot be decoded; one record per row lost
DOWNLOAD_FAILED = "download_failed"  # img2dataset wrote the row without an image (status is not "success")
SHARD_UNREADABLE = "shard_unreadable"  # a later file of a multi-file dataset cannot be opened or lacks a column

REASONS: tuple[str, ...] = (
    IMAGE_MISSING,
    IMAGE_UNREADABLE,
    IMAGE_TOO_LARGE,
    PATH_OUTSIDE_ROOT,
    PATH_INVALID,
    CAPTION_EMPTY,
    CAPTION_NOT_TEXT,
    CAPTION_NOT_UTF8,
    CAPTION_TOO_LONG,
    DUPLICATE_ID,
    MALFORMED_ROW,
    SHARD_TRUNCATED,
    REMOTE_URL,
    ROW_GROUP_UNREADABLE,
    DOWNLOAD_FAILED,
    SHARD_UNREADABLE,
)


class PairError(Exception):
    """One row is bad; carries a reason code from :data:`REASONS` and a human message."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason  # invariant: callers only use the codes above
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class QuarantineRecord:
    """Where a bad row is and why it was set aside.

    ``line`` is 1-based as a user sees it: the physical line in a CSV (header = line 1) or JSONL
    file, the row number in a parquet or Arrow file, the member number in a tar shard, the sample
    number in a folder of sample files, the annotation number in a COCO JSON.
    """

    source: str
    line: int | None
    id: str | None
    reason: str
    message: str


class Quarantine:
    """Collects :class:`QuarantineRecord` s; counts always, records spooled to ``path`` if given.

    Without a path the records stay in memory (``records``); with one they are written as JSON
    lines to a temporary file and moved to ``path`` by :meth:`close`.
    """

    def __init__(self, path: Path | None = None, keep_examples: int = 20) -> None:
        self.path = Path(path) if path is not None else None
        self.counts: Counter[str] = Counter()
        self.examples: list[QuarantineRecord] = []  # the first few, for error messages and reports
        self.records: list[QuarantineRecord] = []  # only filled when there is no path
        self._keep = keep_examples
        self._tmp: str | None = None
        self._fh: IO[str] | None = None
        self._closed = False

    def _spool(self) -> IO[str] | None:
        """The temporary file, created on first use so an unused quarantine leaves nothing behind."""
        if self._fh is None and self.path is not None and not self._closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            self._fh = os.fdopen(fd, "w", encoding="ascii")
        return self._fh

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, source: str | Path, line: int | None, id: str | None, reason: str, message: str) -> None:
        record = QuarantineRecord(str(source), line, id, reason, message)
        self.counts[reason] += 1
        if len(self.examples) < self._keep:
            self.examples.append(record)
        fh = self._spool()
        if fh is not None:
            # ensure_ascii: ids and messages may carry lone surrogates from undecodable bytes.
            fh.write(json.dumps(asdict(record), ensure_ascii=True) + "\n")
        else:
            self.records.append(record)
        log.debug("quarantined %s line %s: %s (%s)", source, line, reason, message)

    def close(self) -> Path | None:
        """Flush and atomically move the spooled records to ``path`` (empty if none); idempotent."""
        if self._closed or self._spool() is None or self._fh is None or self._tmp is None:
            return self.path
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            Path(self._tmp).unlink(missing_ok=True)
            raise
        finally:
            self._fh, self._tmp, self._closed = None, None, True
        return self.path

    def abort(self) -> None:
        """Drop the temporary file without writing ``path`` (used when the run is abandoned)."""
        if self._fh is not None and self._tmp is not None:
            self._fh.close()
            Path(self._tmp).unlink(missing_ok=True)
        self._fh, self._tmp, self._closed = None, None, True

    def summary(self) -> dict[str, Any]:
        """Counts per reason and in total, JSON-ready."""
        return {"quarantined": self.total, "by_reason": dict(sorted(self.counts.items()))}

    def describe(self, limit: int = 3) -> str:
        """A short human text: counts per reason and the first few records."""
        parts = [f"{n} {reason}" for reason, n in self.counts.most_common()]
        lines = [f"quarantined {self.total} row(s): " + (", ".join(parts) or "none")]
        for rec in self.examples[:limit]:
            where = f"{rec.source}:{rec.line}" if rec.line is not None else rec.source
            lines.append(f"  {where}: {rec.reason}: {rec.message}")
        return "\n".join(lines)


def read_quarantine(path: Path) -> list[QuarantineRecord]:
    """Read a quarantine file written by :class:`Quarantine`."""
    with open(path, encoding="ascii") as fh:
        return [QuarantineRecord(**json.loads(line)) for line in fh if line.strip()]
