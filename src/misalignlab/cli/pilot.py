"""The ``pilot`` command: a time-boxed experiment ending in clean / adapt / stop, with a report."""

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
from misalignlab.data.ingest.config import IngestCfg
from misalignlab.detect.backends import BACKBONE_HELP
from misalignlab.pilot import PILOT_SCENARIOS, PilotCfg, PilotTask
from misalignlab.pilot.data import PilotData, render_builtin
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


def _load(data: Optional[Path], scenario_name: str, cfg: PilotCfg, ingest: IngestCfg, out: Path):  # noqa: ANN202
    """(PilotData, rendering Scenario or None) for the built-in data, a render folder or a user dataset."""
    from misalignlab.data.ingest.image_store import store_pairs
    from misalignlab.data.ingest.stream import open_pairs
    from misalignlab.data.scenes.dataset import read_dataset_folder
    from misalignlab.data.scenes.scenarios import Scenario

    if data is None:
        scenario = PILOT_SCENARIOS.get(scenario_name).scenario
        return render_builtin(scenario, cfg.task, cfg), scenario
    if data.is_dir() and (data / "truth.parquet").is_file():
        pairs = read_dataset_folder(data)
        scenario = Scenario(f"folder:{data.name}", pairs.scene_cfg, pairs.inj_cfg, cfg.task.train_shifts)
        return PilotData.from_scenes(scenario.name, pairs), scenario
    stream = open_pairs(data, ingest, quarantine_dir=out)
    pairs = store_pairs(stream, out / "cache")  # images on disk (memmap), decoded chunk by chunk
    return PilotData(data.name, pairs.ids, pairs.images, pairs.captions, image_keys=pairs.image_keys), None


@app.command("pilot")
def pilot_cmd(
    data: Optional[Path] = typer.Argument(
        None, help="A dataset (manifest, tar, folder) or a `render` folder; none: built-in."
    ),
    budget_minutes: float = typer.Option(5.0, "--budget-minutes", help="Time box for the whole pilot."),
    task: Optional[Path] = typer.Option(None, "--task", help="JSON/TOML task file: tasks, nuisance, deploy_shifts."),
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
    backbone: str = typer.Option("scratch", "--backbone", help="The diagnosis's embeddings: " + BACKBONE_HELP),
    set_: Optional[list[str]] = typer.Option(
        None, "--set", help="Setting key=value, e.g. seeds=2, cost.min_gain_points=1."
    ),
) -> None:
    """Diagnose, measure cleaning vs model-side strategies within a budget, and recommend clean / adapt / stop."""
    started = time.monotonic()
    chosen = PILOT_SCENARIOS.get(scenario)
    cfg = (
        chosen.config(PilotCfg(budget_minutes=budget_minutes))
        if data is None
        else PilotCfg(budget_minutes=budget_minutes)
    )
    if task is not None:
        cfg = replace(cfg, task=read_task(task))
    money = [f"cost.cost_per_caption={cost_per_caption}"] if cost_per_caption is not None else []
    money += [f"cost.value_per_point={value_per_point}"] if value_per_point is not None else []
    cfg = with_overrides(replace(cfg, backbone=backbone), [*money, *(set_ or [])])
    ingest = ingest_cfg(image_size, image_column, caption_column, id_column, image_id_column, fmt, root)
    pilot_data, render_scenario = _load(data, scenario, cfg, ingest, out)
    with progress_bars() as progress:
        result = run_pilot(pilot_data, cfg, out, render_scenario, StageBars(progress), invoked_argv(), started)
    d = result.decision
    typer.echo(f"recommendation: {d.label} (confidence {d.confidence_label}, {100 * d.confidence:.0f} %)")
    for i, reason in enumerate(d.reasons, 1):
        typer.echo(f"  {i}. {reason}")
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
