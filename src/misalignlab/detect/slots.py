"""Attribute slots of captions: known vocabularies, a simple inferred one, and slot-swap evidence.

A :class:`SlotSchema` maps each slot (``colour``, ``size`` …) to the words that fill it and their
canonical value. Rendered scenes and Fashion-MNIST use their known vocabularies
(:func:`scene_schema`, :func:`fashion_schema`). For arbitrary captions :func:`infer_schema` finds
*interchangeable* words with two simple rules: (1) they occur in similar contexts (cosine of their
left/right neighbour-word counts ≥ ``min_similarity``) and (2) they (almost) never occur in the same
caption, since one caption states one value per slot. Greedy merging by decreasing similarity
builds the slots; only slots of ≥ 2 words are kept. It is a heuristic: template words that vary
(e.g. "a"/"one") may form a harmless slot, and a multi-word value is seen as one of its words.

:func:`slot_evidence` then, for every pair and every stated slot, writes the caption with that
slot's word replaced by each other value and records ``sim(image, altered caption)`` using the
fold model that embedded the pair. This module does not classify or explain; see ``typing`` and
``explain``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from misalignlab.cache_files import read_npz
from misalignlab.models.tokenizer import split_words
from misalignlab.runs import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlotSchema:
    """Slot → {written word or phrase → canonical value}; ``usual`` are slots most captions state."""

    words: Mapping[str, Mapping[str, str]]
    usual: tuple[str, ...] = ()
    source: str = "given"
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner: dict[str, str] = {}
        for slot, words in self.words.items():
            for w in words:
                if owner.setdefault(w.lower(), slot) != slot:
                    raise ValueError(f"word {w!r} fills two slots: {owner[w.lower()]!r} and {slot!r}")
        phrases = sorted(owner, key=len, reverse=True)  # longest first: "ankle boot" before "boot"
        alt = "|".join(re.escape(p) for p in phrases) or r"(?!x)x"
        object.__setattr__(self, "_regex", re.compile(rf"(?<![a-z0-9-])(?:{alt})(?![a-z0-9-])"))
        object.__setattr__(self, "_owner", owner)

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.words)

    def values(self, slot: str) -> tuple[str, ...]:
        """Canonical values of ``slot`` in first-seen order."""
        return tuple(dict.fromkeys(self.words[slot].values()))

    def parse(self, caption: str) -> dict[str, tuple[int, int, str]]:
        """Slot → (start, end, canonical value) of its first occurrence in ``caption``."""
        low = caption.lower()
        out: dict[str, tuple[int, int, str]] = {}
        assert self._regex is not None
        for m in self._regex.finditer(low):
            slot = self._owner[m.group()]  # type: ignore[attr-defined]
            if slot not in out:
                out[slot] = (m.start(), m.end(), self.words[slot][m.group()])
        return out

    def with_usual(self, captions: Sequence[str], share: float = 0.5) -> SlotSchema:
        """The same schema with ``usual`` = slots stated by at least ``share`` of ``captions``."""
        counts = Counter(s for c in captions for s in self.parse(c))
        usual = tuple(s for s in self.slots if counts[s] >= share * max(len(captions), 1))
        return SlotSchema(self.words, usual, self.source)


def scene_schema() -> SlotSchema:
    """The rendered scenes' vocabulary (synonyms map to their value word)."""
    from misalignlab.data.scenes.captions import vocabulary

    return SlotSchema(vocabulary(), source="scenes")


def fashion_schema() -> SlotSchema:
    """Fashion-MNIST captions: class, tone and size words (plus a few everyday synonyms of classes)."""
    from misalignlab.data.loaders.fashion_mnist import FASHION_MNIST_CLASSES, SIZES, TONES

    # Users' captions say "tee" or "sweater"; parsed as their class, a synonym is stated, not missing.
    synonyms = {"tee": "t-shirt", "pants": "trouser", "sweater": "pullover", "handbag": "bag"}
    words = {"class": {c: c for c in FASHION_MNIST_CLASSES} | synonyms, "tone": {t: t for t in TONES}}
    return SlotSchema(words | {"size": {s: s for s in SIZES}}, source="fashion_mnist")


