"""The diagnosis gallery: one self-contained HTML page for reviewing the suspicious pairs of a dataset.

The page shows the summary (pairs per type with rates and 95 % intervals), the plots of
:mod:`misalignlab.report.gallery_plots`, and a card per image listing its captions: type, combined
and per-detector scores, the probabilities ``p_aligned … p_unrelated``, the explanation, ``stated →
likely``, missing slots, the better match, the file path and ``source`` (``file:line``). An inline
script filters by type, by slot (contradicted or missing) and by text, and pages (50 images a page).

Which pairs: all non-aligned pairs, then the aligned ones, each by score, at most ``cap`` in all
(:func:`select_pairs`); the page says how many of how many it shows.

Previews: this renderer reads no user file. The caller passes ``thumbnail(ref)``, a callable
that re-reads the original image behind an ``image`` reference and returns its pixels ((h, w, 3)
uint8), a ``str`` saying why it cannot (shown as a placeholder with that reason), or ``None``
when it did not try; then the decoded copy ``images[i]`` (the image of table row ``i``) is shown,
marked as such. Pictures are re-encoded as JPEG/PNG ``data:`` URIs; the page loads nothing.
User text (captions, paths, ids, slot names, explanations) is HTML-escaped in the markup and reaches
the script only as escaped JSON (:mod:`misalignlab.report.gallery_page`). Written atomically.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.kinds import KINDS
from misalignlab.report.gallery_page import page
from misalignlab.report.thumbs import image_data_uri
from misalignlab.runs import atomic_write_text

THUMB_SIDE = 192  # longest side of a preview, in pixels
GALLERY_CAP = 1000  # pairs in the page by default: 192-px JPEG previews of 1,000 photos make about 10 MB
PAGE_SIZE = 50  # images (cards) per page
TEXT_COLUMNS = ("image_key", "image", "source", "explanation", "slot", "stated", "likely", "missing", "better_match")
Thumbnail = Callable[[str], "np.ndarray | str | None"]


def select_pairs(table: pd.DataFrame, cap: int) -> np.ndarray:
    """Row positions for the page, most suspicious first: non-aligned pairs by score, then aligned ones
    by score, cut at ``cap``, and the chosen rows ordered by score (ties keep table order)."""
    score = np.nan_to_num(table["score"].to_numpy(float), nan=-np.inf)
    order = np.argsort(-score, kind="stable")
    aligned = table["type"].to_numpy()[order] == "aligned"
    chosen = np.concatenate([order[~aligned], order[aligned]])[: max(0, cap)]
    return chosen[np.argsort(-score[chosen], kind="stable")]


def _texts(table: pd.DataFrame, column: str) -> np.ndarray:
    """A text column as an object array of ``str`` ('' for missing values or a missing column)."""
    if column not in table.columns:
        return np.full(len(table), "", dtype=object)
    values = table[column].to_numpy(dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], object)


def _num(x: Any) -> float | None:
    x = float(x)
    return round(x, 4) if np.isfinite(x) else None


def _preview(ref: str, row: int, images: np.ndarray | None, thumbnail: Thumbnail | None) -> dict[str, Any]:
    """``{"uri": …}`` or ``{"uri": None, "why": reason}``; ``note`` marks a decoded copy."""
    got = thumbnail(ref) if thumbnail is not None and ref else None
    if isinstance(got, str):
        return {"uri": None, "why": got}
    if got is not None:
        return {"uri": image_data_uri(np.asarray(got), THUMB_SIDE)}
    if images is not None:
        copy = np.asarray(images[row])
        return {"uri": image_data_uri(copy, THUMB_SIDE), "note": f"decoded copy ({copy.shape[1]} px)"}
    return {"uri": None, "why": "no file reference and no decoded copy"}


def image_entries(
    table: pd.DataFrame, rows: np.ndarray, images: np.ndarray | None, thumbnail: Thumbnail | None
) -> tuple[list[dict[str, Any]], list[int]]:
    """One entry per image among ``rows`` (by ``image_key``, in order of first appearance), and the
    entry index of each row. An image's preview is read once, from its first (most suspicious) row."""
    keys, refs = _texts(table, "image_key"), _texts(table, "image")
    ids = table["id"].astype(str).to_numpy()
    keys = np.where(keys == "", ids, keys)
    totals = pd.Series(keys).value_counts()
    entries: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    done: dict[str, dict[str, Any]] = {}  # previews by reference: one file under several keys is read once
    at = []
    for r in rows:
        key = str(keys[r])
        if key not in index:
            ref = str(refs[r])
            shown = done.get(ref) if ref else None
            if shown is None:
                shown = _preview(ref, int(r), images, thumbnail)
                if ref:
                    done[ref] = shown
            index[key] = len(entries)
            entries.append({"key": key, "ref": ref, "n": int(totals[key]), **shown})
        at.append(index[key])
    return entries, at


