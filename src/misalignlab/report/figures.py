"""Saving matplotlib figures: PNG, written atomically, figure closed (headless Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from misalignlab.runs import atomic_write_bytes  # noqa: E402


def save_png(fig: plt.Figure, path: Path, dpi: int = 130) -> Path:
    """Write ``fig`` to ``path`` as PNG (temp file, then rename) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
