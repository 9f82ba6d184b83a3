"""Run folders: every run writes ``argv.txt``, ``config.json``, ``versions.json`` and ``results.jsonl``.

Every ``results.jsonl`` record names what produced it in its ``stage`` field (``train``, ``probe``,
``eval``, ``timing`` …), so one reader filters all of them the same way.

Writes are atomic (temp file in the same folder, then ``os.replace``) so a killed run never
leaves a half-written result behind.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

# The progress hook of long library work: ``progress(stage, done, total)`` (total 0: unknown). Library code
# calls it and prints nothing; the CLI turns it into rich progress bars.
Progress = Callable[[str, int, int], None]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def versions() -> dict[str, str]:
    """The versions a run's numbers depend on: Python, misalignlab and its main libraries (read from the
    installed metadata, nothing imported)."""
    out = {"python": platform.python_version()}
    for package in ("misalignlab", "torch", "numpy", "scikit-learn", "pandas", "pyarrow", "transformers"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_run_files(root: Path, config: Mapping[str, Any], argv: list[str] | None = None) -> None:
    """``config.json`` (every setting), ``argv.txt`` (the command line) and ``versions.json`` in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "config.json", dict(config))
    atomic_write_text(root / "argv.txt", " ".join(argv if argv is not None else sys.argv) + "\n")
    write_json(root / "versions.json", versions())


class RunDir:
    """A run's output folder: config, argv and an append-only JSON-lines result log."""

    def __init__(
        self, root: Path, config: Mapping[str, Any], argv: list[str] | None = None, write: bool = True
    ) -> None:
        self.root = Path(root)
        self.results_path = self.root / "results.jsonl"
        self.write = write  # False: a reader of the folder (a distributed job's ranks other than 0)
        if write:
            write_run_files(self.root, config, argv)

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one flat record; each line is flushed and synced so a crash loses at most one line."""
        if not self.write:
            return
        line = json.dumps(dict(record), sort_keys=True, default=float) + "\n"
        with open(self.results_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def path(self, name: str) -> Path:
        return self.root / name


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
