"""Reading a pilot's inputs: the test set by the same ingest path, errors that name the file, no shared images."""

import json

import numpy as np
import pytest

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.pilot.config import PilotCfg, PilotTask
from misalignlab.pilot.data import PilotData
from misalignlab.pilot.load import (
    base_cfg,
    check_declared_vocabulary,
    load_inputs,
    load_test_set,
    without_test_images,
)

INGEST = IngestCfg(image_size=32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    pairs = make_scene_pairs(12, SceneCfg(size=32), InjectionCfg(), seed=2)
    return write_dataset_folder(pairs, tmp_path_factory.mktemp("pairs") / "data")


def test_a_test_set_is_read_like_the_dataset(folder, tmp_path):
    test = load_test_set(folder / "captions.csv", INGEST, tmp_path)
    assert len(test) == 12 and test.name == "test:captions.csv" and test.images.shape[1:] == (32, 32, 3)
    data, rendering, again = load_inputs(
        folder / "captions.csv", "default", PilotCfg(), INGEST, tmp_path / "o", folder / "captions.csv"
    )
    assert rendering is None and again.captions == data.captions == test.captions


def test_a_bad_test_path_is_named(tmp_path, folder):
    missing = tmp_path / "checked.csv"
    with pytest.raises(ValueError, match=r"--test .*checked\.csv.*no such file"):
        load_test_set(missing, INGEST, tmp_path)
    with pytest.raises(ValueError, match=r"--test .*checked\.csv"):  # before any data is read
        load_inputs(folder / "captions.csv", "default", PilotCfg(), INGEST, tmp_path, missing)
    with pytest.raises(ValueError, match="rendered scenes whose truth is known"):
        load_inputs(None, "default", PilotCfg(), INGEST, tmp_path, folder / "captions.csv")


def test_training_pairs_sharing_an_image_with_the_test_set_are_left_out():
    images = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    train = PilotData("d", tuple("abcdef"), images, tuple(f"cap {i}" for i in range(6)))
    test = PilotData("t", ("x", "y"), images[[1, 4]], ("fixed 1", "fixed 4"))  # corrected captions, same images
    kept, left_out = without_test_images(train, test)
    assert left_out == 2 and kept.ids == ("a", "c", "d", "f")
    assert without_test_images(train, PilotData("t", ("z",), images[:1] + 100, ("new",)))[1] == 0


def test_a_declared_vocabulary_is_checked_before_any_work(tmp_path):
    vocab = tmp_path / "v.json"
    vocab.write_text(json.dumps({"slots": {"colour": ["red", "blue"]}}))
    check_declared_vocabulary(PilotCfg(schema=str(vocab), task=PilotTask(nuisance=("colour",))))
    with pytest.raises(ValueError, match=r"task.nuisance \['tone'\].*its slots: colour"):
        check_declared_vocabulary(PilotCfg(schema=str(vocab), task=PilotTask(nuisance=("tone",))))
    broken = tmp_path / "broken.json"
    broken.write_text("{slots")
    with pytest.raises(ValueError, match="broken.json"):
        check_declared_vocabulary(PilotCfg(schema=str(broken)))
    with pytest.raises(ValueError, match="broken.json"):  # rendered data too, before rendering
        load_inputs(None, "default", PilotCfg(schema=str(broken)), INGEST, tmp_path)


def test_built_in_data_starts_from_its_scenario_and_checks_scene_factors(tmp_path):
    assert base_cfg(None, "shift-nuisance", 2.0).task.nuisance == ("background",)
    assert base_cfg(tmp_path, "shift-nuisance", 2.0).task.nuisance == ()
    bad = PilotCfg(task=PilotTask(nuisance=("tone",)))
    with pytest.raises(ValueError, match="task.nuisance"):
        load_inputs(None, "default", bad, INGEST, tmp_path)
