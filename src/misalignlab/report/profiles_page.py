"""Plot, one-page HTML and every output file of misalignment profiles (tables from :mod:`.profiles`).

The plot has three panels — rates by type, the most omitted slots, the most often wrong slots —
with one bar per run and 95 % Wilson intervals as error bars. The page is self-contained: the PNG
is embedded as base64, there are no scripts or external resources, and every run name, path,
backbone and slot name goes through :func:`html.escape` (they come from user folders and captions).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402
from misalignlab.report.profiles import KINDS, Profile, load_profiles, profile_table, profiles_markdown, top_slots  # noqa: E402
from misalignlab.runs import atomic_write_text, write_json  # noqa: E402

CSS = """body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border-bottom:1px solid #ddd;padding:5px 10px;text-align:left}th{background:#f6f6f6}img{max-width:100%}
.ci{color:#777;font-size:90%}code{background:#f4f4f4}"""


def _panel(
    ax: plt.Axes, table: pd.DataFrame, section: str, names: Sequence[str], runs: Sequence[str], title: str
) -> None:
    x = np.arange(len(names))
    width = 0.8 / max(1, len(runs))
    for j, run in enumerate(runs):
        sel = table[(table.run == run) & (table.section == section)].set_index("name")
        rate = np.array([float(sel["rate"].get(n, 0.0)) for n in names])
        lo = np.array([float(sel["ci_low"].get(n, 0.0)) for n in names])
        hi = np.array([float(sel["ci_high"].get(n, 0.0)) for n in names])
        yerr = np.vstack([np.maximum(rate - lo, 0), np.maximum(hi - rate, 0)])  # (2, len(names))
        ax.bar(x + (j - (len(runs) - 1) / 2) * width, 100 * rate, width, yerr=100 * yerr, capsize=2, label=run)
    ax.set_xticks(x, list(names), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("% of pairs", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    if not names:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)


def profiles_plot(profiles: Sequence[Profile], table: pd.DataFrame, path: Path, top: int = 5) -> Path:
    """PNG with the three panels described in the module docstring."""
    runs = [p.name for p in profiles]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    _panel(axes[0], table, "type", KINDS, runs, "rate by type")
    _panel(axes[1], table, "omitted", top_slots(table, "omitted", top), runs, "most often omitted slots")
    _panel(axes[2], table, "wrong_slot", top_slots(table, "wrong_slot", top), runs, "most often wrong slots")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def _rate_cell(table: pd.DataFrame, run: str, section: str, name: str) -> str:
    hit = table[(table.run == run) & (table.section == section) & (table.name == name)]
    if hit.empty:
        return "<td>0</td>"
    r = hit.iloc[0]
    return (
        f"<td>{100 * r.rate:.1f} % <span class=ci>[{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]</span>"
        f" ({int(r['count'])})</td>"
    )


def page_html(profiles: Sequence[Profile], table: pd.DataFrame, png: bytes, top: int = 5) -> str:
    """The whole page as a string (every user-supplied text escaped)."""
    e = html.escape
    runs = [p.name for p in profiles]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Misalignment profiles</title>",
        f"<style>{CSS}</style></head><body><h1>Misalignment profiles</h1>",
        "<table><tr><th>run</th><th>folder</th><th>backbone</th><th>pairs</th><th>flagged</th></tr>",
    ]
    parts += [
        f"<tr><td>{e(p.name)}</td><td><code>{e(str(p.path))}</code></td><td>{e(p.backbone)}</td>"
        f"<td>{p.pairs}</td><td>{p.flagged}</td></tr>"
        for p in profiles
    ]
    parts.append("</table>")
    parts.append(f"<img alt='profiles plot' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>")
    parts.append(
        "<h2>Rates by type (95 % Wilson interval, pairs)</h2><table><tr><th>run</th>"
        + "".join(f"<th>{e(k)}</th>" for k in KINDS)
        + "</tr>"
    )
    parts += [
        "<tr><td>" + e(r) + "</td>" + "".join(_rate_cell(table, r, "type", k) for k in KINDS) + "</tr>" for r in runs
    ]
    parts.append("</table>")
    for section, title in (("omitted", "Slots most often omitted"), ("wrong_slot", "Slots most often wrong")):
        slots = top_slots(table, section, top)
        parts.append(f"<h2>{title}</h2>")
        if not slots:
            parts.append("<p>none in any run</p>")
            continue
        parts.append("<table><tr><th>slot</th>" + "".join(f"<th>{e(r)}</th>" for r in runs) + "</tr>")
        parts += [
            "<tr><td>" + e(s) + "</td>" + "".join(_rate_cell(table, r, section, s) for r in runs) + "</tr>"
            for s in slots
        ]
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_page(profiles: Sequence[Profile], table: pd.DataFrame, png_path: Path, path: Path, top: int = 5) -> Path:
    """Write :func:`page_html` to ``path`` with the PNG at ``png_path`` embedded."""
    atomic_write_text(path, page_html(profiles, table, Path(png_path).read_bytes(), top))
    return path


def write_profiles(run_dirs: Sequence[Path], out: Path, top: int = 5) -> dict[str, Path]:
    """Compare the runs and write every output to ``out``; returns output name → path."""
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    profiles = load_profiles(run_dirs)
    table = profile_table(profiles)
    out = Path(out)
    paths = {
        "csv": out / "profiles.csv",
        "markdown": out / "profiles.md",
        "json": out / "profiles.json",
        "plot": out / "profiles.png",
        "html": out / "profiles.html",
    }
    atomic_write_text(paths["csv"], table.to_csv(index=False))
    atomic_write_text(paths["markdown"], profiles_markdown(profiles, table, top))
    write_json(
        paths["json"],
        {
            "runs": [
                {"name": p.name, "path": str(p.path), "backbone": p.backbone, "pairs": p.pairs, "flagged": p.flagged}
                for p in profiles
            ],
            "rows": table.to_dict(orient="records"),
        },
    )
    profiles_plot(profiles, table, paths["plot"], top)
    write_page(profiles, table, paths["plot"], paths["html"], top)
    return paths
