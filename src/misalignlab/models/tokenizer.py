"""A word tokenizer built from a caption corpus, saved as JSON.

Words are lowercase runs of letters; hyphenated words ("coffee-cup", "sea-green") stay one token,
everything else (digits, punctuation, whitespace) separates words. Index 0 is padding and index 1
stands for words not in the vocabulary. The tokenizer is a frozen value: it never changes after it
is built, so a saved run always decodes its captions the same way. It does no stemming, no
sub-word splitting and never pickles.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from misalignlab.runs import atomic_write_text

PAD = "<pad>"
UNK = "<unk>"
FORMAT = "misalignlab.word_tokenizer/1"
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def split_words(text: str) -> list[str]:
    """Lowercase words of ``text``; hyphenated words are kept whole."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class WordTokenizer:
    """Maps words to ids: ``vocab[0]`` is padding, ``vocab[1]`` the unknown word."""

    vocab: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.vocab[:2] != (PAD, UNK):
            raise ValueError(f"vocab must start with {PAD!r}, {UNK!r}; got {self.vocab[:2]}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab has duplicate words")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.vocab)})

    pad_id: ClassVar[int] = 0
    unk_id: ClassVar[int] = 1

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1, max_size: int | None = None) -> WordTokenizer:
        """Vocabulary of words seen at least ``min_count`` times, most frequent first (ties alphabetical).

        ``max_size`` caps the vocabulary, special tokens included.
        """
        counts = Counter(w for caption in captions for w in split_words(caption))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            if max_size < 2:
                raise ValueError(f"max_size must be >= 2 (pad and unk), got {max_size}")
            words = words[: max_size - 2]
        return cls((PAD, UNK, *words))

    def __len__(self) -> int:
        return len(self.vocab)

    def ids(self, caption: str) -> list[int]:
        """Token ids of one caption, without padding or truncation."""
        index: dict[str, int] = self._index  # type: ignore[attr-defined]
        return [index.get(w, self.unk_id) for w in split_words(caption)]

    def encode(self, captions: Sequence[str], max_len: int) -> Tensor:
        """Token ids (N, max_len), int64, right-padded with ``pad_id``; longer captions are truncated."""
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        out = torch.full((len(captions), max_len), self.pad_id, dtype=torch.long)
        for row, caption in enumerate(captions):
            ids = self.ids(caption)[:max_len]
            if ids:
                out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Words of one row of ids, padding dropped (unknown words read ``<unk>``)."""
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return " ".join(self.vocab[i] for i in values if i != self.pad_id)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "vocab": list(self.vocab)}, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> WordTokenizer:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: not a tokenizer JSON file ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{source}: expected a JSON object with format {FORMAT!r}")
        vocab = data.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
            raise ValueError(f"{source}: 'vocab' must be a list of strings")
        return cls(tuple(vocab))

    def save(self, path: Path) -> None:
        """Write the vocabulary as JSON (atomically)."""
        atomic_write_text(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"), source=str(path))