def pair_records(table: pd.DataFrame, rows: np.ndarray, image_at: list[int], detectors: list[str]) -> list[dict]:
    """The pairs of the page as JSON-ready dicts (short keys; read by the page's script)."""
    text = {c: _texts(table, c) for c in ("caption", *TEXT_COLUMNS)}
    ids, kinds = table["id"].astype(str).to_numpy(), table["type"].astype(str).to_numpy()
    score = table["score"].to_numpy(float)
    probs = np.column_stack(
        [table[f"p_{k}"].to_numpy(float) if f"p_{k}" in table else np.full(len(table), np.nan) for k in KINDS]
    )
    dets = np.column_stack([table[f"score_{d}"].to_numpy(float) for d in detectors]) if detectors else None
    out = []
    for r, img in zip(rows, image_at):
        t = {c: str(v[r]) for c, v in text.items()}
        out.append(
            {
                "id": str(ids[r]),
                "img": img,
                "cap": t["caption"],
                "type": str(kinds[r]),
                "score": _num(score[r]),
                "p": [_num(v) for v in probs[r]],
                "det": [] if dets is None else [_num(v) for v in dets[r]],
                "src": t["source"],
                "expl": t["explanation"],
                "slot": t["slot"],
                "stated": t["stated"],
                "likely": t["likely"],
                "missing": t["missing"],
                "better": t["better_match"],
            }
        )
    return out


def _type_names(table: pd.DataFrame) -> list[str]:
    seen = set(table["type"].astype(str))
    return list(KINDS) + sorted(seen - set(KINDS))


def summary_html(table: pd.DataFrame, rows: np.ndarray, summary: Mapping[str, Any], cap: int) -> str:
    """The page's head: pairs per type (counts from the table; rates and intervals from ``summary``),
    ingestion counts and the sentence saying how many pairs the page shows."""
    e = html.escape
    kinds = table["type"].astype(str)
    counts, shown = kinds.value_counts(), kinds.iloc[rows].value_counts()
    rates = summary.get("types", {})
    body = []
    for k in _type_names(table):
        ci = rates.get(k, {}).get("ci95")
        interval = f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %" if ci else "–"
        rate = 100 * counts.get(k, 0) / max(1, len(table))
        body.append(
            f"<tr data-type='{e(k)}'><td>{e(k)}</td><td class='count'>{counts.get(k, 0)}</td><td>{rate:.1f} %</td>"
            f"<td>{interval}</td><td class='shown'>{shown.get(k, 0)}</td></tr>"
        )
    ingest = summary.get("ingest") or {}
    read = (
        f" Ingestion: {ingest.get('rows_read', '?')} rows read, {ingest.get('accepted', '?')} accepted, "
        f"{ingest.get('quarantined', 0)} quarantined (quarantine.jsonl says why)."
        if ingest
        else ""
    )
    n_non = int((kinds != "aligned").sum())
    non_shown = int((kinds.iloc[rows] != "aligned").sum())
    which = (
        f"all {n_non} non-aligned pairs and the {len(rows) - non_shown} highest-scoring aligned ones"
        if non_shown == n_non
        else f"the {non_shown} most suspicious of the {n_non} non-aligned pairs"
    )
    return (
        f"<section id='summary'><p>{len(table)} pairs, {int(summary.get('flagged', n_non))} flagged for quarantine.{read}</p>"
        "<table><tr><th>type</th><th>pairs</th><th>rate</th><th>95 % CI (Wilson)</th><th>in this page</th></tr>"
        f"{''.join(body)}</table><p id='shown'>Showing {len(rows)} of {len(table)} pairs: {which} "
        f"(at most {cap}; set <code>gallery=N</code> to change), most suspicious first. "
        "Every pair is in pairs.parquet.</p></section>"
    )


