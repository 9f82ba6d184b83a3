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
    """Rich progress bars keyed by stage name (the library reports ``(stage, done, total)``).

    A stage ends when the next one reports: its clock stops there and an open-ended stage (total
    unknown, like reading a stream) shows what it did as its total, so "reading" shows how long the
    reading took, not the whole run. A stage that comes back (the next seed of a benchmark) gets a
    fresh bar at the bottom.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self._current: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._current and self._current is not None:
            self._stop(self.tasks[self._current])
        if stage in self.tasks and stage != self._current:  # the stage comes back: a fresh bar with a fresh clock
            self.progress.remove_task(self.tasks.pop(stage))
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total or None)
        self._current = stage
        self.progress.update(self.tasks[stage], completed=done, total=total or None)

    def _stop(self, task_id: TaskID) -> None:
        task = next(t for t in self.progress.tasks if t.id == task_id)
        if task.total is None:
            self.progress.update(task_id, total=task.completed)
        self.progress.stop_task(task_id)


def progress_bars() -> Progress:
    return Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=False,
    )
