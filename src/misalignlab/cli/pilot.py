"""The ``pilot`` command: a time-boxed experiment ending in clean / adapt / stop, with a report.

Thin: options into :class:`~misalignlab.pilot.config.PilotCfg`, the data and the test set read by
:mod:`misalignlab.pilot.load`, one call to :func:`~misalignlab.workflows.pilot.run_pilot`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from misalignlab.cli.app import app, invoked_argv
from misalignlab.cli.display import StageBars, progress_bars
from misalignlab.cli.ingest_options import (
    CAPTION_COLUMN,
    FORMAT,
    ID_COLUMN,
    IMAGE_COLUMN,
    IMAGE_ID_COLUMN,
    ROOT,
    ingest_cfg,
)
from misalignlab.config import from_dict, with_overrides
from misalignlab.detect.backends import BACKBONE_HELP
from misalignlab.pilot import PILOT_SCENARIOS, PilotTask
from misalignlab.pilot.load import base_cfg, load_inputs
from misalignlab.workflows.pilot import run_pilot

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib


def read_task(path: Path) -> PilotTask:
    """A task file (JSON or TOML) with the keys of :class:`PilotTask`; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"task file {path}: cannot read it ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"task file {path}: expected an object with keys tasks, nuisance, deploy_shifts, train_shifts")
    return from_dict(PilotTask, raw, where=f"task file {path}")


@app.command("pilot")
def pilot_cmd(
    data: Optional[Path] = typer.Argument(
        None, help="A dataset (manifest, tar, folder) or a `render` folder; none: built-in."
    ),
    budget_minutes: float = typer.Option(5.0, "--budget-minutes", help="Time box for the whole pilot."),
    task: Optional[Path] = typer.Option(None, "--task", help="JSON/TOML task file: tasks, nuisance, deploy_shifts."),
    test: Optional[Path] = typer.Option(
        None,
        "--test",
        help="A verified test set (a few hundred pairs you checked; same formats and flags as DATA): every "
        "option is scored on it. Without it a user's pairs are scored on a proxy that favours cleaning.",
    ),
    cost_per_caption: Optional[float] = typer.Option(None, "--cost-per-caption", help="Cost of reviewing one caption."),
    value_per_point: Optional[float] = typer.Option(None, "--value-per-point", help="Value of one accuracy point."),
    scenario: str = typer.Option("default", "--scenario", help=f"Built-in data: {', '.join(PILOT_SCENARIOS.names())}."),
    out: Path = typer.Option(Path("runs/pilot"), "--out", help="Output folder (rerun reuses finished runs)."),
    image_size: int = typer.Option(32, "--image-size", help="User images are decoded to this square size."),
    image_column: Optional[str] = IMAGE_COLUMN,
    caption_column: Optional[str] = CAPTION_COLUMN,
    id_column: Optional[str] = ID_COLUMN,
    image_id_column: Optional[str] = IMAGE_ID_COLUMN,
    fmt: str = FORMAT,
    root: Optional[Path] = ROOT,
    backbone: str = typer.Option(
        "auto", "--backbone", help="The diagnosis's embeddings, as diagnose: " + BACKBONE_HELP
    ),
    schema: str = typer.Option(
        "auto",
        "--schema",
        help="Caption slots, as diagnose: auto (inferred from the captions) | none | scenes | fashion_mnist | "
        "a vocabulary file (JSON or TOML). augment and multipositive work from it on your pairs.",
    ),
    set_: Optional[list[str]] = typer.Option(
        None, "--set", help="Setting key=value, e.g. seeds=2, cost.min_gain_points=1."
    ),
) -> None:
    """Diagnose, measure cleaning vs model-side strategies within a budget, and recommend clean / adapt / stop."""
    started = time.monotonic()
    cfg = base_cfg(data, scenario, budget_minutes)
    if task is not None:
        cfg = replace(cfg, task=read_task(task))
    money = [f"cost.cost_per_caption={cost_per_caption}"] if cost_per_caption is not None else []
    money += [f"cost.value_per_point={value_per_point}"] if value_per_point is not None else []
    cfg = with_overrides(replace(cfg, backbone=backbone, schema=schema), [*money, *(set_ or [])])
    ingest = ingest_cfg(image_size, image_column, caption_column, id_column, image_id_column, fmt, root)
    pilot_data, render_scenario, test_set = load_inputs(data, scenario, cfg, ingest, out, test)
    with progress_bars() as progress:
        result = run_pilot(
            pilot_data, cfg, out, render_scenario, StageBars(progress), invoked_argv(), started, test_set
        )
    d = result.decision
    typer.echo(f"recommendation: {d.label} (confidence {d.confidence_label}, {100 * d.confidence:.0f} %)")
    for i, reason in enumerate(d.reasons, 1):
        typer.echo(f"  {i}. {reason}")
    typer.echo(f"scored on: {result.evaluation.kind} ({result.evaluation.pairs} pairs)")
    typer.echo(f"report: {out / 'report.html'} (also report.md, report.json); {result.seconds:.0f} s")


@app.command("pilot-check")
def pilot_check_cmd(
    scenarios: str = typer.Option(
        ",".join(n for n in PILOT_SCENARIOS.names() if n != "default"),
        "--scenarios",
        help="Comma-separated built-in scenarios.",
    ),
    budget_minutes: float = typer.Option(5.0, "--budget-minutes", help="The pilot's time box per scenario."),
    out: Path = typer.Option(Path("runs/pilot-check"), "--out", help="Output folder (check.csv, check.md, runs)."),
) -> None:
    """Run each scenario at full budget (the truth) and as a pilot; report whether the decisions match."""
    from misalignlab.workflows.pilot_check import run_decision_check

    names = [n.strip() for n in scenarios.split(",") if n.strip()]
    for name in names:
        PILOT_SCENARIOS.get(name)
    with progress_bars() as progress:
        table = run_decision_check(names, out, budget_minutes, progress=StageBars(progress))
    typer.echo((out / "check.md").read_text(encoding="utf-8"))
    typer.echo(f"matched {int(table['match'].sum())} of {len(table)}; table: {out / 'check.csv'}")
