"""A self-contained HTML gallery of the worst pairs of a diagnosis (base64 PNG thumbnails).

Every piece of user text (ids, captions, explanations, slot names) goes through
:func:`html.escape`; images are re-encoded from decoded pixel arrays, never copied from user
files. No scripts, no external resources. Written atomically.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from misalignlab.runs import atomic_write_text

CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:6px 10px;text-align:left;vertical-align:top}
img{image-rendering:pixelated;width:96px;height:96px}.k-wrong{color:#b00}.k-unrelated{color:#808}
.k-incomplete{color:#a60}.k-aligned{color:#070}code{background:#f4f4f4}"""


def thumbnail_b64(image: np.ndarray) -> str:
    """(S, S, 3) uint8 → base64 PNG text."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _summary_html(summary: Mapping[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(k)}</td><td>{v['count']}</td><td>{100 * v['rate']:.1f} %</td>"
        f"<td>{100 * v['ci95'][0]:.1f}–{100 * v['ci95'][1]:.1f} %</td></tr>"
        for k, v in summary.get("types", {}).items()
    )
    prof = summary.get("profile", {})
    omitted = ", ".join(f"{e(str(k))} ({v})" for k, v in prof.get("omitted", {}).items()) or "none"
    wrong = ", ".join(f"{e(str(k))} ({v})" for k, v in prof.get("wrong", {}).items()) or "none"
    return (
        f"<p>{summary.get('pairs', 0)} pairs, {summary.get('flagged', 0)} flagged.</p>"
        "<table><tr><th>type</th><th>pairs</th><th>rate</th><th>95 % CI (Wilson)</th></tr>"
        f"{rows}</table><p>Most often omitted: {omitted}.<br>Most often wrong: {wrong}.</p>"
    )


def render_gallery(table: pd.DataFrame, images: np.ndarray, summary: Mapping[str, Any], n: int = 60) -> str:
    """HTML text: the summary, then the ``n`` pairs with the highest combined score."""
    e = html.escape
    worst = np.argsort(-table["score"].to_numpy(), kind="stable")[:n]
    score_cols = [c for c in table.columns if c.startswith("score_")]
    rows = []
    for i in worst:
        r = table.iloc[int(i)]
        scores = "<br>".join(f"{e(c[6:])}: {r[c]:.3f}" for c in score_cols)
        kind = e(str(r["type"]))
        rows.append(
            f"<tr><td><img alt='pair {e(str(r['id']))}' src='data:image/png;base64,{thumbnail_b64(images[int(i)])}'></td>"
            f"<td><code>{e(str(r['id']))}</code><br>{e(str(r['caption']))}</td>"
            f"<td class='k-{kind}'>{kind}</td><td>{e(str(r['explanation']))}</td>"
            f"<td>{r['score']:.3f}<br><small>{scores}</small></td></tr>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>misalignlab diagnosis</title>"
        f"<style>{CSS}</style></head><body><h1>Misalignment diagnosis</h1>{_summary_html(summary)}"
        f"<h2>The {len(worst)} most suspicious pairs</h2><table><tr><th>image</th><th>id / caption</th>"
        "<th>type</th><th>explanation</th><th>combined score</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


def write_gallery(path: Path, table: pd.DataFrame, images: np.ndarray, summary: Mapping[str, Any], n: int = 60) -> Path:
    """Write :func:`render_gallery` to ``path`` atomically; returns the path."""
    atomic_write_text(Path(path), render_gallery(table, images, summary, n))
    return Path(path)
