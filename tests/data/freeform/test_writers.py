"""Free-form captions (scenes and Fashion-MNIST): every truth record must match the caption text.

Captions are read back with a plain phrase lookup over each style's own word lists (longest phrase
first), which is the ground truth the writers promise: every phrase names one value of one slot.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from misalignlab.data.freeform import fashion_words as fw
from misalignlab.data.freeform import scene_words as sw
from misalignlab.data.freeform.fashion import fashion_freeform_captions
from misalignlab.data.freeform.phrasing import FILLERS, Style, check_style, contains_phrase, pattern_slots, render
from misalignlab.data.freeform.plant import KINDS, TRUTH_COLUMNS, Domain, FreeformCfg
from misalignlab.data.freeform.scenes import freeform_scene_captions, make_freeform_scene_pairs
from misalignlab.data.loaders.fashion_mnist import make_fashion_pairs
from misalignlab.data.scenes.dataset import make_scene_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.render import sample_factors

N = 4000
RATES = FreeformCfg(incomplete=0.15, wrong=0.2, unrelated=0.1)
SETS = {"scenes": sw, "fashion": fw}


def _fashion_pairs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    on = rng.random((n, 28, 28)) < rng.uniform(0.1, 0.9, (n, 1, 1))  # item pixels, varied coverage
    images = (on * rng.integers(1, 256, (n, 1, 1))).astype(np.uint8)  # varied tone
    return make_fashion_pairs(images, rng.integers(10, size=n))


@pytest.fixture(scope="module")
def planted() -> dict[tuple[str, str], tuple[pd.DataFrame, list[str], pd.DataFrame]]:
    factors = sample_factors(N, SceneCfg(), np.random.default_rng(0))
    fashion = _fashion_pairs(N)
    fashion_codes = pd.DataFrame({"class": fashion.labels, "tone": fashion.tone, "size": fashion.size}).astype(int)
    out = {}
    for style in ("a", "b"):
        cfg = FreeformCfg(style, RATES.incomplete, RATES.wrong, RATES.unrelated)
        caps, truth = freeform_scene_captions(factors, cfg, np.random.default_rng(1))
        out["scenes", style] = factors, caps, truth
        caps, truth = fashion_freeform_captions(fashion, cfg, seed=1)
        out["fashion", style] = fashion_codes, caps, truth
    return out


def _parsers(style: Style) -> dict[str, tuple[re.Pattern[str], dict[str, int]]]:
    """Slot → (regex of every phrase of the slot, longest first; phrase → value)."""
    out = {}
    for key, lists in style.words.items():
        slot = key.split(":")[0]
        table = out.setdefault(slot, {})
        table |= {p: v for v, options in enumerate(lists) for p in options}
    return {
        s: (re.compile(rf"(?<![\w-])({'|'.join(map(re.escape, sorted(t, key=len, reverse=True)))})(?![\w-])"), t)
        for s, t in out.items()
    }


def _read(caption: str, parsers: dict, domain: Domain) -> dict[str, int]:
    """Factor → code stated by ``caption`` (each slot at most once, or the test fails)."""
    said = {}
    for slot, (rx, table) in parsers.items():
        hits = rx.findall(caption)
        assert len(hits) <= 1, f"{caption!r} states {slot} twice: {hits}"
        if hits:
            value = table[hits[0]]
            for f in reversed(domain.slot(slot).factors):  # mixed radix, last factor least significant
                k = len(domain.values[f])
                said[f], value = value % k, value // k
    return said


@pytest.mark.parametrize("name", SETS)
def test_styles_differ_and_have_30_patterns(name: str) -> None:
    mod = SETS[name]
    a, b = mod.STYLES["a"], mod.STYLES["b"]
    n_values = {s.name: int(np.prod([len(mod.DOMAIN.values[f]) for f in s.factors])) for s in mod.SLOTS}
    for style in (a, b):
        check_style(style, mod.SLOTS, n_values)  # every phrase names one value of one slot
        assert len(set(style.patterns)) >= 30
        stated = [set(mod.DOMAIN.stated(p)) for p in style.patterns]
        core = set.intersection(*stated)
        assert {f for s in mod.SLOTS if s.always for f in s.factors} <= core
        assert any(len(s) < len(mod.DOMAIN.values) for s in stated)  # some patterns state fewer factors
    assert not a.fillers() & b.fillers()

    def shape(p: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"\{(" + "|".join(FILLERS) + r")\}", "", p)).strip()

    assert not {shape(p) for p in a.patterns} & {shape(p) for p in b.patterns}
    for key in a.words.keys() & b.words.keys():  # synonyms differ in part, per slot
        assert {w for ws in a.words[key] for w in ws} != {w for ws in b.words[key] for w in ws}


@pytest.mark.parametrize("name", SETS)
def test_every_pattern_renders_cleanly_with_any_slot_left_out(name: str) -> None:
    mod = SETS[name]
    junk = re.compile(r"\s[,;:)]|[,;]\s*[,;]|[:;(—]\s*,|\(\s|\(\)|^[,;:\s]|[,;:\s]$|\s\s|\ba (?=[aeiou])")
    for style in mod.STYLES.values():
        for pattern in style.patterns:
            slots = dict(pattern_slots(pattern))
            phrases = {s: style.phrase(k, 0, 1) for s, k in slots.items()}
            gones = [None, *[s.name for s in mod.SLOTS if s.droppable and s.name in slots]]
            for k, (lead, gone) in enumerate(itertools.product(style.leads, gones)):
                fill = {"lead": lead, "tail": style.tails[k % len(style.tails)]}
                noun = {s.name: style.generic[k % len(style.generic)] for s in mod.SLOTS if s.noun and s.name == gone}
                out = render(pattern, {s: p for s, p in phrases.items() if s != gone}, fill | noun, style.plural)
                assert not junk.search(out.text), (pattern, gone, out.text)
                for s, (lo, hi) in out.spans.items():
                    assert out.text[lo:hi] == phrases[s]


@pytest.mark.parametrize("key", [(d, s) for d in SETS for s in "ab"])
def test_rates_are_honoured_and_truth_is_complete(planted, key) -> None:
    _, captions, truth = planted[key]
    assert list(truth.columns) == list(TRUTH_COLUMNS) and truth["caption"].tolist() == captions
    assert list(truth["pair"]) == list(range(N))
    share = truth["kind"].value_counts(normalize=True)
    for kind, rate in (("incomplete", 0.15), ("wrong", 0.2), ("unrelated", 0.1), ("aligned", 0.55)):
        assert abs(share[kind] - rate) < 0.03, (kind, share[kind])
    assert truth["pattern"].nunique() >= 30


@pytest.mark.parametrize("key", [(d, s) for d in SETS for s in "ab"])
def test_captions_state_exactly_what_the_truth_says(planted, key) -> None:
    mod = SETS[key[0]]
    style, domain = mod.STYLES[key[1]], mod.DOMAIN
    codes, captions, truth = planted[key]
    parsers = _parsers(style)
    rows = truth.groupby("kind").head(200)  # 200 pairs of each kind
    for i, row in rows.iterrows():
        own = {f: int(codes[f].iat[i]) for f in domain.values}
        said, clean = _read(row["caption"], parsers, domain), _read(row["clean_caption"], parsers, domain)
        assert sorted(said) == sorted(row["stated"]), row["caption"]
        assert clean == {f: own[f] for f in clean}  # the clean caption is true
        if row["kind"] == "unrelated":
            src = {f: int(codes[f].iat[row["source"]]) for f in domain.values}
            assert row["source"] != i and said == {f: src[f] for f in said}
            assert sum(src[f] != own[f] for f in said) >= 2
            continue
        expect = {f: own[f] for f in said}
        for f in row["changed"]:
            expect[f] = list(domain.values[f]).index(row["said_value"])
            assert row["said_value"] != row["true"] == domain.values[f][own[f]]
        assert said == expect, row["caption"]
        assert row["source"] == -1


def _without_articles(text: str) -> str:
    return re.sub(r"\b(a|an) ", "", text)


@pytest.mark.parametrize("key", [(d, s) for d in SETS for s in "ab"])
def test_wrong_changes_one_phrase_and_incomplete_drops_one_slot(planted, key) -> None:
    mod = SETS[key[0]]
    style, domain = mod.STYLES[key[1]], mod.DOMAIN
    _, _, truth = planted[key]
    slot_of = {f: s for s in domain.slots for f in s.factors}
    for _, row in truth[truth["kind"] == "wrong"].iterrows():
        assert len(row["changed"]) == 1
        cap, clean = _without_articles(row["caption"]), _without_articles(row["clean_caption"])
        lo = next(k for k, (x, y) in enumerate(zip(cap, clean)) if x != y)
        hi = next(k for k, (x, y) in enumerate(zip(cap[::-1], clean[::-1])) if x != y)
        said = _without_articles(row["said"])
        at = cap.find(said, max(0, lo - len(said)))
        assert 0 <= at <= lo and at + len(said) >= len(cap) - hi, (cap, clean, said)
        assert contains_phrase(row["caption"], row["said"])
    for _, row in truth[truth["kind"] == "incomplete"].iterrows():
        (slot,) = {slot_of[f] for f in row["dropped"]}
        assert slot.droppable and set(slot.factors) == set(row["dropped"])
        words = {p for key, lists in style.words.items() if key.split(":")[0] == slot.name for ws in lists for p in ws}
        assert not any(contains_phrase(row["caption"], w) for w in words), row["caption"]
        assert any(contains_phrase(row["clean_caption"], w) for w in words)
        if slot.noun:
            assert any(contains_phrase(row["caption"], g) for g in style.generic)
    aligned = truth[truth["kind"] == "aligned"]
    assert (aligned["caption"] == aligned["clean_caption"]).all()
    assert (aligned["changed"].map(len) == 0).all() and (aligned["dropped"].map(len) == 0).all()


def test_plural_nouns_take_no_article(planted) -> None:
    _, captions, _ = planted["fashion", "a"]
    plural = "|".join(fw.STYLE_A.plural)
    assert not [c for c in captions if re.search(rf"\b(a|an) (\S+ )*({plural})\b", c)]
    assert any(re.search(rf"\b({plural})\b", c) for c in captions)


def test_same_seed_same_captions() -> None:
    factors = sample_factors(300, SceneCfg(), np.random.default_rng(3))
    cfg = FreeformCfg("b", 0.2, 0.2, 0.2)
    first, t1 = freeform_scene_captions(factors, cfg, np.random.default_rng(5))
    again, t2 = freeform_scene_captions(factors, cfg, np.random.default_rng(5))
    other, _ = freeform_scene_captions(factors, cfg, np.random.default_rng(6))
    assert first == again and t1.equals(t2) and first != other
    pairs = _fashion_pairs(300)
    assert fashion_freeform_captions(pairs, cfg, 4)[0] == fashion_freeform_captions(pairs, cfg, 4)[0]


def test_make_freeform_scene_pairs_shares_images_with_make_scene_pairs() -> None:
    scene = SceneCfg(size=32)
    pairs = make_freeform_scene_pairs(40, scene, FreeformCfg(wrong=0.5), seed=2)
    plain = make_scene_pairs(40, scene, seed=2)
    assert pairs.images.shape == (40, 32, 32, 3) and len(pairs) == 40
    assert np.array_equal(pairs.images, plain.images) and pairs.factors.equals(plain.factors)
    assert list(pairs.truth["caption"]) == list(pairs.captions)
    with pytest.raises(ValueError, match="colour"):
        make_freeform_scene_pairs(10, SceneCfg(factors=("shape", "size")))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"style": "c"}, "style"),
        ({"incomplete": -0.1}, "incomplete"),
        ({"wrong": 1.5}, "wrong"),
        ({"unrelated": float("nan")}, "unrelated"),
        ({"incomplete": 0.5, "wrong": 0.4, "unrelated": 0.2}, "incomplete \\+ wrong \\+ unrelated"),
        ({"min_differ": 0}, "min_differ"),
    ],
)
def test_bad_cfg_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FreeformCfg(**kwargs)


def test_kinds_are_the_project_kinds() -> None:
    from misalignlab.kinds import KINDS as SCENE_KINDS

    assert KINDS == SCENE_KINDS
