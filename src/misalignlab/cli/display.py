"""Terminal display shared by the commands: a rich table of per-setting, per-code scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
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
