"""The pilot: a time-boxed experiment on a dataset that ends in *clean*, *adapt* or *stop*.

Flow: :mod:`.data` (what is trained on and how a model is scored) → :mod:`.options` (the options
and the plan that fits the budget) → :mod:`.run` (diagnose, train, decide) → :mod:`.decision`
(gains into money) → :mod:`misalignlab.report.pilot_report`.
"""

from misalignlab.pilot.config import CostModel, PilotCfg, PilotTask
from misalignlab.pilot.decision import Decision, decide
from misalignlab.pilot.run import PilotResult, run_pilot
from misalignlab.pilot.scenarios import PILOT_SCENARIOS, PilotScenario

__all__ = [
    "CostModel",
    "PilotCfg",
    "PilotTask",
    "Decision",
    "decide",
    "PilotResult",
    "run_pilot",
    "PILOT_SCENARIOS",
    "PilotScenario",
]
