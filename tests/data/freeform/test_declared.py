"""The declared vocabulary of a free-form writer reads back through ``load_vocabulary`` and finds
every slot the clean captions state, with the value the writer meant."""

import json

import numpy as np
import pytest

from misalignlab.data.freeform import fashion_words, scene_words
from misalignlab.data.freeform.declared import declared_vocabulary
from misalignlab.data.freeform.plant import FreeformCfg
from misalignlab.data.freeform.scenes import make_freeform_scene_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.detect.stated import parse_captions
from misalignlab.detect.vocabulary import load_vocabulary


@pytest.mark.parametrize("module", [scene_words, fashion_words])
@pytest.mark.parametrize("style", ["a", "b"])
def test_every_value_of_every_slot_is_declared(tmp_path, module, style):
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(declared_vocabulary(module.DOMAIN, module.STYLES[style])))
    schema = load_vocabulary(path)
    for slot in module.DOMAIN.slots:
        n_values = int(np.prod([len(module.DOMAIN.values[f]) for f in slot.factors]))
        assert len(set(schema.words[slot.name].values())) == n_values


@pytest.mark.parametrize("style", ["a", "b"])
def test_clean_scene_captions_state_what_the_writer_wrote(tmp_path, style):
    pairs = make_freeform_scene_pairs(300, SceneCfg(size=32), FreeformCfg(style), seed=3)
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(declared_vocabulary(scene_words.DOMAIN, scene_words.STYLES[style])))
    stated = parse_captions(load_vocabulary(path), pairs.captions)
    colour = stated.slots.index("colour")
    names = np.array(stated.value_names[colour])[stated.value[:, colour]]
    truth = np.array(scene_words.STYLES[style].words["colour"])[pairs.factors["colour"].to_numpy(), 0]
    assert (stated.value[:, colour] >= 0).all()  # every caption states its colour (style: always)
    assert (names == truth).mean() == 1.0