def infer_schema(
    captions: Sequence[str],
    min_count: int = 5,
    min_similarity: float = 0.5,
    max_cooccur: float = 0.02,
    max_words: int = 2000,
) -> SlotSchema:
    """Slots of interchangeable words found in ``captions`` (see the module docstring)."""
    docs = [split_words(c) for c in captions]
    counts = Counter(w for d in docs for w in set(d))
    vocab = [w for w, c in counts.most_common(max_words) if c >= min_count]
    index = {w: i for i, w in enumerate(vocab)}
    ctx: list[Counter[str]] = [Counter() for _ in vocab]
    both = np.zeros((len(vocab), len(vocab)), dtype=np.int64)  # captions containing both words
    for d in docs:
        toks = ["<s>", *d, "</s>"]
        for j in range(1, len(toks) - 1):
            i = index.get(toks[j])
            if i is not None:
                ctx[i][f"L:{toks[j - 1]}"] += 1
                ctx[i][f"R:{toks[j + 1]}"] += 1
        present = sorted({index[w] for w in d if w in index})
        both[np.ix_(present, present)] += 1
    feats = sorted({f for c in ctx for f in c})
    fi = {f: i for i, f in enumerate(feats)}
    mat = np.zeros((len(vocab), len(feats)), dtype=np.float64)
    for i, c in enumerate(ctx):
        for f, n in c.items():
            mat[i, fi[f]] = n
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    sim = mat @ mat.T  # (W, W) context cosine
    n_w = np.array([counts[w] for w in vocab], dtype=np.float64)
    co_rate = both / np.maximum(np.minimum.outer(n_w, n_w), 1.0)  # (W, W)
    cluster = list(range(len(vocab)))
    members: dict[int, list[int]] = {i: [i] for i in range(len(vocab))}
    a_idx, b_idx = np.triu_indices(len(vocab), k=1)
    order = np.argsort(-sim[a_idx, b_idx], kind="stable")
    for t in order:
        a, b = int(a_idx[t]), int(b_idx[t])
        if sim[a, b] < min_similarity:
            break
        ca, cb = cluster[a], cluster[b]
        if ca == cb or co_rate[np.ix_(members[ca], members[cb])].max() > max_cooccur:
            continue
        for m in members[cb]:
            cluster[m] = ca
        members[ca] += members.pop(cb)
    words: dict[str, dict[str, str]] = {}
    for group in sorted(members.values(), key=lambda g: -sum(n_w[g])):
        if len(group) >= 2:
            names = [vocab[i] for i in sorted(group, key=lambda i: -n_w[i])]
            words["/".join(names[:2]) + ("/…" if len(names) > 2 else "")] = {w: w for w in names}
    return SlotSchema(words, source="inferred").with_usual(captions)


@dataclass(frozen=True, eq=False)
class SlotEvidence:
    """Per pair and slot: what the caption states and how well each value matches the image.

    ``said[i, s]`` is the index into ``values[s]`` the caption states (−1: not stated) and
    ``swap_sim[i, s, v]`` is sim(image i, caption i with slot s set to value v) (NaN where the slot
    is unstated or has fewer values); ``pair_sim[i]`` is sim(image i, caption i).
    """

    slots: tuple[str, ...]  # (S,)
    values: tuple[tuple[str, ...], ...]  # (S,) value words per slot
    usual: np.ndarray  # (S,) bool
    said: np.ndarray  # (N, S) int16
    swap_sim: np.ndarray  # (N, S, V) float32
    pair_sim: np.ndarray  # (N,) float32

    @classmethod
    def of(cls, schema: SlotSchema, said: np.ndarray, swap_sim: np.ndarray, pair_sim: np.ndarray) -> SlotEvidence:
        """The evidence arrays labelled with ``schema``'s slots, values and usual slots."""
        usual = np.array([s in schema.usual for s in schema.slots], dtype=bool)
        return cls(schema.slots, tuple(schema.values(s) for s in schema.slots), usual, said, swap_sim, pair_sim)


def parse_all(schema: SlotSchema, captions: Sequence[str]) -> tuple[np.ndarray, list[dict[str, tuple[int, int, str]]]]:
    """``said`` (N, S) int16 value indices (−1 unstated) and the parsed spans of each caption."""
    value_index = [{v: j for j, v in enumerate(schema.values(s))} for s in schema.slots]
    said = np.full((len(captions), len(schema.slots)), -1, dtype=np.int16)
    parsed = [schema.parse(c) for c in captions]
    for i, p in enumerate(parsed):
        for s, slot in enumerate(schema.slots):
            if slot in p:
                said[i, s] = value_index[s][p[slot][2]]
    return said, parsed


