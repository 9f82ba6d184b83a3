"""The MPI3D-style experiment on rendered scenes: bias levels, named presets and scales.

Paper §7 trains on MPI3D with five semantic factors (colour, shape, size, camera height,
background) and two image-only ones (horizontal and vertical axis). Our scenes map them to
colour, shape, size, *position* (``pos_x`` and ``pos_y``, stated together like the camera height),
background; ``rotation``, ``lighting`` and ``texture`` are image-only, ``defect`` is drawn and
rendered but never stated (an omitted factor in every level), and the caption template is the
text-only factor.

- ``selection-k`` states the first ``k`` groups of colour, shape, size, position, background and
  omits the rest (nothing perturbed).
- ``perturbation-k`` states all five groups and perturbs ∅, {background}, {position, background},
  {size, position, background}, {shape, size, position, background} for k = 1..5.
- ``selection`` / ``perturbation`` run all five levels one after another into one table.

Perturbation follows the paper: with probability ``perturb_prob`` (0.9) a word is replaced by a
uniform draw over the factor's k values, *possibly the true one*. The injector of
:mod:`misalignlab.data.scenes.inject` always writes a *different* value, with its own probability q; a
different value is then each written with probability q/(k−1). Choosing q = p·(k−1)/k gives every
wrong value p/k and the true one 1 − p + p/k, exactly the paper's distribution, so
:meth:`Level.injection` converts instead of changing the injector. Code size is the number of
unbiased factors, at least 3 (paper §7), at the ``paper`` and ``tiny`` scales; ``code_dim`` > 0
overrides it for every level. The ``quick`` scale differs where a 2-core budget needs it to (why
each, with the measurements behind it: RESULTS.md §2.2–2.3): code size and steps read off a
measured sweep by the level's number of unbiased value combinations (``code_rule="swept"``,
``swept_steps``, :data:`SWEPT`), 8 spare code dimensions faded out between 20 % and 50 % of
training (``code_extra``, ``spare_fade``), an explicit alignment term ramped in between 30 % and
60 % (``align_ramp``), probes fitted on 10,240 scenes, and probes on unit-length codes
(``unit_codes``: the cosine loss ignores a code's norm, which then tracks omitted size and shape).

This module holds definitions only; the workflow is :mod:`misalignlab.workflows.imagetext_lab`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from misalignlab.config import check_scale
from misalignlab.data.scenes.factors import FACTORS, SEMANTIC
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.models.pair_model import ModelCfg
from misalignlab.registry import Registry
from misalignlab.train.pairs import LossCfg
from misalignlab.train.trainer import TrainCfg

GROUPS: dict[str, tuple[str, ...]] = {
    "colour": ("colour",),
    "shape": ("shape",),
    "size": ("size",),
    "position": ("pos_x", "pos_y"),
    "background": ("background",),
}
ORDER = ("colour", "shape", "size", "position", "background")  # the paper's selection order (cam. → position)
PERTURB_ORDER = ("background", "position", "size", "shape")  # perturbation k adds ORDER's tail from the end
PAPER_PERTURB_PROB = 0.9
MIN_CODE = 3
QUICK_STEPS = 1000
CODE_RULES = ("unbiased", "stated", "faithful", "swept")
# The quick scale's code size and training length by the number of unbiased value combinations
# (code_rule="swept", swept_steps): the smallest code, then the fewer steps, that met the criterion
# in a sweep over sizes at τ = 0.1 with 8 spare dimensions faded out (RESULTS.md §2.3).
# One size below loses shape; one to three above keep the never-stated defect. 144 and 3,888
# combinations need 2,000 steps (perturbation-3 and selection-5 reached shape 0.85 and 0.80–0.91
# at 1,000). Rows: (most combinations, code size, multiple of train.steps), ascending.
SWEPT = ((64, 3, 1), (144, 4, 2), (1296, 9, 1), (3888, 10, 2))


def _factors(groups: tuple[str, ...]) -> tuple[str, ...]:
    """Factor names of ``groups``, in canonical (``SEMANTIC``) order."""
    names = {f for g in groups for f in GROUPS[g]}
    return tuple(f for f in SEMANTIC if f in names)


def changed_prob(redraw_prob: float, n_values: int) -> float:
    """Probability of writing a *different* value when a word is redrawn uniformly with ``redraw_prob``."""
    return redraw_prob * (n_values - 1) / n_values


@dataclass(frozen=True)
class Level:
    """One bias setting: which factors captions state, which of those are perturbed, and how often."""

    name: str
    stated: tuple[str, ...]
    perturbed: tuple[str, ...] = ()
    perturb_prob: float = PAPER_PERTURB_PROB  # the paper's redraw probability (the redraw may hit the truth)

    def __post_init__(self) -> None:
        bad = [f for f in self.stated if f not in SEMANTIC]
        if bad or not self.stated:
            raise ValueError(f"level {self.name}: stated must be non-empty semantic factors; bad: {bad}")
        if not set(self.perturbed) <= set(self.stated):
            raise ValueError(f"level {self.name}: perturbed {self.perturbed} not all stated {self.stated}")
        if not 0.0 <= self.perturb_prob <= 1.0:
            raise ValueError(f"level {self.name}: perturb_prob {self.perturb_prob} is not in [0, 1]")

    @property
    def unbiased(self) -> tuple[str, ...]:
        return tuple(f for f in self.stated if f not in self.perturbed)

    @property
    def omitted(self) -> tuple[str, ...]:
        return tuple(f for f in SEMANTIC if f not in self.stated)

    @property
    def code_dim(self) -> int:
        """The paper's code size: the number of unbiased factors, at least 3."""
        return max(MIN_CODE, len(self.unbiased))

    @property
    def roomy_code_dim(self) -> int:
        """Two dimensions more than the stated factors (at least 3)."""
        return max(MIN_CODE, len(self.stated) + 2)

    @property
    def faithful_code_dim(self) -> int:
        """Two dimensions more than the unbiased factors (at least 3): the quick scale's code size.

        The same as :attr:`roomy_code_dim` on selection levels; on perturbation levels the room
        that perturbed words would take is withheld, so they have nowhere to stay.
        """
        return max(MIN_CODE, len(self.unbiased) + 2)

    @property
    def unbiased_combinations(self) -> int:
        """How many value combinations of the unbiased factors the code must tell apart."""
        return math.prod(FACTORS[f].n_values for f in self.unbiased)

    @property
    def swept(self) -> tuple[int, int] | None:
        """(code size, step multiple) measured for this many combinations (``SWEPT``); None beyond it."""
        n = self.unbiased_combinations
        return next(((d, k) for bound, d, k in SWEPT if n <= bound), None)

    @property
    def swept_code_dim(self) -> int:
        """The quick scale's measured code size; the faithful size beyond the measured range."""
        return self.swept[0] if self.swept else self.faithful_code_dim

    def role(self, factor: str) -> str:
        """stated | perturbed | omitted | image-only | text-only, for table rows."""
        if factor == "template":
            return "text-only"
        if factor not in SEMANTIC:
            return "image-only"
        return "perturbed" if factor in self.perturbed else "stated" if factor in self.stated else "omitted"

    def injection(self) -> InjectionCfg:
        """The injector config with the same caption distribution (see the module docstring)."""
        perturb = {f: changed_prob(self.perturb_prob, FACTORS[f].n_values) for f in self.perturbed}
        return InjectionCfg(omit=self.omitted, perturb=perturb)


