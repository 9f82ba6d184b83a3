"""What a finished pilot hands to its report: the data, the profile, the plan, every run and the decision."""

from __future__ import annotations

import dataclasses
from typing import Any

from misalignlab.detect.pipeline import Diagnosis
from misalignlab.pilot.data import Evaluation, PilotData
from misalignlab.pilot.decision import Decision
from misalignlab.pilot.options import Plan


@dataclasses.dataclass(frozen=True, eq=False)
class PilotResult:
    """Everything the report shows."""

    data: PilotData
    profile: dict[str, Any]
    plan: Plan
    runs: list[dict[str, Any]]
    metric: str
    decision: Decision
    diagnosis: Diagnosis
    skipped: list[str]
    seconds: float
    evaluation: Evaluation
    not_applicable: dict[str, str] = dataclasses.field(default_factory=dict)  # option → why it was not run
    diagnosis_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # what ran, what the budget cut
