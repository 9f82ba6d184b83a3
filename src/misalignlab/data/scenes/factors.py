"""Factor specifications and the scene config for the rendered production-line scenes.

Each scene shows one machine part on a conveyor belt. A factor is either *discrete* (a tuple of
value words, stored as integer codes) or *continuous* (a float in ``[0, 1)``), and either
*semantic* (captions may state it, ``s`` in the paper's notation) or *image-only* (``m_x``:
captions never state it). This module holds only the specs, the RGB palettes and
:class:`SceneCfg`; sampling and drawing live in :mod:`misalignlab.data.scenes.render`, words and
templates in :mod:`misalignlab.data.scenes.captions`.

Value words are unique across all factors (``grey`` is a belt, never a part colour), so a
caption word identifies its slot without context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Factor:
    """One generative factor of a scene.

    Parameters
    ----------
    name : str
        Column name in factor tables.
    values : tuple of str
        Canonical value words for a discrete factor (code ``k`` ↔ ``values[k]``); empty for a
        continuous factor.
    stated : bool
        Whether captions may state it (semantic factor) or never do (image-only factor).
    synonyms : mapping of str to tuple of str
        Optional alternative words per canonical value word, used when synonyms are on.
    default : float
        Value held when the factor is inactive (a code for discrete factors); for the
        continuous factors it is the neutral setting (no rotation, flat light, no noise).
    """

    name: str
    values: tuple[str, ...] = ()
    stated: bool = True
    synonyms: Mapping[str, tuple[str, ...]] | None = None
    default: float = 0

    @property
    def discrete(self) -> bool:
        return bool(self.values)

    @property
    def n_values(self) -> int:
        return len(self.values)

    def words(self, value: str) -> tuple[str, ...]:
        """The canonical word followed by its synonyms."""
        return (value, *((self.synonyms or {}).get(value, ())))


FACTOR_LIST: tuple[Factor, ...] = (
    Factor(
        "shape",
        ("bolt", "gear", "bracket", "nut", "washer", "spring"),
        synonyms={"bolt": ("screw",), "gear": ("cog",), "spring": ("coil",)},
    ),
    Factor(
        "colour",
        ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"),
        synonyms={"purple": ("violet",), "cyan": ("turquoise",)},
    ),
    Factor("size", ("small", "medium", "large"), synonyms={"small": ("little",), "large": ("big",)}),
    Factor("pos_x", ("left", "centre", "right"), synonyms={"centre": ("center",)}, default=1),
    Factor("pos_y", ("top", "middle", "bottom"), default=1),
    Factor("background", ("grey", "black", "white"), synonyms={"grey": ("gray",)}),
    Factor(
        "defect",
        ("intact", "scratched", "dented", "cracked"),
        synonyms={"intact": ("undamaged",), "cracked": ("fractured",)},
    ),
    Factor("rotation", stated=False),  # angle = 2π · value
    Factor("lighting", stated=False),  # strength of a diagonal brightness gradient
    Factor("texture", stated=False),  # amplitude of seeded grain noise
)
FACTORS: dict[str, Factor] = {f.name: f for f in FACTOR_LIST}
FACTOR_NAMES: tuple[str, ...] = tuple(FACTORS)
SEMANTIC: tuple[str, ...] = tuple(f.name for f in FACTOR_LIST if f.stated)
IMAGE_ONLY: tuple[str, ...] = tuple(f.name for f in FACTOR_LIST if not f.stated)

# RGB palettes, index = code. Part colours are saturated mid-tones, far apart in hue, so they
# stay nameable under ±30 % lighting; belts are neutral greys that share no name with a part.
PART_RGB = np.array(
    [
        (215, 35, 35),  # red
        (245, 140, 20),  # orange
        (235, 215, 35),  # yellow
        (40, 170, 55),  # green
        (30, 205, 215),  # cyan
        (35, 70, 215),  # blue
        (135, 45, 190),  # purple
        (245, 125, 190),  # pink
    ],
    dtype=np.float32,
)
BELT_RGB = np.array([(128, 128, 128), (28, 28, 28), (228, 228, 228)], dtype=np.float32)
SIZE_FRAC = np.array([0.10, 0.135, 0.17], dtype=np.float32)  # part radius / image side
CELL_FRAC = np.array([0.22, 0.5, 0.78], dtype=np.float32)  # grid-cell centre / image side
LIGHT_GAIN = 0.3  # lighting=1 scales brightness by 1 ± 0.3 across the diagonal
TEXTURE_GAIN = 28.0  # texture=1 adds grain of amplitude ±28 grey levels

CAUSAL_LINKS = {"colour": ("pos_x", "pos_y"), "defect": ("size",)}


@dataclass(frozen=True)
class SceneCfg:
    """How scenes are sampled and drawn.

    Parameters
    ----------
    size : int
        Image side in pixels (square images), even and at least 32.
    factors : tuple of str
        Active factors; inactive ones are held at their :attr:`Factor.default` and are never
        stated in captions.
    causal : bool
        If true, some factors depend on others (as in Causal3DIdent): ``colour`` on
        ``(pos_x, pos_y)`` and ``defect`` on ``size`` (larger parts are more often damaged).
        Image-only factors always stay independent.
    """

    size: int = 64
    factors: tuple[str, ...] = FACTOR_NAMES
    causal: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 32 or self.size % 2:
            raise ValueError(f"size must be an even integer >= 32, got {self.size!r}")
        unknown = [f for f in self.factors if f not in FACTORS]
        if unknown:
            raise ValueError(f"unknown factor(s) {unknown} in factors; valid: {', '.join(FACTOR_NAMES)}")
        if len(set(self.factors)) != len(self.factors):
            raise ValueError(f"factors lists a factor twice: {list(self.factors)}")

    @property
    def stateable(self) -> tuple[str, ...]:
        """Active semantic factors, in canonical order."""
        return tuple(f for f in SEMANTIC if f in self.factors)


def check_factor_names(names: Iterable[str], setting: str, allowed: tuple[str, ...] = SEMANTIC) -> None:
    """Raise ``ValueError`` naming ``setting`` unless every name is an allowed factor."""
    for name in names:
        if name in IMAGE_ONLY and name not in allowed:
            raise ValueError(f"{setting}: {name!r} is image-only and never stated; valid: {', '.join(allowed)}")
        if name not in allowed:
            raise ValueError(f"{setting}: unknown factor {name!r}; valid: {', '.join(allowed)}")
