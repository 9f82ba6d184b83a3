"""Vocabulary-free typing on free-form captions, with a backend that sees what captions and images state."""

import numpy as np
import pytest

from misalignlab.detect.base import PairView
from misalignlab.detect.classify import TypingCfg, _better_images
from misalignlab.detect.combined import Combined
from misalignlab.detect.explain import evidence_columns, explanations
from misalignlab.detect.pipeline import pair_table
from misalignlab.detect.profile import estimated_rates
from misalignlab.detect.typed import type_pairs
from misalignlab.detect.words import FUNCTION_WORDS
from misalignlab.evaluate.detection_metrics import type_metrics

from .conftest import one_hot_images
from .oracle import oracle_fashion


@pytest.fixture(scope="module")
def mixed():
    emb, captions, truth = oracle_fashion(1500, wrong=0.1, incomplete=0.1, unrelated=0.1, seed=0)
    typed = type_pairs(emb, captions, "auto")
    return emb, captions, truth, typed


def _table(emb, captions, typed):
    view = PairView(emb.ids, emb.image_emb, emb.text_emb, emb.fold, typed)
    result = Combined().detect(view)
    return pair_table(view, {"combined": result}, 0.95, captions), result


def test_free_form_captions_without_misalignment_are_rarely_flagged():
    emb, captions, truth = oracle_fashion(1500, wrong=0.0, incomplete=0.0, unrelated=0.0, seed=1)
    typed = type_pairs(emb, captions, "auto")
    assert typed is not None and not typed.declared
    flagged = typed.typing.kind != "aligned"
    assert flagged.mean() <= 0.10


def test_planted_kinds_are_typed_and_their_rates_estimated(mixed):
    emb, captions, truth, typed = mixed
    kind = truth["kind"].to_numpy()
    m = type_metrics(typed.typing.kind, kind)
    assert m["type/macro_f1"] >= 0.7
    assert np.mean(typed.typing.kind[kind == "aligned"] != "aligned") <= 0.10
    table, _ = _table(emb, captions, typed)
    est = estimated_rates(table)
    for k in ("wrong", "unrelated"):  # omissions that read like a shorter pattern are under-counted (RESULTS §3)
        assert abs(est[k]["rate"] - np.mean(kind == k)) <= 0.03
        lo, hi = est[k]["ci95"]
        assert lo < est[k]["rate"] < hi


def test_a_one_word_swap_is_typed_wrong_naming_that_word(mixed):
    emb, captions, truth, typed = mixed
    table, _ = _table(emb, captions, typed)
    caught = np.flatnonzero((truth["kind"].to_numpy() == "wrong") & (table["type"].to_numpy() == "wrong"))
    assert len(caught) >= 0.5 * (truth["kind"] == "wrong").sum()
    said = truth["said"].str.lower().to_numpy()
    quoted = [table["stated"].iat[i] and table["stated"].iat[i] in said[i] for i in caught]
    assert np.mean(quoted) >= 0.9
    fixes = table["suggested_fix"].to_numpy()[caught]
    assert all(f and f != captions[i] for f, i in zip(fixes, caught))  # the fix replaces the quoted word


def test_function_words_are_never_named(mixed):
    emb, captions, truth, typed = mixed
    table, result = _table(emb, captions, typed)
    named = {w for col in ("stated", "likely") for text in table[col] for w in str(text).split()}
    named |= {w for e in result.evidence for w in (e.said or "").split() + (e.seen or "").split()}
    assert named and not named & FUNCTION_WORDS
    assert not any(ch.isdigit() for w in named for ch in w)


def test_a_dropped_slot_is_incomplete_with_what_the_image_shows(mixed):
    emb, captions, truth, typed = mixed
    table, result = _table(emb, captions, typed)
    inc = np.flatnonzero((truth["kind"].to_numpy() == "incomplete") & (table["type"].to_numpy() == "incomplete"))
    assert (
        len(inc) >= 0.3 * (truth["kind"] == "incomplete").sum()
    )  # omissions that read like shorter patterns stay aligned
    assert all(table["missing"].iat[i] for i in inc)
    text = explanations(result, emb.ids)[inc[0]]
    assert "leaves out" in text


def test_unrelated_pairs_name_an_image_that_fits_better(mixed):
    emb, captions, truth, typed = mixed
    table, _ = _table(emb, captions, typed)
    un = np.flatnonzero((truth["kind"].to_numpy() == "unrelated") & (table["type"].to_numpy() == "unrelated"))
    assert len(un) >= 0.7 * (truth["kind"] == "unrelated").sum()
    assert all(table["better_match"].iat[i] for i in un)


def test_the_better_image_of_an_unrelated_caption_is_never_its_own_image():
    view = one_hot_images()  # pairs 5j … 5j + 4 are the captions of image j (code e_j)
    text = view.text_emb.copy()
    text[0] = (view.image_emb[0] + 0.9 * view.image_emb[15]) / np.sqrt(1.81)  # mostly image 0, partly image 3
    kind = np.where(np.arange(len(view)) == 0, "unrelated", "aligned")
    better = _better_images(kind, view.image_emb, text, view.fold, view.image_groups())
    assert better[0] in range(15, 20) and (better[1:] == -1).all()  # image 3, the best image that is not its own
    blind = _better_images(kind, view.image_emb, text, view.fold)
    assert blind[0] in range(1, 5)  # without image keys: another caption of its own image


def test_the_better_image_search_is_bounded_by_its_pool():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(400, 8)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    kind = np.where(np.arange(400) < 20, "unrelated", "aligned")
    fold = np.zeros(400, dtype=np.int64)
    full = _better_images(kind, img, img[::-1].copy(), fold)
    capped = _better_images(kind, img, img[::-1].copy(), fold, pool=50)
    assert (full[:20] == np.arange(399, 379, -1)).all()  # caption i is image 399 − i's own words
    assert (capped[:20] >= 0).all() and len(set(capped[:20])) > 1 and (capped[:20] != np.arange(20)).all()
    assert len(set(capped[:20]) - set(full[:20])) > 0  # found in the sample, not the whole fold


def test_without_slots_the_combined_score_falls_back_to_its_members():
    emb, captions, truth = oracle_fashion(600, unrelated=0.2, seed=2)
    assert type_pairs(emb, captions, "none") is None
    view = PairView(emb.ids, emb.image_emb, emb.text_emb, emb.fold, None)
    result = Combined().detect(view)
    assert result.info["source"] == "members" and result.kind is None
    bad = truth["kind"].to_numpy() == "unrelated"
    assert result.score[bad].mean() > result.score[~bad].mean()


def test_evidence_columns_are_empty_for_aligned_pairs(mixed):
    emb, captions, truth, typed = mixed
    table, result = _table(emb, captions, typed)
    aligned = table["type"].to_numpy() == "aligned"
    cols = evidence_columns(result.evidence, emb.ids, captions)
    assert all((cols[c][aligned] == "").all() for c in ("stated", "missing", "better_match", "suggested_fix"))


def test_typing_settings_are_validated():
    with pytest.raises(ValueError, match="min_visibility"):
        TypingCfg(min_visibility=0.3)
