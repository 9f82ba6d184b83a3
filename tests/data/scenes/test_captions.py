"""Caption templates, slot spans and the slot parser."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from misalignlab.data.scenes.captions import (
    TEMPLATE_WORDS,
    TEMPLATES,
    build_caption,
    caption_slots,
    parse_caption,
    vocabulary,
    written_word,
)
from misalignlab.data.scenes.factors import FACTORS, SEMANTIC


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text)


def test_every_written_word_belongs_to_exactly_one_slot() -> None:
    vocab = vocabulary()
    assert set(vocab) == set(SEMANTIC)
    seen: dict[str, str] = {}
    for factor, words in vocab.items():
        assert set(words.values()) == set(FACTORS[factor].values)
        for word in words:
            assert word not in seen, (word, factor, seen.get(word))
            seen[word] = factor
    assert not TEMPLATE_WORDS & set(seen)
    assert not set(FACTORS["background"].values) & set(FACTORS["colour"].values)


def test_spans_and_parser_recover_exactly_the_stated_words() -> None:
    rng = np.random.default_rng(0)
    for template in range(len(TEMPLATES)):
        for k in range(len(SEMANTIC) + 1):
            for stated in itertools.islice(itertools.combinations(SEMANTIC, k), 12):
                codes = {f: int(rng.integers(FACTORS[f].n_values)) for f in stated}
                words = {f: written_word(f, c, int(rng.integers(3))) for f, c in codes.items()}
                cap = build_caption(words, template)
                assert {f: cap.text[a:b] for f, (a, b) in cap.spans.items()} == words
                assert caption_slots(cap.text) == dict(cap.spans)
                assert parse_caption(cap.text) == {f: FACTORS[f].values[c] for f, c in codes.items()}
                silent = {w for f in SEMANTIC if f not in stated for w in vocabulary()[f]}
                assert not silent & set(tokens(cap.text)), cap.text


def test_templates_phrase_the_same_scene_differently() -> None:
    words = {"size": "large", "colour": "red", "shape": "gear", "defect": "scratched"}
    words |= {"pos_y": "top", "pos_x": "left", "background": "grey"}
    texts = [build_caption(words, t).text for t in range(len(TEMPLATES))]
    assert texts[0] == "a scratched large red gear at the top left on a grey belt"
    assert len(set(texts)) == len(TEMPLATES)
    assert all(parse_caption(t) == words for t in texts)


def test_articles_and_fallback_noun() -> None:
    assert build_caption({"colour": "orange"}, 0).text == "an orange part"
    assert build_caption({"defect": "intact", "shape": "nut"}, 0).text == "an intact nut"
    assert build_caption({}, 2).text == "inspection: part"
    assert parse_caption("an orange part") == {"colour": "orange"}


def test_synonyms_map_back_to_value_words() -> None:
    assert written_word("shape", 1, 0) == "gear" and written_word("shape", 1, 1) == "cog"
    assert written_word("shape", 3, 5) == "nut"  # no synonym: the choice wraps around
    assert parse_caption("A big violet COG, center, gray belt") == {
        "size": "large",
        "colour": "purple",
        "shape": "gear",
        "pos_x": "centre",
        "background": "grey",
    }


def test_build_caption_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="template"):
        build_caption({"shape": "nut"}, len(TEMPLATES))
    with pytest.raises(ValueError, match="stateable"):
        build_caption({"rotation": "tilted"}, 0)
