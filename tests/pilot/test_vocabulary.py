"""Which embrace options a pilot runs on a user's pairs, and the vocabulary they read captions with."""

import json

import numpy as np
import pytest

from misalignlab.detect.stated import parse_captions
from misalignlab.detect.typed import TypedPairs
from misalignlab.detect.vocabulary import load_vocabulary
from misalignlab.pilot.config import PilotCfg, PilotTask
from misalignlab.pilot.options import option_names, prepare
from misalignlab.pilot.vocabulary import diagnosis_vocabulary, match_slots, rendered_embrace, user_embrace

CAPTIONS = ("a crimson dress", "a red dress", "a navy shirt", "a blue shirt", "a shirt", "studio photo")
BOTH = ("augment", "multipositive")


@pytest.fixture
def typed(tmp_path):
    """What a diagnosis with ``--schema garments.json`` holds about the captions (no typing needed here)."""
    path = tmp_path / "garments.json"
    path.write_text(
        json.dumps({"slots": {"colour": {"red": ["crimson"], "blue": ["navy"]}, "garment": ["dress", "shirt"]}})
    )
    stated = parse_captions(load_vocabulary(path), CAPTIONS)
    return TypedPairs(stated, None, "file:garments.json", True)  # type: ignore[arg-type]


def cfg(nuisance=(), adapt=BOTH, schema="auto"):
    return PilotCfg(task=PilotTask(nuisance=tuple(nuisance)), adapt=adapt, schema=schema)


def test_the_diagnosis_vocabulary_keeps_declared_values_and_synonyms(typed):
    vocab = diagnosis_vocabulary(typed)
    assert vocab.slots == ("colour", "garment") and vocab.source == "file:garments.json"
    assert vocab.words["colour"] == {"red": "red", "crimson": "red", "blue": "blue", "navy": "blue"}
    assert diagnosis_vocabulary(None) is None


def test_nuisance_names_a_slot_by_its_name_or_one_of_its_words(typed):
    vocab = diagnosis_vocabulary(typed)
    assert match_slots(vocab, ["colour"]) == (("colour",), ())
    assert match_slots(vocab, ["Navy", "shirt", "tone"]) == (("colour", "garment"), ("tone",))


def test_with_a_vocabulary_augment_omits_the_nuisance_slot_and_multipositive_applies(typed):
    embrace = user_embrace(cfg(nuisance=["colour"]), CAPTIONS, typed)
    assert embrace.omit == ("colour",) and embrace.not_applicable == {}
    assert option_names(cfg(nuisance=["colour"]), embrace)[-2:] == ["augment", "multipositive"]
    images = np.zeros((len(CAPTIONS), 8, 8, 3), np.uint8)
    from misalignlab.pilot.data import PilotData

    data = PilotData("user", tuple(map(str, range(6))), images, CAPTIONS)
    strategy, pairs = prepare("augment", data, np.zeros(6), 0.1, cfg(nuisance=["colour"]), embrace)
    assert strategy.prepare(pairs).captions[:4] == ("a dress", "a dress", "a shirt", "a shirt")
    strategy, pairs = prepare("multipositive", data, np.zeros(6), 0.1, cfg(), embrace)
    group = strategy.batch_extras(pairs)["group"]
    assert group[0] == group[1] and group[2] == group[3] and group[0] != group[2]


def test_embrace_options_that_cannot_run_say_why(typed):
    no_slots = user_embrace(cfg(nuisance=["colour"]), CAPTIONS, None)
    assert set(no_slots.not_applicable) == set(BOTH)
    assert all(why.startswith("no caption slots: no slot was found") for why in no_slots.not_applicable.values())
    assert "--schema none" in user_embrace(cfg(schema="none"), CAPTIONS, None).not_applicable["augment"]
    assert option_names(cfg(), no_slots) == ["baseline", "clean@0.1", "clean@0.2", "clean@0.3"]
    undeclared = user_embrace(cfg(), CAPTIONS, typed).not_applicable
    assert list(undeclared) == ["augment"] and "names no nuisance slot" in undeclared["augment"]
    unknown = user_embrace(cfg(nuisance=["tone"]), CAPTIONS, typed).not_applicable["augment"]
    assert "tone" in unknown and "its slots: colour, garment" in unknown
    alone = user_embrace(cfg(adapt=("multipositive",)), CAPTIONS[:3:2], typed).not_applicable
    assert "no two captions state the same slot values" in alone["multipositive"]


def test_rendered_data_keeps_the_scene_vocabulary():
    embrace = rendered_embrace(cfg(nuisance=["background"]))
    assert embrace.vocabulary is None and embrace.omit == ("background",) and embrace.not_applicable == {}
    assert "nuisance" in rendered_embrace(cfg()).not_applicable["augment"]