def controls_html(table: pd.DataFrame, rows: np.ndarray) -> str:
    """Type buttons with counts (in the page / in the dataset), the slot menu and the search box."""
    e = html.escape
    kinds = table["type"].astype(str)
    counts, shown = kinds.value_counts(), kinds.iloc[rows].value_counts()
    buttons = [f"<button type='button' data-type='' class='on'>all <span class='n'>{len(rows)}</span></button>"]
    for k in _type_names(table):
        buttons.append(
            f"<button type='button' data-type='{e(k)}'>{e(k)} <span class='n'>{shown.get(k, 0)}</span>"
            f" <span class='of'>of {counts.get(k, 0)}</span></button>"
        )
    slots: dict[str, int] = {}
    for slot, missing in zip(_texts(table, "slot")[rows], _texts(table, "missing")[rows]):
        for s in {slot, *(m.strip() for m in missing.split(","))} - {""}:
            slots[s] = slots.get(s, 0) + 1
    options = "".join(
        f"<option value='{e(s)}'>{e(s)} ({n})</option>" for s, n in sorted(slots.items(), key=lambda x: (-x[1], x[0]))
    )
    return (
        f"<div id='types' role='group' aria-label='type'>{''.join(buttons)}</div>"
        f"<label>slot (wrong or missing) <select id='slot'><option value=''>any</option>{options}</select></label> "
        "<label>search <input id='q' type='search' placeholder='caption, id or path'></label>"
    )


def _plots_html(plots: Mapping[str, Path]) -> str:
    imgs = []
    for name, path in plots.items():
        b64 = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        imgs.append(
            f"<img class='plot' id='plot-{html.escape(name)}' alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>"
        )
    return f"<section id='plots'>{''.join(imgs)}</section>" if imgs else ""


def render_gallery(
    table: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    images: np.ndarray | None = None,
    thumbnail: Thumbnail | None = None,
    cap: int = GALLERY_CAP,
    plots: Mapping[str, Path] | None = None,
) -> str:
    """The gallery page as HTML text (see the module docstring).

    Parameters
    ----------
    table : DataFrame
        The pair table; needs ``id``, ``caption``, ``score``, ``type``; uses the other columns of
        ``pairs.parquet`` where present (``image``, ``image_key``, ``source``, ``p_*``, ``score_*`` …).
    summary : mapping
        ``summary.json`` (``types`` rates and intervals, ``flagged``, ``ingest``).
    images : array, optional
        Decoded copies, ``images[i]`` (S, S, 3) uint8 for table row ``i`` (a memmap is fine).
    thumbnail : callable, optional
        ``thumbnail(ref) -> (h, w, 3) uint8 | str | None``; see the module docstring.
    cap : int
        Most pairs in the page.
    plots : mapping, optional
        Name → PNG file, embedded in that order.
    """
    rows = select_pairs(table, cap)
    entries, image_at = image_entries(table, rows, images, thumbnail)
    detectors = [c[len("score_") :] for c in table.columns if c.startswith("score_")]
    data = {
        "kinds": list(KINDS),
        "detectors": detectors,
        "pageSize": PAGE_SIZE,
        "images": entries,
        "pairs": pair_records(table, rows, image_at, detectors),
    }
    read = sum(1 for x in entries if x["uri"] and "note" not in x)
    copies = sum(1 for x in entries if "note" in x)
    previews = (
        f"<p id='previews'>{len(entries)} images: {read} previews re-read from the original files, "
        f"{copies} from decoded copies, {len(entries) - read - copies} without a preview (the reason is shown).</p>"
    )
    head = (
        "<h1>Misalignment diagnosis: pairs for review</h1>"
        + summary_html(table, rows, summary, cap)
        + _plots_html(plots or {})
        + previews
    )
    return page("misalignlab diagnosis gallery", head, controls_html(table, rows), data)


def write_gallery(
    path: Path,
    table: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    images: np.ndarray | None = None,
    thumbnail: Thumbnail | None = None,
    cap: int = GALLERY_CAP,
    plots: Mapping[str, Path] | None = None,
) -> Path:
    """Write :func:`render_gallery` to ``path`` atomically; returns the path."""
    text = render_gallery(table, summary, images=images, thumbnail=thumbnail, cap=cap, plots=plots)
    atomic_write_text(Path(path), text)
    return Path(path)
