"""Misalignment profiles of several diagnose runs side by side (``misalignlab profiles``).

Each run folder holds the ``summary.json`` that :func:`~misalignlab.workflows.diagnose.run_diagnosis`
writes: rates by type with Wilson intervals, and per slot how many pairs omit it and how many are
typed wrong because of it. :func:`load_profile` reads one (a missing or malformed file raises a
``ValueError`` naming it); :func:`~misalignlab.report.profiles_page.write_profiles` writes ``profiles.csv`` (one row per run and
quantity), ``profiles.md``, ``profiles.json``, ``profiles.png`` and a self-contained
``profiles.html`` (written by :mod:`misalignlab.report.profiles_page`). Slot rates are per pair of the
run, with Wilson intervals too, so runs of different sizes compare. This module reads only those
files: nothing is recomputed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from misalignlab.kinds import KINDS
from misalignlab.report.tables import markdown_table
from misalignlab.stats import wilson_interval

SECTIONS = ("type", "omitted", "wrong_slot")


@dataclass(frozen=True)
class Profile:
    """One run's profile: counts by type and by slot (omitted / wrong), and where it came from."""

    name: str
    path: Path
    pairs: int
    flagged: int
    types: Mapping[str, int]
    omitted: Mapping[str, int]
    wrong: Mapping[str, int]
    backbone: str


def _counts(obj: Any, where: str) -> dict[str, int]:
    if not isinstance(obj, Mapping) or not all(isinstance(v, int) and v >= 0 for v in obj.values()):
        raise ValueError(f"{where} must map names to non-negative counts")
    return {str(k): int(v) for k, v in obj.items()}


def load_profile(run_dir: Path, name: str | None = None) -> Profile:
    """Read ``run_dir/summary.json`` (a diagnose run) into a :class:`Profile`.

    Raises
    ------
    ValueError
        Naming the folder or file: no such folder, no ``summary.json``, invalid JSON, or a missing key.
    """
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if not run_dir.is_dir():
        raise ValueError(f"run folder {run_dir} does not exist")
    if not path.is_file():
        raise ValueError(f"{run_dir} holds no summary.json: not a `misalignlab diagnose` output folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        types = {k: int(data["types"][k]["count"]) for k in KINDS}
        pairs = int(data["pairs"])
        omitted = _counts(data["profile"]["omitted"], f"{path}: profile.omitted")
        wrong = _counts(data["profile"]["wrong"], f"{path}: profile.wrong")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not readable JSON ({exc})") from None
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a diagnose summary: missing or malformed {exc}") from None
    embed = (data.get("config") or {}).get("embed") or {}
    backend = str(embed.get("backend", "?"))
    backbone = f"hf:{embed.get('path', '')}" if backend == "hf" else backend
    return Profile(name or run_dir.name, run_dir, pairs, int(data.get("flagged", 0)), types, omitted, wrong, backbone)


def load_profiles(run_dirs: Sequence[Path]) -> list[Profile]:
    """Profiles of several runs, named by folder; equal folder names get their parent's name too."""
    if not run_dirs:
        raise ValueError("profiles needs at least one run folder")
    dirs = [Path(d) for d in run_dirs]
    names = [d.resolve().name for d in dirs]
    out = []
    for d, n in zip(dirs, names, strict=True):
        if names.count(n) > 1:
            n = f"{d.resolve().parent.name}/{n}"
        out.append(load_profile(d, n))
    if len({p.name for p in out}) < len(out):
        raise ValueError(f"run folders repeat: {', '.join(str(d) for d in dirs)}")
    return out


def profile_table(profiles: Sequence[Profile]) -> pd.DataFrame:
    """Long table: run, backbone, pairs, section (type | omitted | wrong_slot), name, count, rate, ci_low, ci_high.

    Slot rows cover the union of slots over the runs, so every run has a rate (maybe 0) for each.
    """
    rows = []
    omitted = sorted({s for p in profiles for s in p.omitted})
    wrong = sorted({s for p in profiles for s in p.wrong})
    for p in profiles:  # every slot any run names gets a row in every run (0 with its interval)
        items = [("type", k, p.types.get(k, 0)) for k in KINDS]
        items += [("omitted", s, p.omitted.get(s, 0)) for s in omitted] + [
            ("wrong_slot", s, p.wrong.get(s, 0)) for s in wrong
        ]
        for section, name, count in items:
            lo, hi = wilson_interval(count, p.pairs)
            rate = count / p.pairs if p.pairs else 0.0
            rows.append(
                {
                    "run": p.name,
                    "backbone": p.backbone,
                    "pairs": p.pairs,
                    "section": section,
                    "name": name,
                    "count": count,
                    "rate": rate,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    cols = ["run", "backbone", "pairs", "section", "name", "count", "rate", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=cols)


def top_slots(table: pd.DataFrame, section: str, k: int) -> list[str]:
    """The ``k`` slots with the highest rate in any run (ties by name), for one section."""
    sel = table[(table.section == section) & (table["count"] > 0)]
    best = sel.groupby("name")["rate"].max().reset_index().sort_values(["rate", "name"], ascending=[False, True])
    return best["name"].head(k).tolist()


def _cell(table: pd.DataFrame, run: str, section: str, name: str) -> str:
    hit = table[(table.run == run) & (table.section == section) & (table.name == name)]
    if hit.empty:
        return "0"
    r = hit.iloc[0]
    return f"{100 * r.rate:.1f} % [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]"


def _md_escape(text: object) -> str:
    """Slot and run names come from users: no HTML a Markdown viewer would render (pipes: the table writer)."""
    return html.escape(str(text))


def profiles_markdown(profiles: Sequence[Profile], table: pd.DataFrame, k: int = 5) -> str:
    """Rates by type (95 % Wilson intervals), then the ``k`` most omitted and most often wrong slots."""
    runs = [p.name for p in profiles]
    head = ["run", "backbone", "pairs", "flagged", *KINDS]
    rows = [
        [
            _md_escape(p.name),
            _md_escape(p.backbone),
            p.pairs,
            p.flagged,
            *(_cell(table, p.name, "type", k) for k in KINDS),
        ]
        for p in profiles
    ]
    out = ["# Misalignment profiles", "", *markdown_table(head, rows)]
    for section, title in (("omitted", "Slots most often omitted"), ("wrong_slot", "Slots most often wrong")):
        slots = top_slots(table, section, k)
        out += ["", f"## {title} (share of pairs, 95 % interval)", ""]
        if not slots:
            out.append("none in any run")
            continue
        rows = [[_md_escape(s), *(_cell(table, r, section, s) for r in runs)] for s in slots]
        out += markdown_table(["slot", *(_md_escape(r) for r in runs)], rows)
    return "\n".join(out) + "\n"
