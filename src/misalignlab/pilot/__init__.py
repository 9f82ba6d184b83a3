"""The pilot's decision logic: a time-boxed experiment on a dataset that ends in *clean*, *adapt* or *stop*.

Flow: :mod:`.load` (the built-in scenes, a render folder, or a user's dataset and verified test
set) → :mod:`.data` (what is trained on and how a model is scored) → :mod:`.vocabulary` (which
embrace options apply, and the caption vocabulary they read) → :mod:`.options` (the options and the
plan that fits the budget) → :mod:`.decision` (gains into money) → :mod:`.result`. The workflow
that runs it all is :mod:`misalignlab.workflows.pilot`; the report is
:mod:`misalignlab.report.pilot_report`.
"""

from misalignlab.pilot.config import CostModel, PilotCfg, PilotTask
from misalignlab.pilot.decision import Decision, decide
from misalignlab.pilot.result import PilotResult
from misalignlab.pilot.scenarios import PILOT_SCENARIOS, PilotScenario

__all__ = [
    "CostModel",
    "PilotCfg",
    "PilotTask",
    "Decision",
    "decide",
    "PilotResult",
    "PILOT_SCENARIOS",
    "PilotScenario",
]
