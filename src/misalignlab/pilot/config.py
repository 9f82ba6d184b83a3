"""Settings of a pilot: the money (cost model), the downstream task, and the time box.

A pilot answers *clean the captions, adapt the model, or stop?* The answer depends on what the
user values (:class:`CostModel`), on what the model is for (:class:`PilotTask`: which factors it
must recognise, and which nuisance factors shift between training and deployment) and on how much
compute the question may take (:class:`PilotCfg`). All frozen; build them from a JSON task file
with :func:`misalignlab.config.from_dict` (unknown keys are rejected, naming the valid ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from misalignlab.data.scenes.factors import SEMANTIC, check_factor_names
from misalignlab.data.scenes.shift import FactorShift
from misalignlab.detect.backends import parse_backbone
from misalignlab.detect.pipeline import DIAGNOSE_STEPS
from misalignlab.models.pair_model import ModelCfg


@dataclass(frozen=True)
class CostModel:
    """What fixing a caption costs and what an accuracy point is worth (same currency).

    ``min_gain_points``: a gain smaller than this (in accuracy points, 0–100) counts as no gain, so
    seed noise never justifies spending. ``adapt_cost``: a fixed cost of adopting a model-side
    strategy (engineering time), 0 by default.
    """

    cost_per_caption: float = 0.05
    value_per_point: float = 100.0
    min_gain_points: float = 2.0
    adapt_cost: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cost_per_caption", "value_per_point", "min_gain_points", "adapt_cost"):
            if getattr(self, name) < 0:
                raise ValueError(f"cost.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class PilotTask:
    """What the model is for.

    ``tasks``: factors the deployed model must recognise (scored by linear probes on its image
    codes; rendered data only: a user's pairs are scored by retrieval). ``nuisance``: stated
    factors expected to shift at deployment; the ``augment`` option leaves them out of the
    captions. On rendered data they are scene factors; on a user's pairs, slots of the caption
    vocabulary (a slot's name, or one of its words or values, e.g. ``red`` for the colour slot).
    ``deploy_shifts``: the shifted test distribution (empty: the deployment looks like the training
    data, and the in-distribution score decides). ``train_shifts``: spurious correlations of the
    built-in training data (rendered data only).

    Names are checked against the scene factors by :meth:`check_scene_factors` when the data is
    rendered, and against the vocabulary when it is a user's (:mod:`misalignlab.pilot.vocabulary`).
    """

    tasks: tuple[str, ...] = ("shape",)
    nuisance: tuple[str, ...] = ()
    deploy_shifts: tuple[FactorShift, ...] = ()
    train_shifts: tuple[FactorShift, ...] = ()

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("task.tasks must name at least one factor")
        both = sorted(set(self.tasks) & set(self.nuisance))
        if both:
            raise ValueError(f"task.nuisance {both} are also tasks: a factor cannot be both")

    def check_scene_factors(self) -> None:
        """Raise ``ValueError`` (naming the setting and the valid factors) unless every name is a scene factor."""
        check_factor_names(self.tasks, "task.tasks")
        check_factor_names(self.nuisance, "task.nuisance", SEMANTIC)

    @property
    def split(self) -> str:
        """The test split that decides: ``ood`` when a deployment shift is declared, else ``id``."""
        return "ood" if self.deploy_shifts else "id"


def _default_model() -> ModelCfg:
    return ModelCfg(image_size=32, code_dim=16, max_len=16)


@dataclass(frozen=True)
class PilotCfg:
    """Sizes and the time box of one pilot.

    ``budget_minutes`` bounds the whole pilot (ingest to report). After the diagnosis the planner
    measures the training speed and picks the steps per run (``min_steps``..``max_steps``) and the
    number of seeds (1..``seeds``) so that every option runs for every seed within the budget.
    ``clean_fractions``: the cleaning curve's points (share of pairs, most suspicious first, that a
    person reviews and fixes). ``adapt``: model-side options tried; ``augment`` and ``multipositive``
    only where they apply (a nuisance factor or slot to leave out; a caption vocabulary on a user's
    pairs: :mod:`misalignlab.pilot.vocabulary`), the report naming the others and why.

    The diagnosis is the ``diagnose`` command's, with its defaults: ``backbone`` and ``schema`` as
    there (``auto``: ``text:minilm`` when the hf extra is installed; the caption vocabulary inferred
    from the captions), the same thresholds. The time box may only shorten its fold training:
    ``detect_steps`` caps it (default: ``diagnose``'s own steps) and ``detect_share`` is the share of
    the budget it may take; the report says what the budget cut.
    """

    budget_minutes: float = 5.0
    cost: CostModel = field(default_factory=CostModel)
    task: PilotTask = field(default_factory=PilotTask)
    n_train: int = 2048
    n_fit: int = 800
    n_test: int = 800
    clean_fractions: tuple[float, ...] = (0.1, 0.2, 0.3)
    adapt: tuple[str, ...] = ("filter", "reweight", "augment")
    seeds: int = 3
    min_steps: int = 100
    max_steps: int = 600
    batch_size: int = 128
    lr: float = 2e-3
    detect_steps: int = DIAGNOSE_STEPS  # most training steps per fold model (the budget may allow fewer)
    detect_share: float = 0.2  # at most this share of the budget goes to the diagnosis's fold training
    model: ModelCfg = field(default_factory=_default_model)
    data_seed: int = 0
    threads: int = 1  # torch threads; tiny models run fastest on one
    gallery: int = 24  # most suspicious pairs shown in the report
    backbone: str = "auto"  # the diagnosis's embeddings, as ``diagnose --backbone`` (see detect.backends)
    schema: str = (
        "auto"  # the caption vocabulary, as ``diagnose --schema``: auto | none | scenes | fashion_mnist | FILE
    )

    def __post_init__(self) -> None:
        if self.budget_minutes <= 0:
            raise ValueError(f"budget_minutes must be > 0, got {self.budget_minutes}")
        if not self.clean_fractions or not all(0.0 < k < 1.0 for k in self.clean_fractions):
            raise ValueError(f"clean_fractions must be in (0, 1), got {self.clean_fractions}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if self.seeds < 1 or self.batch_size < 2 or min(self.n_train, self.n_fit, self.n_test) < 2:
            raise ValueError("seeds >= 1, batch_size >= 2 and n_train / n_fit / n_test >= 2 are required")
        if self.backbone != "auto":  # auto resolves (and warns) where it is used
            parse_backbone(self.backbone)  # unknown specs raise here, before any work
        if not self.schema:
            raise ValueError("schema must be auto, none, a built-in vocabulary name or a vocabulary file")
        if self.detect_steps < 1 or not 0.0 < self.detect_share <= 1.0:
            raise ValueError(
                f"need detect_steps >= 1 and detect_share in (0, 1], got {self.detect_steps}, {self.detect_share}"
            )
        unknown = sorted(set(self.adapt) - {"filter", "reweight", "robust", "augment", "multipositive"})
        if unknown:
            raise ValueError(
                f"unknown adapt option(s) {unknown}; valid: filter, reweight, robust, augment, multipositive"
            )
