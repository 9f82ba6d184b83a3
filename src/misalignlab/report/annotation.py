"""Annotation files from a diagnosis: a review CSV for spreadsheets and Label Studio tasks with their labeling config.

Captions are untrusted text and end up in tools that interpret it:

- **CSV**: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed
  with ``'``, so a spreadsheet shows it as text instead of running it as a formula (OWASP's advice
  against CSV injection); the csv module quotes commas, quotes and newlines.
- **JSON**: ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e``, ``\\u0026``: the values read
  back unchanged, and no raw markup reaches a page that embeds the file.

Label Studio's import format is a list of tasks ``{"data": {...}, "predictions": [{"model_version",
"score", "result": [...]}]}`` whose ``data`` keys match the ``$variables`` of the labeling config
(:func:`labeling_config`). This module renders; it reads no run folder and opens no image.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import pandas as pd

from misalignlab.kinds import KINDS

REVIEW_COLUMNS: tuple[str, ...] = (
    "image",
    "caption",
    "type",
    "explanation",
    "suggested_fix",
    "score",
    "id",
    "image_key",
    "source",
    *(f"p_{k}" for k in KINDS),
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local storage URL prefix
TYPE_CONTROL, FIX_CONTROL = "type", "corrected_caption"  # control names in the labeling config


def csv_cell(value: Any) -> Any:
    """A text cell made safe for spreadsheets (``'`` before a formula start); other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def review_csv(table: pd.DataFrame) -> str:
    """CSV text of ``table``'s :data:`REVIEW_COLUMNS`, in the table's order, every text cell made safe."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(REVIEW_COLUMNS)
    cols = [table[c].tolist() for c in REVIEW_COLUMNS]
    for row in zip(*cols):
        out.writerow([csv_cell(v) if isinstance(v, str) else _number(v) for v in row])
    return buf.getvalue()


def _number(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


def local_files_url(path: str | Path, document_root: str | Path) -> str:
    """Label Studio local storage URL of an image file: ``/data/local-files/?d=<path relative to the root>``.

    ``document_root`` is Label Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``. Raises
    ``ValueError`` naming both when the file is not inside it.
    """
    file, root = Path(path).resolve(), Path(document_root).resolve()
    if not file.is_relative_to(root):
        raise ValueError(f"image {file} is not inside the Label Studio document root {root}; set --document-root")
    return LOCAL_FILES + quote(file.relative_to(root).as_posix(), safe="/")


def _task(row: Mapping[str, Any], image: str, model_version: str) -> dict[str, Any]:
    result = [
        {
            "from_name": TYPE_CONTROL,
            "to_name": "caption",
            "type": "choices",
            "value": {"choices": [str(row["type"])]},
        }
    ]
    if row["type"] == "wrong" and row["suggested_fix"]:  # a corrected caption to accept or edit
        result.append(
            {
                "from_name": FIX_CONTROL,
                "to_name": "caption",
                "type": "textarea",
                "value": {"text": [row["suggested_fix"]]},
            }
        )
    data = {
        "image": image,
        "caption": str(row["caption"]),
        "explanation": str(row["explanation"]),
        "suggested_fix": str(row["suggested_fix"]),
        "pair_id": str(row["id"]),
        "image_ref": str(row["image"]),
        "source": str(row["source"]),
    }
    return {
        "data": data,
        "predictions": [{"model_version": model_version, "score": float(row["score"]), "result": result}],
    }


def label_studio_tasks(table: pd.DataFrame, images: Sequence[str], model_version: str) -> list[dict[str, Any]]:
    """One task per row of ``table`` (:data:`REVIEW_COLUMNS`), pre-annotated with the diagnosed type.

    ``images[i]`` is what ``data.image`` holds for row ``i``: a local-files URL or a ``data:`` URI.
    """
    rows = table.to_dict("records")
    if len(rows) != len(images):
        raise ValueError(f"{len(rows)} rows but {len(images)} image values")
    return [_task(row, image, model_version) for row, image in zip(rows, images)]


def tasks_json(tasks: Sequence[Mapping[str, Any]]) -> str:
    """JSON text of the tasks with ``<``, ``>`` and ``&`` escaped (the values read back unchanged)."""
    text = json.dumps(list(tasks), ensure_ascii=False, indent=1)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") + "\n"


def labeling_config(kinds: Sequence[str] = KINDS) -> str:
    """Label Studio labeling config: the image, its caption, the diagnosis, a type choice, a corrected caption."""
    choices = "\n".join(f"    <Choice value={quoteattr(k)}/>" for k in kinds)
    return (
        "<View>\n"
        '  <Image name="image" value="$image"/>\n'
        '  <Header value="Caption"/>\n'
        '  <Text name="caption" value="$caption"/>\n'
        '  <Header value="Why it was flagged"/>\n'
        '  <Text name="explanation" value="$explanation"/>\n'
        '  <Header value="Suggested fix"/>\n'
        '  <Text name="suggested_fix" value="$suggested_fix"/>\n'
        '  <Header value="Does the caption match the image?"/>\n'
        f'  <Choices name="{TYPE_CONTROL}" toName="caption" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f'  <TextArea name="{FIX_CONTROL}" toName="caption" placeholder="corrected caption" '
        'editable="true" maxSubmissions="1"/>\n'
        "</View>\n"
    )
