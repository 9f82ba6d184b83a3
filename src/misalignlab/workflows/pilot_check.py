"""The decision check: does the pilot, within its budget, recommend what the full-budget runs say is best?

For each built-in scenario, :func:`run_decision_check` runs every option at full budget (longer
training, more seeds: :func:`~misalignlab.pilot.scenarios.full_budget`) and takes *its* decision
as the truth, then runs the pilot as a user would (its budget, its plan) and compares. Scenarios
that share training data and task (they differ only in money) share their run folders, so the
second one re-decides from the finished runs, exactly what a user gets by rerunning the pilot
with other costs. Beside the decisions it records each diagnosis's estimated misaligned rate (with
its 95 % interval and fold-training steps) against the true rate of the rendered pairs. Writes
``check.csv`` and ``check.md`` under ``out``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from misalignlab.config import to_dict
from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.data import render_builtin
from misalignlab.pilot.scenarios import PILOT_SCENARIOS, full_budget
from misalignlab.report.tables import frame_markdown
from misalignlab.runs import Progress, atomic_write_text
from misalignlab.workflows.pilot import run_pilot


def _data_key(name: str) -> str:
    """Scenarios with the same rendered data and task share a folder (they differ only in costs)."""
    s = PILOT_SCENARIOS.get(name)
    return repr((to_dict(s.scenario.injection), to_dict(s.task)))


def run_decision_check(
    names: Sequence[str],
    out: Path,
    budget_minutes: float = 5.0,
    base: PilotCfg = PilotCfg(),
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One row per scenario: full-budget decision, pilot decision, match, both confidences and times."""
    out = Path(out)
    folders: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for name in names:
        chosen = PILOT_SCENARIOS.get(name)
        folder = folders.setdefault(_data_key(name), name)
        row: dict[str, Any] = {
            "scenario": name,
            "expected": chosen.expected,
            "shared_runs_with": "" if folder == name else folder,
        }
        for mode, cfg in (
            ("full", full_budget(chosen.config(base))),
            ("pilot", chosen.config(replace(base, budget_minutes=budget_minutes))),
        ):
            start = time.monotonic()
            data = render_builtin(chosen.scenario, cfg.task, cfg)
            result = run_pilot(data, cfg, out / folder / mode, chosen.scenario, progress, started=start)
            d = result.decision
            row |= {
                f"{mode}_decision": d.label,
                f"{mode}_confidence": round(d.confidence, 3),
                f"{mode}_seconds": round(time.monotonic() - start, 1),
                f"{mode}_steps": result.plan.steps,
                f"{mode}_seeds": result.plan.seeds,
            }
            row |= {f"{mode}_gain_{o.option}": round(o.gain, 2) for o in d.outcomes}
            row |= _rates(mode, result)
        row["match"] = _action(row["full_decision"]) == _action(row["pilot_decision"])
        rows.append(row)
        write_check(out, pd.DataFrame(rows))
    return pd.DataFrame(rows)


def _rates(mode: str, result: Any) -> dict[str, Any]:
    """The diagnosis's estimated misaligned rate (points, with its interval and steps) and the true rate."""
    prof = result.profile
    lo, hi = prof["misaligned_ci95"]
    out = {
        f"{mode}_detect_steps": result.diagnosis_settings.get("steps"),
        f"{mode}_est_misaligned": round(100 * prof["misaligned_rate"], 1),
        f"{mode}_est_ci95": f"{100 * lo:.1f}–{100 * hi:.1f}",
    }
    if "quality" in prof:
        out["true_misaligned"] = round(100 * prof["quality"]["true_misaligned_rate"], 1)
    return out


def _action(label: str) -> str:
    """``clean (top 20 %)`` and ``clean (top 30 %)`` are the same decision; adapt keeps its strategy."""
    return "clean" if label.startswith("clean") else label


def write_check(out: Path, table: pd.DataFrame) -> None:
    atomic_write_text(out / "check.csv", table.to_csv(index=False))
    cols = [
        "scenario",
        "expected",
        "full_decision",
        "full_confidence",
        "pilot_decision",
        "pilot_confidence",
        "match",
        "pilot_seconds",
        "full_seconds",
        "true_misaligned",
        "pilot_est_misaligned",
        "pilot_est_ci95",
        "pilot_detect_steps",
        "full_est_misaligned",
    ]
    cols = [c for c in cols if c in table]
    matched = int(table["match"].sum()) if "match" in table else 0
    text = frame_markdown(table, cols, digits=3)
    atomic_write_text(
        out / "check.md", text + f"\nPilot matches the full-budget decision in {matched} of {len(table)} scenarios.\n"
    )