def selection_level(k: int) -> Level:
    return Level(f"selection-{k}", _factors(ORDER[:k]))


def perturbation_level(k: int) -> Level:
    return Level(f"perturbation-{k}", _factors(ORDER), _factors(PERTURB_ORDER[: k - 1]))


PRESETS: Registry[tuple[Level, ...]] = Registry("imagetext preset")
for _k in range(1, 6):
    PRESETS.register(f"selection-{_k}")((selection_level(_k),))
    PRESETS.register(f"perturbation-{_k}")((perturbation_level(_k),))
PRESETS.register("selection")(tuple(selection_level(k) for k in range(1, 6)))
PRESETS.register("perturbation")(tuple(perturbation_level(k) for k in range(1, 6)))


@dataclass(frozen=True)
class ImageTextLabCfg:
    """One run of the experiment: a preset's levels at a scale. ``code_dim`` 0 = each level's own."""

    preset: str
    scale: str
    train: TrainCfg
    model: ModelCfg = field(default_factory=ModelCfg)  # its code_dim is replaced per level by code_for()
    loss: LossCfg = field(default_factory=LossCfg)
    code_dim: int = 0  # > 0: this size for every level, whatever code_rule says
    code_rule: str = "unbiased"
    n_train: int = 16_384
    n_fit: int = 2048
    n_test: int = 2048
    probes: tuple[str, ...] = ("linear", "mlp")
    unit_codes: bool = False  # probe ẑ/‖ẑ‖ (what a cosine loss sees) instead of ẑ (the paper's probes)
    # (start, end) fractions: loss.align_weight ramps in; (0, 0): from step 0
    align_ramp: tuple[float, float] = (0.0, 0.0)
    swept_steps: bool = False  # levels train train.steps × the multiple SWEPT gives their combinations
    code_extra: int = 0  # spare code dimensions trained beyond each level's code size …
    spare_fade: tuple[float, float] = (0.0, 0.0)  # … and faded out between these fractions; (0, 0): kept
    seed: int = 0
    threads: int = 0  # 0: torch's default
    checkpoint_every: int = 500
    log_every: int = 50
    curve_every: int = 0  # > 0: MCC of the image code (MLP probe) every this many steps
    curve_n: int = 1000  # fit and test pairs used for that curve

    def __post_init__(self) -> None:
        PRESETS.get(self.preset)
        check_scale(self.scale)
        if self.code_rule not in CODE_RULES:
            raise ValueError(f"unknown code_rule {self.code_rule!r}; valid: {', '.join(CODE_RULES)}")
        start, end = self.align_ramp
        if (start, end) != (0.0, 0.0) and not 0.0 <= start < end <= 1.0:
            raise ValueError(
                f"align_ramp must be (0, 0) or (start, end) with 0 <= start < end <= 1, got {self.align_ramp}"
            )
        if (start, end) != (0.0, 0.0) and "align_weight" not in self.loss.kwargs():
            raise ValueError(f"align_ramp needs a loss with an alignment term; {self.loss.variant!r} has none")
        if min(self.n_train, self.n_fit, self.n_test) < 1 or min(self.code_dim, self.code_extra, self.curve_every) < 0:
            raise ValueError("n_train, n_fit, n_test must be >= 1; code_dim, code_extra and curve_every >= 0")
        fade = tuple(self.spare_fade)
        if fade != (0.0, 0.0) and not (0.0 <= fade[0] < fade[1] <= 1.0 and self.code_extra > 0):
            raise ValueError(
                f"spare_fade must be (0, 0) or (start, end) with 0 <= start < end <= 1 and code_extra > 0, "
                f"got {self.spare_fade} with code_extra={self.code_extra}"
            )

    @property
    def levels(self) -> tuple[Level, ...]:
        return PRESETS.get(self.preset)

    def code_for(self, level: Level) -> int:
        """The level's trained code size (after any spare dimensions are faded out)."""
        if self.code_dim:
            return self.code_dim
        rules = {
            "unbiased": level.code_dim,
            "stated": level.roomy_code_dim,
            "faithful": level.faithful_code_dim,
            "swept": level.swept_code_dim,
        }
        return rules[self.code_rule]

    def train_for(self, level: Level) -> TrainCfg:
        """The level's training settings: ``train``, with the sweep's step multiple if ``swept_steps``."""
        if not self.swept_steps or level.swept is None:
            return self.train
        return replace(self.train, steps=self.train.steps * level.swept[1])


