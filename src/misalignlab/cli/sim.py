"""Simulation-lab commands: ``simulate`` (one bias setting) and ``sweep`` (a paper preset)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from misalignlab.cli.app import app, invoked_argv
from misalignlab.cli.display import show_code_table
from misalignlab.config import SCALES, with_overrides
from misalignlab.lvm.bias import BiasSpec
from misalignlab.workflows.sim import PRESETS, SweepCfg, run_sweep, sweep_config

console = Console(stderr=True)


def parse_indices(text: str, option: str) -> tuple[int, ...]:
    """'1-3,5' (1-based, as s1..s10 are named) → (0, 1, 2, 4); '' or 'none' → ()."""
    text = text.strip().lower()
    if text in ("", "none", "empty"):
        return ()
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a list like '1-3,5'", param_hint=option) from None
    if any(i < 1 for i in out):
        raise typer.BadParameter("factor numbers start at 1 (s1 is the first semantic factor)", param_hint=option)
    return tuple(i - 1 for i in out)


RESUME_HELP = "Continue the folder's checkpoint (a killed run picks up where it was saved), or start over."


def _run(cfg: SweepCfg, out: Path, resume: bool) -> None:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        paths = run_sweep(cfg, out, argv=invoked_argv(), progress=progress, resume=resume)
    nonlinear = next((p for p in cfg.probes if p != "linear"), cfg.probes[0])
    show_code_table(paths[f"table_{nonlinear}"], f"R² ({nonlinear} probe, mean over seeds)")
    typer.echo(f"table:   {paths[f'table_{nonlinear}']}")
    typer.echo(f"heatmap: {paths['heatmap']}")
    typer.echo(f"all results: {out / 'results.jsonl'}")


@app.command()
def sweep(
    preset: str = typer.Option(..., help=f"One of: {', '.join(PRESETS.names())}."),
    scale: str = typer.Option(
        "quick", help=f"{' | '.join(SCALES)}: quick fits 2 CPU cores, paper is the published size."
    ),
    dependent: bool = typer.Option(False, help="Dependent latents (Wishart covariances) instead of independent."),
    seeds: int = typer.Option(0, help="Number of seeds (0: the scale's default)."),
    out: Path = typer.Option(Path("runs/sweep"), help="Run folder."),
    set_: list[str] = typer.Option([], "--set", help="Config override key=value, e.g. train.lr=3e-4 (repeatable)."),
    resume: bool = typer.Option(True, "--resume/--fresh", help=RESUME_HELP),
) -> None:
    """Train every setting of a paper preset at once and tabulate R² of each latent."""
    cfg = sweep_config(preset, scale, dependent)
    if seeds:
        cfg = replace(cfg, seeds=seeds)
    cfg = with_overrides(cfg, set_)
    _run(cfg, out, resume)


@app.command()
def simulate(
    selected: str = typer.Option("", help="I_θ as 1-based factor numbers, e.g. '1-8'."),
    perturbed: str = typer.Option("", help="I_ρ ⊊ I_θ, e.g. '1,2' (empty: none)."),
    theta: int = typer.Option(0, help="Paper code θ instead of --selected."),
    rho: int = typer.Option(1, help="Paper code ρ (1 = no perturbation), with --theta."),
    perturb_prob: float = typer.Option(0.75, help="Probability each factor in I_ρ is misstated."),
    scale: str = typer.Option("quick", help=f"{' | '.join(SCALES)}"),
    dependent: bool = typer.Option(False, help="Dependent latents."),
    out: Path = typer.Option(Path("runs/simulate"), help="Run folder."),
    set_: list[str] = typer.Option([], "--set", help="Config override key=value (repeatable)."),
    resume: bool = typer.Option(True, "--resume/--fresh", help=RESUME_HELP),
) -> None:
    """Train one bias setting and probe what its codes recover."""
    if theta and selected:
        raise typer.BadParameter("give either --selected or --theta, not both", param_hint="--theta")
    if theta:
        bias = BiasSpec.from_paper_codes(theta, rho, perturb_prob=perturb_prob)
    elif selected:
        bias = BiasSpec(parse_indices(selected, "--selected"), parse_indices(perturbed, "--perturbed"), perturb_prob)
    else:
        raise typer.BadParameter("give --selected (e.g. 1-8) or --theta", param_hint="--selected")
    cfg = replace(sweep_config("custom", scale, dependent), preset="custom", bias=bias)
    cfg = with_overrides(cfg, set_)
    bias.check(cfg.lvm.latent.n_semantic)
    _run(cfg, out, resume)
