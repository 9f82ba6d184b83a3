"""Where a pilot's pairs come from: the built-in scenes, a ``render`` folder, or a user's dataset and test set.

A user's dataset and a verified test set (``--test``) are read the same way, through
:func:`~misalignlab.data.ingest.stream.open_pairs` with one :class:`~misalignlab.data.ingest.config.IngestCfg`,
so the same formats and column flags apply to both; images are decoded into an on-disk store
(:func:`~misalignlab.data.ingest.image_store.store_pairs`) and read as a memmap.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.image_store import store_pairs
from misalignlab.data.ingest.stream import open_pairs
from misalignlab.data.scenes.dataset import read_dataset_folder
from misalignlab.data.scenes.scenarios import Scenario
from misalignlab.detect.typed import read_vocabulary
from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.data import PilotData, render_builtin
from misalignlab.pilot.scenarios import PILOT_SCENARIOS
from misalignlab.pilot.vocabulary import match_slots

TEST_FOLDER = "test_set"  # under the output folder: the test set's quarantine file


def base_cfg(data: Path | None, scenario: str, budget_minutes: float) -> PilotCfg:
    """The settings a pilot starts from: the built-in ``scenario``'s task and money when there is no ``data``."""
    cfg = PilotCfg(budget_minutes=budget_minutes)
    return PILOT_SCENARIOS.get(scenario).config(cfg) if data is None else cfg


def is_render_folder(path: Path) -> bool:
    """A ``misalignlab render`` folder (its truth is known)."""
    return path.is_dir() and (path / "truth.parquet").is_file()


def load_inputs(
    data: Path | None, scenario: str, cfg: PilotCfg, ingest: IngestCfg, out: Path, test: Path | None = None
) -> tuple[PilotData, Scenario | None, PilotData | None]:
    """(pairs, the Scenario of rendered data or None, the verified test set or None), cheapest checks first.

    The test set is read before the dataset: it is small, and a wrong path should fail before a long ingest.

    Raises
    ------
    ValueError
        ``test`` with rendered data (scored on rendered scenes whose truth is known), and everything
        :func:`load_test_set` and :func:`load_pilot_data` raise.
    """
    if test is not None and (data is None or is_render_folder(Path(data))):
        raise ValueError(
            f"--test {test}: rendered data is scored on fresh rendered scenes whose truth is known; "
            "--test is for a dataset of your own"
        )
    test_set = load_test_set(test, ingest, out) if test is not None else None
    pairs, rendering = load_pilot_data(data, scenario, cfg, ingest, out)
    return pairs, rendering, test_set


def load_pilot_data(
    data: Path | None, scenario: str, cfg: PilotCfg, ingest: IngestCfg, out: Path
) -> tuple[PilotData, Scenario | None]:
    """(pairs, the Scenario that renders their test scenes, or None for a user's pairs).

    ``data`` None: the built-in ``scenario`` rendered; a ``render`` folder: its pairs and truth;
    anything else: a user's dataset, ingested with ``ingest`` (bad rows quarantined under ``out``).

    Raises
    ------
    ValueError
        Task names that are not scene factors (rendered data), a declared vocabulary that cannot
        be read or that lacks the task's nuisance slots (user data), or an unreadable dataset.
    """
    out = Path(out)
    if data is None or is_render_folder(Path(data)):
        cfg.task.check_scene_factors()
        check_declared_vocabulary(cfg, nuisance=False)  # a scene's nuisance is a factor, not a slot
        if data is None:
            chosen = PILOT_SCENARIOS.get(scenario).scenario
            return render_builtin(chosen, cfg.task, cfg), chosen
        pairs = read_dataset_folder(Path(data))
        folder = Scenario(f"folder:{Path(data).name}", pairs.scene_cfg, pairs.inj_cfg, cfg.task.train_shifts)
        return PilotData.from_scenes(folder.name, pairs), folder
    check_declared_vocabulary(cfg)
    return _ingest(Path(data), ingest, out, out), None


def load_test_set(path: Path, ingest: IngestCfg, out: Path) -> PilotData:
    """A verified test set (pairs a person checked), read like the dataset; errors name the file.

    Raises
    ------
    ValueError
        The path cannot be read as a dataset, or it holds fewer than 2 valid pairs (retrieval needs two).
    """
    path = Path(path)
    try:
        test = _ingest(path, ingest, Path(out) / TEST_FOLDER, Path(out))
    except ValueError as exc:
        raise ValueError(f"--test {path}: {exc}") from exc
    if len(test) < 2:
        raise ValueError(f"--test {path}: {len(test)} valid pair(s); a test set needs at least 2")
    return replace(test, name=f"test:{path.name}")


def _ingest(path: Path, ingest: IngestCfg, quarantine_dir: Path, out: Path) -> PilotData:
    stream = open_pairs(path, ingest, quarantine_dir=quarantine_dir)
    pairs = store_pairs(stream, out / "cache")  # images on disk (memmap), decoded chunk by chunk
    return PilotData(path.name, pairs.ids, pairs.images, pairs.captions, image_keys=pairs.image_keys)


def check_declared_vocabulary(cfg: PilotCfg, nuisance: bool = True) -> None:
    """Read a declared vocabulary (``schema`` a built-in name or a file) before any work, and (``nuisance``)
    check that it has the task's nuisance slots; ``auto`` and ``none`` are left to the diagnosis.

    Raises
    ------
    ValueError
        Naming the file (unreadable, malformed) or the nuisance names and the vocabulary's slots.
    """
    if cfg.schema in ("auto", "none"):
        return
    vocabulary, _ = read_vocabulary(cfg.schema, [])
    if vocabulary is None or not nuisance:
        return
    _, unmatched = match_slots(vocabulary, cfg.task.nuisance)
    if unmatched:
        raise ValueError(
            f"task.nuisance {list(unmatched)}: not slots of the vocabulary {cfg.schema} "
            f"(its slots: {', '.join(vocabulary.slots)})"
        )


def image_digests(images: np.ndarray, chunk: int = 4096) -> list[str]:
    """A digest of every image's decoded pixels (read in slices: ``images`` may be a memmap)."""
    out: list[str] = []
    for start in range(0, len(images), chunk):
        block = np.ascontiguousarray(images[start : start + chunk])
        out += [hashlib.blake2b(img.tobytes(), digest_size=12).hexdigest() for img in block]
    return out


def without_test_images(train: PilotData, test: PilotData) -> tuple[PilotData, int]:
    """(``train`` without the pairs whose image is also in ``test``, how many were left out).

    A verified test set is often a checked sample of the dataset itself; its images must not be
    trained on, or the score rewards memorising them. Images are matched by their decoded pixels,
    so a test pair whose caption was corrected still finds its training twin.
    """
    held = set(image_digests(test.images))
    keep = np.array([d not in held for d in image_digests(train.images)], dtype=bool)
    if keep.all():
        return train, 0
    if keep.sum() < 2:
        raise ValueError(
            f"{train.name}: every pair's image is in the test set {test.name}; nothing is left to train on"
        )
    return train.subset(keep), int((~keep).sum())