# Every scale's settings, as data: ``tiny`` for tests, ``quick`` for 2 CPU cores, ``paper`` as published (§7:
# ResNet-18, Adam 1e-5, batch 256, 200k steps, τ = 1, variant (b) as the paper's code).
SCALE_SETTINGS: dict[str, dict[str, Any]] = {
    "paper": dict(
        train=TrainCfg(steps=200_000, batch_size=256, lr=1e-5, grad_clip=2.0),
        model=ModelCfg(image="resnet18", text="tiny", image_size=64, max_len=16),
        loss=LossCfg("ntxent_intra_modal", tau=1.0),
        n_train=414_720,
        n_fit=23_040,
        n_test=23_040,
        checkpoint_every=5000,
        log_every=500,
    ),
    "quick": dict(
        train=TrainCfg(steps=QUICK_STEPS, batch_size=256, lr=2e-3, schedule="cosine", warmup_steps=100),
        model=ModelCfg(image="tiny", text="tiny", image_size=64, max_len=16),
        loss=LossCfg("clip_cross_modal", tau=0.1, align_weight=1.0),
        code_rule="swept",
        code_extra=8,
        spare_fade=(0.2, 0.5),
        swept_steps=True,
        n_train=16_384,
        n_fit=10_240,
        n_test=2048,
        unit_codes=True,
        align_ramp=(0.3, 0.6),
    ),
    "tiny": dict(
        train=TrainCfg(steps=12, batch_size=32, lr=2e-3, schedule="cosine", warmup_steps=2),
        model=ModelCfg(image="tiny", text="tiny", image_size=32, max_len=16),
        loss=LossCfg("clip_cross_modal", tau=0.1),
        n_train=128,
        n_fit=96,
        n_test=96,
        probes=("linear",),
        checkpoint_every=4,
        log_every=4,
    ),
}


def lab_config(preset: str, scale: str) -> ImageTextLabCfg:
    """A preset at a scale (:data:`SCALE_SETTINGS`)."""
    PRESETS.get(preset)
    return ImageTextLabCfg(preset, check_scale(scale), **SCALE_SETTINGS[scale])
