"""Scenarios and configs for the side-by-side strategy comparison (``misalignlab compare``).

A :class:`Scenario` says how training scenes are sampled and captioned (scene config, injected
misalignment, spurious correlations planted by :class:`~misalignlab.data.scenes.shift.FactorShift`),
what the shifted (OOD) test distribution is, which factors are the tasks, and each strategy's
default settings. Two presets reproduce the paper's practical guidance (Cai et al., NeurIPS 2025):

- ``perturb-shape``: 30 % of captions name a wrong shape (a task factor): negate (``filter``,
  ``reweight``) should beat ``baseline`` on shape in distribution.
- ``shift-background``: the belt colour is stated and, in training, follows the shape 90 % of the
  time; at test time it is anti-correlated (shape + 1). ``augment`` omitting it (Cor. 4.2) should
  beat ``baseline`` out of distribution.

``tiny`` is for tests. Definitions only; the workflow is :mod:`misalignlab.workflows.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.data.scenes.scenarios import SMALL_SCENE, Scenario
from misalignlab.data.scenes.shift import FactorShift
from misalignlab.models.pair_model import ModelCfg
from misalignlab.registry import Registry
from misalignlab.train.pairs import LossCfg
from misalignlab.train.trainer import TrainCfg


def _default_strategy_kwargs() -> dict[str, dict[str, Any]]:
    return {
        "filter": {"fraction": 0.3},
        "reweight": {},
        "robust": {"alpha": 0.3},
        "augment": {"omit": {"background": 1.0}},
        "multipositive": {},
    }


@dataclass(frozen=True)
class CompareCfg:
    """Sizes and optimisation of a comparison; one model per strategy and seed."""

    train: TrainCfg
    model: ModelCfg = field(default_factory=lambda: ModelCfg(image_size=32, code_dim=16, max_len=16))
    loss: LossCfg = field(default_factory=lambda: LossCfg("clip_cross_modal", tau=0.1))
    seeds: int = 3
    n_train: int = 4096
    n_fit: int = 1000
    n_test: int = 1000
    data_seed: int = 0
    detector: str = "combined"  # whose score filter / reweight use
    detect_steps: int = 400  # per cross-fitting fold (2 folds)
    threads: int = 1  # torch threads; 0 = torch's default
    checkpoint_every: int = 250  # steps between checkpoints of each (strategy, seed) model (resume after a kill)
    backbone: str = "scratch"  # the detector's embeddings: scratch | text:minilm | hf:PATH (detect.backbones)
    strategy_kwargs: dict[str, dict[str, Any]] = field(default_factory=_default_strategy_kwargs)

    def __post_init__(self) -> None:
        if self.seeds < 1 or min(self.n_train, self.n_fit, self.n_test) < 2 or self.detect_steps < 1:
            raise ValueError("seeds >= 1, n_train / n_fit / n_test >= 2 and detect_steps >= 1 are required")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        from misalignlab.detect.backends import parse_backbone

        parse_backbone(self.backbone)  # an unknown backbone fails before anything trains


SCENARIOS: Registry[Scenario] = Registry("compare preset")
SCENARIOS.register("perturb-shape")(
    Scenario(
        "perturb-shape",
        SMALL_SCENE,
        InjectionCfg(perturb={"shape": 0.3}),
        ood_shifts=(FactorShift("background", value=2),),
    )
)
SCENARIOS.register("shift-background")(
    Scenario(
        "shift-background",
        SMALL_SCENE,
        train_shifts=(FactorShift("background", "shape", offset=0, strength=0.9),),
        ood_shifts=(FactorShift("background", "shape", offset=1, strength=1.0),),
    )
)
SCENARIOS.register("tiny")(
    Scenario(
        "tiny",
        SMALL_SCENE,
        InjectionCfg(perturb={"shape": 0.3}),
        train_shifts=(FactorShift("background", "shape", strength=0.9),),
        ood_shifts=(FactorShift("background", "shape", offset=1),),
    )
)


# Run settings per preset, as data: ``tiny`` for tests; every other preset is sized for 2 CPU cores.
RUN_SETTINGS: dict[str, CompareCfg] = {
    "tiny": CompareCfg(
        TrainCfg(steps=4, batch_size=32, lr=2e-3), seeds=2, n_train=128, n_fit=64, n_test=64, detect_steps=3
    ),
}
DEFAULT_RUN = CompareCfg(TrainCfg(steps=500, batch_size=128, lr=2e-3, schedule="cosine", warmup_steps=50))


def compare_config(preset: str) -> CompareCfg:
    """The run settings of a preset (:data:`RUN_SETTINGS`, else :data:`DEFAULT_RUN`)."""
    SCENARIOS.get(preset)
    return RUN_SETTINGS.get(preset, DEFAULT_RUN)
