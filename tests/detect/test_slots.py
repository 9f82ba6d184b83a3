"""Slot schemas: known vocabularies parse captions; inference groups interchangeable words."""

from misalignlab.data.scenes.captions import build_caption
from misalignlab.data.scenes.dataset import make_scene_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.detect.slots import fashion_schema, infer_schema, parse_all, scene_schema


def test_scene_schema_parses_spans_and_synonyms():
    words = {"colour": "violet", "size": "big", "shape": "gear"}
    cap = build_caption(words, 0).text
    parsed = scene_schema().parse(cap)
    assert {k: v[2] for k, v in parsed.items()} == {"colour": "purple", "size": "large", "shape": "gear"}
    a, b, _ = parsed["colour"]
    assert cap[a:b] == "violet"


def test_fashion_schema_handles_multiword_and_hyphenated_values():
    schema = fashion_schema()
    assert {k: v[2] for k, v in schema.parse("a dark large ankle boot").items()} == {
        "tone": "dark",
        "size": "large",
        "class": "ankle boot",
    }
    assert schema.parse("a light t-shirt")["class"][2] == "t-shirt"
    said, _ = parse_all(schema.with_usual(["a dark small bag", "a light bag"]), ["a dark bag"])
    assert said.tolist() == [[schema.values("class").index("bag"), 0, -1]]


def test_usual_slots_follow_the_corpus():
    schema = fashion_schema().with_usual(["a dark small bag", "a light large coat", "a dark coat"], share=0.7)
    assert schema.usual == ("class", "tone")


def test_inferred_schema_finds_scene_colours_and_shapes():
    pairs = make_scene_pairs(400, SceneCfg(size=32), InjectionCfg(n_templates=2), seed=0)
    schema = infer_schema(pairs.captions)
    groups = [set(schema.words[s]) for s in schema.slots]
    colours = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"}
    assert any(len(g & colours) >= 6 and g <= colours for g in groups)
    assert any({"bolt", "gear", "nut"} <= g for g in groups)
    assert not any({"red", "gear"} <= g for g in groups)  # words of one caption never share a slot
