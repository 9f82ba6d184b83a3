"""Terminal display shared by the commands: progress bars per stage and a rich table of per-code scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


def show_code_table(table_csv: Path, title: str) -> None:
    """Print a CSV indexed by (setting, modality) with one column per factor, ẑx/ẑt rows."""
    table = pd.read_csv(table_csv, index_col=[0, 1])
    show = Table(title=title)
    show.add_column("setting")
    show.add_column("code")
    for col in table.columns:
        show.add_column(col, justify="right")
    for (setting, modality), row in table.iterrows():
        show.add_row(str(setting), "ẑx" if modality == "image" else "ẑt", *[f"{v:.2f}" for v in row])
    Console(width=max(Console().width, 150)).print(show)


class StageBars:
    """Rich progress bars keyed by stage name (the library reports ``(stage, done, total)``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total or None)
        self.progress.update(self.tasks[stage], completed=done, total=total or None)


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=False,
    )
