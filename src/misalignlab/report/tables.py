"""Markdown tables: one writer for every report, so cells are formatted and escaped the same way.

Cells are turned into text by :func:`cell` (floats to a fixed number of decimals, NaN and None as
an en dash) and escaped for a table (``|`` and line breaks). Text that users wrote (captions, slot
and run names) must also be HTML-escaped by the caller where a viewer would render HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def cell(value: object, digits: int = 3) -> str:
    """One table cell: floats to ``digits`` decimals, missing values as '–', ``|`` and newlines escaped."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        text = f"{value:.{digits}f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[object], rows: Iterable[Sequence[object]], digits: int = 3) -> list[str]:
    """The lines of a GitHub Markdown table (header, rule, one line per row)."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, digits) for v in row) + " |" for row in rows]
    return lines


def frame_markdown(frame: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """A data frame as a Markdown table (``columns`` in that order, default all)."""
    cols = list(columns) if columns is not None else list(frame.columns)
    rows = (tuple(r[c] for c in cols) for _, r in frame.iterrows())
    return "\n".join(markdown_table(cols, rows, digits)) + "\n"
