"""Selection and perturbation bias as explicit index sets, and the paper's integer codes.

Indices are 0-based everywhere in misalignlab (``selected=(0, 1)`` means s1, s2 of the paper).
The paper's θ ranks I_θ among the non-empty subsets of {1..n_s} listed by size, then
lexicographically; ρ ranks the *proper* subsets of I_θ the same way with ∅ first (the paper's tables).
Only :meth:`BiasSpec.from_paper_codes` / :meth:`BiasSpec.paper_codes` speak that language.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

NOISE_MODELS = ("gaussian",)


@dataclass(frozen=True)
class BiasSpec:
    """Which semantic factors the text states (I_θ) and which of those it may state wrongly (I_ρ).

    Parameters
    ----------
    selected : indices of I_θ, the factors the caption mentions (non-empty).
    perturbed : indices of I_ρ ⊊ I_θ, factors the caption may misstate (possibly empty).
    perturb_prob : probability that each factor in I_ρ is redrawn for a given pair.
    noise : how a perturbed coordinate is redrawn; ``"gaussian"``: s̃ = s + ε, ε ~ N(0, Σ_ε).
    """

    selected: tuple[int, ...]
    perturbed: tuple[int, ...] = ()
    perturb_prob: float = 0.75
    noise: str = "gaussian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "selected", tuple(sorted(int(i) for i in self.selected)))
        object.__setattr__(self, "perturbed", tuple(sorted(int(i) for i in self.perturbed)))

        if not self.selected:
            raise ValueError("bias.selected (I_θ) must not be empty: a caption must state something")
        if len(set(self.selected)) != len(self.selected):
            raise ValueError(f"bias.selected has repeated indices: {self.selected}")
        outside = [i for i in self.perturbed if i not in self.selected]
        if outside:
            raise ValueError(f"bias.perturbed indices {outside} are not in bias.selected: I_ρ must be a subset of I_θ")
        if len(set(self.perturbed)) != len(self.perturbed):
            raise ValueError(f"bias.perturbed has repeated indices: {self.perturbed}")
        if set(self.perturbed) == set(self.selected):
            raise ValueError(
                "bias.perturbed must be a proper subset of bias.selected: at least one factor stays faithful"
            )
        if not 0.0 <= self.perturb_prob <= 1.0:
            raise ValueError(f"bias.perturb_prob must be in [0, 1], got {self.perturb_prob}")
        if self.perturbed and self.perturb_prob == 0.0:
            raise ValueError("bias.perturb_prob is 0 while bias.perturbed is non-empty: Assumption 3.2 needs p > 0")
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"bias.noise must be one of {NOISE_MODELS}, got {self.noise!r}")
        negative = [i for i in self.selected if i < 0]
        if negative:
            raise ValueError(f"bias.selected indices {negative} are negative (indices are 0-based)")

    @property
    def unbiased(self) -> tuple[int, ...]:
        """U = I_θ \\ I_ρ: the factors the theorem says MMCL recovers."""
        return tuple(i for i in self.selected if i not in self.perturbed)

    def check(self, n_semantic: int) -> BiasSpec:
        """This spec if its indices fit a model of ``n_semantic`` factors (I_θ ⊆ {0..n_semantic-1}), else ``ValueError``.

        Everything else (∅ ≠ I_θ, I_ρ ⊊ I_θ, the probability, the noise model) is checked on construction."""
        bad = [i for i in self.selected if not 0 <= i < n_semantic]
        if bad:
            raise ValueError(f"bias.selected indices {bad} are outside 0..{n_semantic - 1} (n_semantic={n_semantic})")
        return self

    @classmethod
    def from_paper_codes(cls, theta: int, rho: int, n_semantic: int = 10, perturb_prob: float = 0.75) -> BiasSpec:
        """Convert the paper's 1-based integer θ, ρ codes (ρ = 1 is I_ρ = ∅) to explicit sets."""
        n_theta = 2**n_semantic - 1
        if not 1 <= theta <= n_theta:
            raise ValueError(f"paper code theta must be in 1..{n_theta} for n_semantic={n_semantic}, got {theta}")
        selected = unrank_subset(list(range(n_semantic)), theta - 1, min_size=1)
        n_rho = 2 ** len(selected) - 1  # proper subsets, ∅ included
        if not 1 <= rho <= n_rho:
            raise ValueError(f"paper code rho must be in 1..{n_rho} for theta={theta}, got {rho}")
        perturbed = unrank_subset(list(selected), rho - 1, min_size=0)
        return cls(selected=selected, perturbed=perturbed, perturb_prob=perturb_prob).check(n_semantic)

    def paper_codes(self, n_semantic: int = 10) -> tuple[int, int]:
        """The paper's (θ, ρ) for this spec; inverse of :meth:`from_paper_codes`."""
        self.check(n_semantic)
        theta = rank_subset(list(range(n_semantic)), self.selected, min_size=1) + 1
        rho = rank_subset(list(self.selected), self.perturbed, min_size=0) + 1
        return theta, rho

    def describe(self) -> str:
        """Human-readable 1-based form, e.g. ``I_θ=[8] I_ρ=[2]``."""
        return f"I_θ={_fmt(self.selected)} I_ρ={_fmt(self.perturbed)}"


def _fmt(idx: tuple[int, ...]) -> str:
    if not idx:
        return "∅"
    one_based = [i + 1 for i in idx]
    if one_based == list(range(1, len(one_based) + 1)) and len(one_based) > 1:
        return f"[{len(one_based)}]"
    return "{" + ",".join(map(str, one_based)) + "}"


def _lex_rank(items: list[int], subset: tuple[int, ...]) -> int:
    """Rank of a k-subset among all k-subsets of ``items`` in lexicographic (itertools) order."""
    n, k = len(items), len(subset)
    pos = [items.index(x) for x in subset]
    rank, prev = 0, -1
    for slot, p in enumerate(pos):
        for skipped in range(prev + 1, p):
            rank += comb(n - skipped - 1, k - slot - 1)
        prev = p
    return rank


def rank_subset(items: list[int], subset: tuple[int, ...], min_size: int) -> int:
    """0-based rank of ``subset`` among subsets of ``items`` of size ≥ min_size, by size then lex."""
    n, k = len(items), len(subset)
    before = sum(comb(n, size) for size in range(min_size, k))
    return before + _lex_rank(items, tuple(subset))


def unrank_subset(items: list[int], rank: int, min_size: int) -> tuple[int, ...]:
    """Inverse of :func:`rank_subset`."""
    n = len(items)
    size = min_size
    while rank >= comb(n, size):
        rank -= comb(n, size)
        size += 1
    out: list[int] = []
    start = 0
    for slot in range(size):
        for cand in range(start, n):
            block = comb(n - cand - 1, size - slot - 1)
            if rank < block:
                out.append(items[cand])
                start = cand + 1
                break
            rank -= block
    return tuple(out)
