"""What a pilot trains on and how it scores a model.

Two kinds of data:

- **rendered** (the built-in production-line scenes, or a ``misalignlab render`` folder): the true
  factors and clean captions are known, so a cleaning run can *correct* the flagged captions (as a
  person would) and a model is scored by linear probes of the task factors on freshly rendered
  test scenes, in distribution and under the declared deployment shift;
- **user** pairs (any folder :func:`~misalignlab.data.ingest.stream.open_pairs` reads): nothing is known,
  so cleaning is simulated by *removing* the flagged pairs (a lower bound on the gain of fixing
  them) and a model is scored by image→text retrieval R@1 on a **verified test set** (``--test``:
  pairs a person checked) or, without one, on a **proxy**: held-out pairs that the pilot's own
  diagnosis typed aligned. The proxy is circular: it is chosen by the same diagnosis that the
  cleaning and filtering options act on, so it favours them (:data:`PROXY_CAVEAT`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from misalignlab.data.scenes.dataset import ScenePairs
from misalignlab.data.scenes.scenarios import Scenario, eval_sets, render_split
from misalignlab.evaluate.pair_metrics import retrieval_metrics
from misalignlab.evaluate.scene_eval import evaluate_model
from misalignlab.models.pair_model import ImageTextModel
from misalignlab.pilot.config import PilotCfg, PilotTask
from misalignlab.strategies import PairSet
from misalignlab.train.pairs import embed

Evaluator = Callable[[ImageTextModel], dict[str, float]]

RENDERED = "rendered test scenes (known truth)"
VERIFIED = "verified test set"
PROXY = "proxy: held-out pairs typed aligned"
PROXY_CAVEAT = (
    "The score is a proxy: retrieval on held-out pairs that the pilot's own diagnosis typed aligned. "
    "It leans towards the options that filter by that same diagnosis (clean@k removes, filter drops and "
    "reweight down-weights the pairs it finds suspicious): they train on pairs like the ones the test set "
    "was chosen to be, so it overstates the benefit of cleaning and filtering, and it cannot see the pairs "
    "the diagnosis gets wrong. Give --test with a few hundred pairs you checked to score every option on them."
)


@dataclass(frozen=True)
class Evaluation:
    """How the options were scored (recorded in ``report.json``).

    ``kind``: :data:`RENDERED`, :data:`VERIFIED` or :data:`PROXY`. ``pairs``: test pairs (or scenes).
    ``source``: the verified test set's path. ``left_out``: training pairs left out because their
    image is in the test set. ``caveat``: which way the score leans, when it does.
    """

    kind: str
    pairs: int
    source: str = ""
    left_out: int = 0
    caveat: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "pairs": self.pairs, "source": self.source, "left_out": self.left_out,
                "caveat": self.caveat}  # fmt: skip


@dataclass(frozen=True, eq=False)
class PilotData:
    """Training pairs plus what is known about them.

    ``clean_captions`` (rendered data only): the caption each pair would have without planted
    misalignment; a cleaning run writes it in place of a flagged pair's caption. ``kind``: the
    true misalignment type per pair, when known (for the detector's quality in the report).
    ``image_keys`` (user data only): pairs sharing a key are captions of one image; None: one each.
    """

    name: str
    ids: tuple[str, ...]
    images: np.ndarray  # (N, S, S, 3) uint8
    captions: tuple[str, ...]
    template: np.ndarray | None = None  # (N,) caption template, rendered data only
    clean_captions: tuple[str, ...] | None = None
    kind: np.ndarray | None = None  # (N,) str
    scenes: ScenePairs | None = None
    image_keys: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def truth_known(self) -> bool:
        return self.clean_captions is not None

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def pairs(self) -> PairSet:
        """The pairs as a strategy sees them (ids kept, so detector results match by id)."""
        return PairSet(self.images, self.captions, np.asarray(self.ids), None, self.template)

    @classmethod
    def from_scenes(cls, name: str, pairs: ScenePairs) -> PilotData:
        truth = pairs.truth
        return cls(
            name,
            tuple(str(i) for i in range(len(pairs.captions))),
            pairs.images,
            tuple(pairs.captions),
            truth["template"].to_numpy(np.int64),
            tuple(truth["clean_caption"].astype(str)),
            truth["kind"].to_numpy().astype(str),
            pairs,
        )

    def subset(self, keep: np.ndarray) -> PilotData:
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        pick = lambda seq: None if seq is None else tuple(seq[i] for i in idx)  # noqa: E731
        return PilotData(
            self.name,
            pick(self.ids),
            self.images[idx],
            pick(self.captions),  # type: ignore[arg-type]
            None if self.template is None else self.template[idx],
            pick(self.clean_captions),
            None if self.kind is None else self.kind[idx],
            None,
            pick(self.image_keys),
        )


def render_builtin(scenario: Scenario, task: PilotTask, cfg: PilotCfg) -> PilotData:
    """The built-in training pairs of ``scenario`` (its injected misalignment, the task's training shifts)."""
    task.check_scene_factors()
    shifts = task.train_shifts or scenario.train_shifts
    pairs = render_split(cfg.n_train, scenario, shifts, cfg.data_seed, scenario.injection)
    return PilotData.from_scenes(scenario.name, pairs)


def scene_evaluator(scenario: Scenario, task: PilotTask, cfg: PilotCfg) -> tuple[Evaluator, str]:
    """Probe-fitting and test scenes (clean captions); returns the evaluator and the deciding metric key.

    The deciding metric is the mean linear-probe accuracy of the task factors on the ``id`` split,
    or on the ``ood`` split when the task declares a deployment shift.
    """
    task.check_scene_factors()
    train_shifts = task.train_shifts or scenario.train_shifts
    tests = {"id": train_shifts} | ({"ood": task.deploy_shifts} if task.deploy_shifts else {})
    sets = eval_sets(scenario, cfg.n_fit, cfg.n_test, cfg.data_seed, tests, train_shifts)

    def evaluate(model: ImageTextModel) -> dict[str, float]:
        found = evaluate_model(model, sets, task.tasks)
        for split in sets.tests:
            accs = [found[f"{split}/probe/{f}/linear/acc"] for f in task.tasks]
            found[f"{split}/task_acc"] = float(np.mean(accs))
        return found

    return evaluate, f"{task.split}/task_acc"


def heldout_split(data: PilotData, aligned: np.ndarray, share: float, seed: int) -> tuple[PilotData, PilotData]:
    """(train, test): ``share`` of the images, drawn at random among those with a pair typed aligned, are
    held out, each with its first aligned pair as the test pair; every pair of a held-out image leaves the
    training set (an image trained on with another caption would flatter its retrieval, and two captions
    of one test image would count each other as misses)."""
    rng = np.random.default_rng(seed)
    keys = data.image_keys if data.image_keys is not None else tuple(range(len(data)))
    _, image = np.unique(np.asarray(keys), return_inverse=True)
    candidates = np.flatnonzero(aligned)
    _, first = np.unique(image[candidates], return_index=True)
    candidates = np.sort(candidates[first])  # one test pair per image: its first aligned pair
    n_test = min(len(candidates), max(2, int(round(share * (image.max() + 1 if len(image) else 0)))))
    if n_test < 2:
        raise ValueError(
            f"{data.name}: fewer than 2 images with a pair typed aligned; no clean test set can be held out"
        )
    test = np.zeros(len(data), dtype=bool)
    test[rng.choice(candidates, size=n_test, replace=False)] = True
    held = np.isin(image, image[test])
    return data.subset(~held), data.subset(test)


def retrieval_evaluator(test: PilotData) -> tuple[Evaluator, str]:
    """Image→text R@1 (and the other retrieval metrics) on ``test`` (a verified test set, or the proxy)."""

    def evaluate(model: ImageTextModel) -> dict[str, float]:
        img, txt = embed(model, test.images, test.captions)
        return {f"id/{k}": v for k, v in retrieval_metrics(img, txt).items()}

    return evaluate, "id/image_to_text_R@1"
