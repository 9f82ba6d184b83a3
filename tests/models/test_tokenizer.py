"""Word tokenizer: splitting, vocabulary order, padding, unknown words, JSON round trip."""

import json

import pytest
import torch

from misalignlab.models.tokenizer import PAD, UNK, WordTokenizer, split_words

CORPUS = [
    "A large olive Croissant, seen from the top; salmon background.",
    "a small red coffee-cup seen from the bottom",
    "A red tennis-ball -- sea-green background!",
]


def test_split_words_lowercases_and_keeps_hyphenated_words() -> None:
    assert split_words("A Sea-Green coffee-cup, 3x BIG--red  ") == ["a", "sea-green", "coffee-cup", "x", "big", "red"]
    assert split_words("-leading trailing- 42") == ["leading", "trailing"]


def test_vocab_starts_with_specials_then_frequency_then_alphabetical() -> None:
    tok = WordTokenizer.build(CORPUS)
    assert tok.vocab[:2] == (PAD, UNK)
    assert tok.vocab[2:5] == ("a", "background", "from")  # a×3, then count-2 words alphabetically
    assert "coffee-cup" in tok.vocab and "sea-green" in tok.vocab
    assert WordTokenizer.build(CORPUS, min_count=2).vocab[2:] == ("a", "background", "from", "red", "seen", "the")
    assert len(WordTokenizer.build(CORPUS, max_size=4)) == 4


def test_encode_pads_truncates_and_round_trips() -> None:
    tok = WordTokenizer.build(CORPUS)
    ids = tok.encode(CORPUS, max_len=12)
    assert ids.shape == (3, 12) and ids.dtype == torch.long
    assert tok.decode(ids[1]) == "a small red coffee-cup seen from the bottom"
    assert (ids[1, 8:] == tok.pad_id).all() and (ids[1, :8] != tok.pad_id).all()
    short = tok.encode(CORPUS, max_len=3)
    assert torch.equal(short, ids[:, :3])
    assert tok.encode([""], max_len=4).tolist() == [[0, 0, 0, 0]]


def test_unknown_words_map_to_unk() -> None:
    tok = WordTokenizer.build(CORPUS)
    ids = tok.encode(["a purple croissant"], max_len=5)[0].tolist()
    assert ids[:3] == [tok.vocab.index("a"), tok.unk_id, tok.vocab.index("croissant")]
    assert tok.decode(ids) == f"a {UNK} croissant"


def test_save_load_is_plain_json(tmp_path) -> None:
    tok = WordTokenizer.build(CORPUS)
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text())
    assert data["vocab"] == list(tok.vocab)
    loaded = WordTokenizer.load(path)
    assert loaded == tok
    assert torch.equal(loaded.encode(CORPUS, 10), tok.encode(CORPUS, 10))


def test_bad_files_and_vocabularies_raise(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        WordTokenizer.load(bad)
    bad.write_text(json.dumps({"vocab": ["<pad>", "<unk>"]}))
    with pytest.raises(ValueError, match="format"):
        WordTokenizer.load(bad)
    with pytest.raises(ValueError, match="must start with"):
        WordTokenizer(("a", "b"))
    with pytest.raises(ValueError, match="duplicate"):
        WordTokenizer((PAD, UNK, "a", "a"))
    with pytest.raises(ValueError, match="max_len"):
        WordTokenizer.build(CORPUS).encode(CORPUS, 0)