def slot_evidence(emb: object, captions: Sequence[str], schema: SlotSchema) -> SlotEvidence:
    """Score every single-slot alternative of every caption against its image (see module docstring).

    ``emb`` is a :class:`~misalignlab.detect.crossfit.PairEmbeddings`; alternatives are encoded
    with the fold model of their pair, each distinct (fold, caption) once.
    """
    said, parsed = parse_all(schema, captions)
    n_vals = max((len(schema.values(s)) for s in schema.slots), default=1)
    swap = np.full((len(captions), len(schema.slots), n_vals), np.nan, dtype=np.float32)
    img, fold = emb.image_emb, emb.fold  # type: ignore[attr-defined]
    pair_sim = np.einsum("nd,nd->n", img, emb.text_emb).astype(np.float32)  # type: ignore[attr-defined]
    for k in np.unique(fold):
        texts: dict[str, int] = {}
        where: list[tuple[int, int, int, int]] = []  # (pair, slot, value, text index)
        for i in np.flatnonzero(fold == k):
            for s, slot in enumerate(schema.slots):
                if slot not in parsed[i]:
                    continue
                a, b, _ = parsed[i][slot]
                for v, value in enumerate(schema.values(slot)):
                    alt = captions[i][:a] + value + captions[i][b:]
                    where.append((int(i), s, v, texts.setdefault(alt, len(texts))))
        if not where:
            continue
        codes = emb.embed_texts(int(k), list(texts))  # type: ignore[attr-defined]  # (T, D)
        w = np.asarray(where, dtype=np.int64)
        swap[w[:, 0], w[:, 1], w[:, 2]] = np.einsum("nd,nd->n", img[w[:, 0]], codes[w[:, 3]])
    return SlotEvidence.of(schema, said, swap, pair_sim)


def schema_digest(schema: SlotSchema) -> str:
    """A short stable hash of a schema's slots, words and usual slots (names a slot-evidence cache file)."""
    payload = json.dumps(
        {"words": {s: dict(sorted(w.items())) for s, w in schema.words.items()}, "usual": list(schema.usual)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cached_slot_evidence(emb: object, captions: Sequence[str], schema: SlotSchema) -> SlotEvidence:
    """:func:`slot_evidence`, kept beside the embedding cache and reused on a rerun.

    Encoding every single-slot alternative is the costly part of a rerun on cached embeddings
    (with a pretrained text tower most of it). The cache folder already fixes the pairs, captions
    and fold models, so a file per schema, ``slots-<digest>.npz``, written atomically and read
    with ``allow_pickle=False``, is enough; a damaged one (unreadable, or arrays that do not fit
    the schema and pairs) is named in a warning, removed and recomputed. Without a cache folder
    nothing is stored.
    """
    folder = getattr(emb, "folder", None)
    if folder is None:
        return slot_evidence(emb, captions, schema)
    path = Path(folder) / f"slots-{schema_digest(schema)}.npz"
    check = lambda arrays: _slots_damage(arrays, schema, len(captions))  # noqa: E731
    saved = read_npz(path, ("slots", "said", "swap_sim", "pair_sim"), "slot evidence cache", check)
    if saved is not None:
        return SlotEvidence.of(schema, saved["said"], saved["swap_sim"], saved["pair_sim"])
    ev = slot_evidence(emb, captions, schema)
    buf = io.BytesIO()
    np.savez(buf, slots=np.array(ev.slots, dtype=str), said=ev.said, swap_sim=ev.swap_sim, pair_sim=ev.pair_sim)
    atomic_write_bytes(path, buf.getvalue())
    return ev


def _slots_damage(arrays: dict[str, np.ndarray], schema: SlotSchema, n: int) -> str:
    """Why read slot evidence arrays do not fit ``schema`` and ``n`` captions, or ``""``."""
    n_slots = len(schema.slots)
    if tuple(arrays["slots"].tolist()) != tuple(schema.slots):
        return "its slots are not the schema's"
    said, swap, pair = arrays["said"], arrays["swap_sim"], arrays["pair_sim"]
    if said.shape != (n, n_slots) or swap.ndim != 3 or swap.shape[:2] != (n, n_slots) or pair.shape != (n,):
        return f"arrays of shapes {said.shape}, {swap.shape}, {pair.shape} for {n} pairs and {n_slots} slots"
    if said.min(initial=0) < -1 or not np.isfinite(pair).all():
        return "values out of range"
    return ""
