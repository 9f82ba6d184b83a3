"""Write free-form captions with planted misalignment, and the per-pair ground truth.

Per pair, a pattern, filler phrases and a phrase choice per slot are drawn from one
:class:`~misalignlab.data.freeform.phrasing.Style`, and one kind is drawn with the :class:`FreeformCfg` rates:

- ``wrong``: exactly one stated factor (uniformly among the factors the pattern states; a slot such
  as ``pos`` states two) takes a different value, drawn uniformly, and its slot is written with a
  phrase of that value (same phrase choice);
- ``incomplete``: one droppable slot the pattern states (uniformly) is left out; a noun slot is
  written as a generic noun instead;
- ``unrelated``: the clean caption of another pair whose image differs from this pair's in at least
  ``min_differ`` of the factors that caption states;
- ``aligned`` otherwise. A pattern that states fewer factors still gives an aligned caption.

The clean caption of a pair uses the pattern, fillers and phrase choices of its caption as written
(for an unrelated pair: those of the borrowed caption) with this pair's true values.
This module neither samples factors nor draws images.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from misalignlab.data.freeform.phrasing import Slot, Style, pattern_slots, render

log = logging.getLogger(__name__)

from misalignlab.kinds import KINDS  # noqa: E402  (re-exported: the writers' truth uses the project's kinds)

STYLES = ("a", "b")
TRUTH_COLUMNS = (
    "pair",
    "kind",
    "pattern",
    "stated",
    "dropped",
    "changed",
    "said",
    "said_value",
    "true",
    "source",
    "clean_caption",
    "caption",
)
_BIG = 1 << 30  # phrase choices are drawn once per pair and slot, then taken modulo each list's length


@dataclass(frozen=True)
class FreeformCfg:
    """Which writing style, and how much misalignment to plant.

    Parameters
    ----------
    style : str
        ``"a"`` (to develop on) or ``"b"`` (different wording, to report on).
    incomplete, wrong, unrelated : float
        Per-pair probability of each kind; each in ``[0, 1]``, their sum at most 1.
    min_differ : int
        Factors (among those the borrowed caption states) in which an unrelated caption's image
        must differ from the pair's own image.
    """

    style: str = "a"
    incomplete: float = 0.0
    wrong: float = 0.0
    unrelated: float = 0.0
    min_differ: int = 2

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        for name in ("incomplete", "wrong", "unrelated"):
            rate = getattr(self, name)
            if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} = {rate!r} is not a probability in [0, 1]")
        total = self.incomplete + self.wrong + self.unrelated
        if total > 1.0 + 1e-9:
            raise ValueError(f"incomplete + wrong + unrelated = {total:g} exceeds 1")
        if not isinstance(self.min_differ, int) or self.min_differ < 1:
            raise ValueError(f"min_differ must be an integer >= 1, got {self.min_differ!r}")


@dataclass(frozen=True)
class Domain:
    """The slots a dataset's captions state and the value words of the factors behind them.

    ``values[factor][k]`` is the canonical word of code ``k``.
    """

    slots: tuple[Slot, ...]
    values: Mapping[str, tuple[str, ...]]

    def slot(self, name: str) -> Slot:
        return next(s for s in self.slots if s.name == name)

    def slot_value(self, name: str, codes: Mapping[str, int]) -> int:
        """Mixed-radix value of slot ``name`` from factor codes."""
        v = 0
        for f in self.slot(name).factors:
            v = v * len(self.values[f]) + int(codes[f])
        return v

    def stated(self, pattern: str) -> list[str]:
        """Factors a pattern states, in the order of :attr:`slots`."""
        names = {s for s, _ in pattern_slots(pattern)}
        return [f for s in self.slots if s.name in names for f in s.factors]


@dataclass(frozen=True)
class _Draws:
    """Everything random about one pair's caption, drawn up front so a seed fixes every caption."""

    pattern: np.ndarray  # (n,) pattern index
    choice: np.ndarray  # (n, n_slots) phrase choices
    lead: np.ndarray  # (n,)
    tail: np.ndarray  # (n,)
    generic: np.ndarray  # (n,)
    kind: np.ndarray  # (n,) index into KINDS
    pick: np.ndarray  # (n,) in [0, 1): which factor / slot a wrong or incomplete pair touches
    shift: np.ndarray  # (n,) offset to a different value


def plant(
    codes: Mapping[str, np.ndarray], domain: Domain, style: Style, cfg: FreeformCfg, rng: np.random.Generator
) -> tuple[list[str], pd.DataFrame]:
    """Caption every pair in ``style`` with planted misalignment.

    Parameters
    ----------
    codes : mapping of str to numpy.ndarray
        Factor → ``(n,)`` integer codes of the true values, for every factor of ``domain``.
    domain : Domain
        Slots and factor value words.
    style : Style
        Patterns and words.
    cfg : FreeformCfg
        Rates of each kind.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    captions : list of str
    truth : pandas.DataFrame
        One row per pair, columns :data:`TRUTH_COLUMNS`: ``pair``, ``kind``, ``pattern`` (of the
        caption as written), ``stated`` / ``dropped`` / ``changed`` (factor names), ``said`` (the
        phrase written for the wrong factor's slot), ``said_value`` and ``true`` (the wrong and the
        right value word), ``source`` (row of an unrelated caption's image, else -1),
        ``clean_caption`` and ``caption``.
    """
    table = {f: np.asarray(codes[f], dtype=np.int64) for s in domain.slots for f in s.factors}
    n = len(next(iter(table.values())))
    d = _draw(n, len(style.patterns), len(domain.slots), style, cfg, rng)
    row_codes = [{f: int(c[i]) for f, c in table.items()} for i in range(n)]
    own = [_write(domain, style, d, i, row_codes[i]) for i in range(n)]
    source = _sources(table, domain, style, d, cfg.min_differ, rng)
    rows = []
    for i in range(n):
        kind = KINDS[d.kind[i]]
        row = {"pair": i, "kind": kind, "pattern": int(d.pattern[i]), "dropped": [], "changed": []}
        row |= {"said": "", "said_value": "", "true": "", "source": -1, "clean_caption": own[i], "caption": own[i]}
        row["stated"] = domain.stated(style.patterns[d.pattern[i]])
        if kind == "unrelated" and source[i] >= 0:
            j = int(source[i])
            row |= {"pattern": int(d.pattern[j]), "stated": domain.stated(style.patterns[d.pattern[j]]), "source": j}
            row |= {"clean_caption": _write(domain, style, d, j, row_codes[i]), "caption": own[j]}
        elif kind == "wrong":
            row |= _wrong(domain, style, d, i, row_codes[i], row["stated"])
        elif kind == "incomplete":
            row |= _incomplete(domain, style, d, i, row_codes[i], row["stated"])
        else:
            row["kind"] = "aligned"  # also an unrelated draw that found no image different enough
        rows.append(row)
    truth = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    return truth["caption"].tolist(), truth


