"""Caption vocabularies: which words fill the same slot of a caption, declared by a user or inferred.

A :class:`~misalignlab.detect.slots.SlotSchema` maps each slot (``colour``, ``part`` …) to the
phrases that fill it and their value. It comes from one of two places:

- **declared**: a vocabulary file (``--schema FILE``, JSON or TOML) for users who know what their
  captions should state, read by :func:`load_vocabulary`. The built-in vocabularies of the rendered
  scenes and of Fashion-MNIST are two such files (``detect/vocabularies/``). Format::

      {"slots": {"colour": {"red": ["crimson", "scarlet"], "blue": []},
                 "size": ["small", "large"]}}

  A slot lists its values, or maps each value to its synonyms (phrases of one or more words).
- **inferred** from the captions alone (:func:`infer_vocabulary`): content words (never function
  words or numbers, :mod:`misalignlab.detect.words`) that occur in the same contexts (cosine of
  their left and right neighbour counts) and never in the same caption (one caption states one value
  of a slot) are grouped by average-linkage clustering, the co-occurring pairs kept apart. Each word
  is its own value: synonyms are grouped by what the images show (:func:`misalignlab.detect.stated.merge_synonyms`).
  Slots of filler words ("note"/"log") may form; the typing ignores a slot whose words the model
  cannot tell apart in the images.

Text only: nothing here encodes or scores.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from misalignlab.detect.slots import SlotSchema
from misalignlab.detect.words import content_words, words

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

BUILTIN_DIR = Path(__file__).with_name("vocabularies")
BUILTIN = ("scenes", "fashion_mnist")


def load_vocabulary(path: Path | str) -> SlotSchema:
    """A declared vocabulary from a JSON or TOML file (format in the module docstring).

    Raises
    ------
    ValueError
        Naming the file and, when it is one entry that is wrong, its key: unreadable file, no
        ``slots`` table, a slot with fewer than two values, a value or synonym that is not text, a
        phrase that fills two slots.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"vocabulary file {path}: cannot read it ({exc})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("slots"), Mapping) or not raw["slots"]:
        raise ValueError(f"vocabulary file {path}: expected a table 'slots' of slot name → values")
    words_of = {str(slot): _slot_words(path, str(slot), values) for slot, values in raw["slots"].items()}
    try:
        return SlotSchema(words_of, source=f"file:{path.name}")
    except ValueError as exc:  # a phrase in two slots
        raise ValueError(f"vocabulary file {path}: {exc}") from None


def _slot_words(path: Path, slot: str, values: Any) -> dict[str, str]:
    """``{phrase: value}`` of one slot entry (a list of values, or value → synonyms)."""
    where = f"vocabulary file {path}: slots.{slot}"
    if isinstance(values, Sequence) and not isinstance(values, str):
        values = {v: [] for v in values}
    if not isinstance(values, Mapping) or len(values) < 2:
        raise ValueError(f"{where}: a slot needs at least two values (a list, or value → synonyms)")
    out: dict[str, str] = {}
    for value, synonyms in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: value {value!r} is not text")
        if not isinstance(synonyms, Sequence) or isinstance(synonyms, str):
            raise ValueError(f"{where}.{value}: synonyms must be a list of phrases, got {synonyms!r}")
        for phrase in (value, *synonyms):
            if not isinstance(phrase, str) or not phrase.strip():
                raise ValueError(f"{where}.{value}: synonym {phrase!r} is not text")
            out[phrase.strip().lower()] = value.strip().lower()
    return out


def builtin_vocabulary(name: str) -> SlotSchema:
    """One of the built-in vocabularies (:data:`BUILTIN`), read from its file."""
    if name not in BUILTIN:
        raise ValueError(f"unknown built-in vocabulary {name!r}; valid: {', '.join(BUILTIN)}")
    return load_vocabulary(BUILTIN_DIR / f"{name}.json")


def vocabulary_document(schema: SlotSchema) -> dict[str, Any]:
    """``schema`` in the file format (value → synonyms per slot), e.g. to write a vocabulary file."""
    slots: dict[str, dict[str, list[str]]] = {}
    for slot, phrases in schema.words.items():
        values: dict[str, list[str]] = {}
        for phrase, value in phrases.items():
            values.setdefault(value, [])
            if phrase != value:
                values[value].append(phrase)
        slots[slot] = values
    return {"slots": slots}


def infer_vocabulary(
    captions: Sequence[str],
    min_count: int = 3,
    max_words: int = 2000,
    min_similarity: float = 0.3,
    max_cooccur: float = 0.02,
) -> SlotSchema:
    """Slots of interchangeable content words found in ``captions`` (see the module docstring)."""
    docs = [[w.text for w in words(c)] for c in captions]
    content = [{w.text for w in content_words(c)} for c in captions]
    counts: dict[str, int] = {}
    for d in content:
        for w in d:
            counts[w] = counts.get(w, 0) + 1
    vocab = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_words] if n >= min_count]
    if len(vocab) < 2:
        return SlotSchema({}, source="inferred")
    index = {w: i for i, w in enumerate(vocab)}
    sim = _context_similarity(docs, index)  # (V, V)
    both = _cooccurrence(content, index)  # (V, V) captions holding both words
    n_w = np.array([counts[w] for w in vocab], dtype=np.float64)
    apart = both / np.maximum(np.minimum.outer(n_w, n_w), 1.0) > max_cooccur
    distance = 1.0 - sim
    distance[apart] = 10.0  # one caption states one value of a slot: words met together never merge
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(np.clip(distance, 0.0, None), checks=False), method="average")
    label = fcluster(tree, t=1.0 - min_similarity, criterion="distance")
    slots: dict[str, dict[str, str]] = {}
    for c in sorted(set(label), key=lambda c: -n_w[label == c].sum()):
        members = sorted(np.flatnonzero(label == c), key=lambda i: (-n_w[i], vocab[i]))
        if len(members) >= 2:
            names = [vocab[i] for i in members]
            slots["/".join(names[:2]) + ("/…" if len(names) > 2 else "")] = {w: w for w in names}
    return SlotSchema(slots, source="inferred")


def _context_similarity(docs: list[list[str]], index: Mapping[str, int]) -> np.ndarray:
    """Cosine (V, V) of the words' contexts: counts of the word one and two places left and right."""
    rows, cols, vals, features = [], [], [], {}
    for d in docs:
        toks = ["<s>", "<s>", *d, "</s>", "</s>"]
        for j in range(2, len(toks) - 2):
            i = index.get(toks[j])
            if i is None:
                continue
            for tag, tok, weight in (
                ("L", toks[j - 1], 1.0),
                ("R", toks[j + 1], 1.0),
                ("L2", toks[j - 2], 0.5),
                ("R2", toks[j + 2], 0.5),
            ):
                rows.append(i)
                cols.append(features.setdefault(f"{tag}:{tok}", len(features)))
                vals.append(weight)
    m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(index), max(len(features), 1)), dtype=np.float64)
    m.sum_duplicates()
    m.data = np.sqrt(m.data)  # damp the most frequent neighbours
    norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    m = sparse.diags(1.0 / np.maximum(norm, 1e-12)) @ m
    return (m @ m.T).toarray()


def _cooccurrence(content: list[set[str]], index: Mapping[str, int]) -> np.ndarray:
    """(V, V) number of captions that hold both words (diagonal: captions holding the word)."""
    pairs = [(r, index[w]) for r, d in enumerate(content) for w in d if w in index]
    rows, cols = zip(*pairs) if pairs else ((), ())
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(content), len(index)))
    return (x.T @ x).toarray()
