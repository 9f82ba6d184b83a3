"""The ``compare`` command: train every strategy for several seeds and tabulate ID vs OOD metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from misalignlab.cli.app import app, invoked_argv
from misalignlab.config import parse_assignment, with_overrides
from misalignlab.data.scenes.dataset import ScenePairs, read_dataset_folder
from misalignlab.data.scenes.scenarios import Scenario
from misalignlab.data.scenes.shift import FactorShift
from misalignlab.detect.backends import BACKBONE_HELP
from misalignlab.strategies import STRATEGIES
from misalignlab.workflows.compare import run_compare
from misalignlab.workflows.compare_presets import SCENARIOS, compare_config


def _options(items: list[str]) -> dict[str, dict[str, object]]:
    """``["filter.fraction=0.2", "augment.omit={\\"background\\": 0.5}"]`` → strategy → kwargs (values as JSON)."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, value = parse_assignment(item, "--option")
        name, dot, param = key.partition(".")
        if not dot:
            raise ValueError(f"--option {item!r} is not STRATEGY.PARAM=VALUE")
        STRATEGIES.get(name)
        out.setdefault(name, {})[param] = value
    return out


def _folder_scenario(folder: Path, preset: str, ood: list[str]) -> tuple[Scenario, ScenePairs]:
    pairs = read_dataset_folder(folder)
    base = SCENARIOS.get(preset)
    shifts = []
    for item in ood:
        factor, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--ood {item!r} is not FACTOR=CODE")
        shifts.append(FactorShift(factor.strip(), value=int(value)))
    scenario = Scenario(
        f"folder:{folder.name}",
        pairs.scene_cfg,
        pairs.inj_cfg,
        (),
        tuple(shifts) or None,
        base.tasks,
    )
    return scenario, pairs


@app.command()
def compare(
    data: str = typer.Argument(..., help=f"A `misalignlab render` folder or a preset: {', '.join(SCENARIOS.names())}."),
    strategies: str = typer.Option(
        "baseline,filter,reweight,augment", help=f"Comma-separated: {', '.join(STRATEGIES.names())}."
    ),
    seeds: int = typer.Option(3, help="Training seeds per strategy (≥ 2 for intervals)."),
    out: Path = typer.Option(Path("runs/compare"), help="Run folder (rerunning skips finished runs)."),
    preset: str = typer.Option(
        "perturb-shape", help="For a folder: the preset giving sizes, tasks, strategy settings."
    ),
    ood: list[str] = typer.Option([], help="For a folder: OOD shift FACTOR=CODE, e.g. background=2 (repeatable)."),
    option: list[str] = typer.Option([], help="Strategy setting STRATEGY.PARAM=JSON, e.g. filter.fraction=0.2."),
    set_: list[str] = typer.Option([], "--set", help="Run setting key=value, e.g. train.steps=300 (repeatable)."),
    backbone: str = typer.Option(
        "scratch", "--backbone", help="Detector embeddings (filter/reweight): " + BACKBONE_HELP
    ),
) -> None:
    """Train one model per strategy and seed; write table.csv / table.md, plots and every run's config."""
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        STRATEGIES.get(name)
    if Path(data).is_dir():
        scenario, pairs = _folder_scenario(Path(data), preset, ood)
        cfg = compare_config(preset)
    else:
        scenario, pairs, cfg = SCENARIOS.get(data), None, compare_config(data)  # type: ignore[assignment]
    cfg = replace(with_overrides(cfg, [*set_, f"seeds={seeds}"]), backbone=backbone)
    if pairs is not None:
        cfg = with_overrides(cfg, [f"model.image_size={pairs.scene_cfg.size}"])
    paths = run_compare(scenario, cfg, names, out, pairs, _options(option), argv=invoked_argv())
    typer.echo(Path(paths["markdown"]).read_text(encoding="utf-8"))
    typer.echo(f"table: {paths['table']}\nplot:  {paths['plot']}\nall results: {out / 'results.jsonl'}")