def _draw(n: int, n_patterns: int, n_slots: int, style: Style, cfg: FreeformCfg, rng: np.random.Generator) -> _Draws:
    edges = np.cumsum([cfg.incomplete, cfg.wrong, cfg.unrelated])
    kind = np.searchsorted(edges, rng.random(n), side="right")  # 0 incomplete, 1 wrong, 2 unrelated, 3 aligned
    return _Draws(
        pattern=rng.integers(n_patterns, size=n),
        choice=rng.integers(_BIG, size=(n, n_slots)),
        lead=rng.integers(len(style.leads), size=n),
        tail=rng.integers(len(style.tails), size=n),
        generic=rng.integers(max(1, len(style.generic)), size=n),
        kind=np.array([1, 2, 3, 0])[kind],  # → index into KINDS
        pick=rng.random(n),
        shift=rng.integers(_BIG, size=n),
    )


def _write(domain: Domain, style: Style, d: _Draws, i: int, codes: Mapping[str, int], drop: str | None = None) -> str:
    """Pair ``i``'s pattern, fillers and choices written with ``codes``, leaving out slot ``drop``."""
    pattern = style.patterns[d.pattern[i]]
    keys = dict(pattern_slots(pattern))  # slot → word list of the form the pattern uses
    phrases, fill = {}, {"lead": style.leads[d.lead[i]], "tail": style.tails[d.tail[i]]}
    for k, s in enumerate(domain.slots):
        if s.name not in keys:
            continue
        if s.name == drop:
            if s.noun:
                fill[s.name] = style.generic[d.generic[i]]
            continue
        phrases[s.name] = style.phrase(keys[s.name], domain.slot_value(s.name, codes), int(d.choice[i, k]))
    return render(pattern, phrases, fill, style.plural).text


def _incomplete(domain: Domain, style: Style, d: _Draws, i: int, codes: Mapping[str, int], stated: list[str]) -> dict:
    keys = dict(pattern_slots(style.patterns[d.pattern[i]]))
    names = [s.name for s in domain.slots if s.droppable and s.name in keys]  # never empty: check_style
    gone = names[int(d.pick[i] * len(names))]
    dropped = list(domain.slot(gone).factors)
    return {
        "dropped": dropped,
        "stated": [f for f in stated if f not in dropped],
        "caption": _write(domain, style, d, i, codes, drop=gone),
    }


def _wrong(domain: Domain, style: Style, d: _Draws, i: int, codes: Mapping[str, int], stated: list[str]) -> dict:
    factor = stated[int(d.pick[i] * len(stated))]
    k = len(domain.values[factor])
    said_code = (codes[factor] + 1 + int(d.shift[i]) % (k - 1)) % k
    said_codes = {**codes, factor: said_code}
    slot = next(s for s in domain.slots if factor in s.factors)
    key = dict(pattern_slots(style.patterns[d.pattern[i]]))[slot.name]
    said = style.phrase(key, domain.slot_value(slot.name, said_codes), int(d.choice[i, domain.slots.index(slot)]))
    return {
        "changed": [factor],
        "said": said,
        "said_value": domain.values[factor][said_code],
        "true": domain.values[factor][codes[factor]],
        "caption": _write(domain, style, d, i, said_codes),
    }


def _sources(
    table: Mapping[str, np.ndarray], domain: Domain, style: Style, d: _Draws, min_differ: int, rng: np.random.Generator
) -> np.ndarray:
    """For each unrelated pair, another pair whose image differs in ≥ ``min_differ`` stated factors; else -1."""
    factors = list(table)
    stated = np.array([[f in domain.stated(p) for f in factors] for p in style.patterns])  # (P, F)
    mat = np.stack([table[f] for f in factors], axis=1)  # (n, F)
    n = len(mat)
    source = np.full(n, -1, dtype=np.int64)
    todo = np.flatnonzero(d.kind == KINDS.index("unrelated"))
    for _ in range(64 if n > 1 else 0):
        if not todo.size:
            break
        cand = rng.integers(n - 1, size=todo.size)
        cand += cand >= todo  # uniform over the other pairs
        differ = ((mat[cand] != mat[todo]) & stated[d.pattern[cand]]).sum(axis=1)
        ok = differ >= min_differ
        source[todo[ok]] = cand[ok]
        todo = todo[~ok]
    if todo.size:
        log.warning("%d pair(s) drawn as unrelated stay aligned: no other image differs enough", todo.size)
    return source
