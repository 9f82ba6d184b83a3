"""Tiny solid-colour datasets with planted misalignment, in every layout ``export --to manifest`` copies.

Each image is one colour; a caption names it (``a red square``), except every fourth caption, which
names the opposite colour: a planted ``wrong`` pair. Builders return the dataset path and the truth
(pair id → planted). :func:`diagnose` runs ``misalignlab diagnose`` on it with seconds-fast settings.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from misalignlab.cli import main

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 20)}
NAMES = tuple(COLOURS)
SHAPES = ("square", "tile", "card")
FAST = [
    "--backbone",
    "scratch",
    "--steps",
    "3",
    "--image-size",
    "16",
    "--set",
    "embed.train.batch_size=8",
    "--set",
    "embed.reweight_steps=2",
    "--set",
    "gallery=4",
]
HOSTILE = ("=cmd|' /C calc'!A0", "<script>alert('x')</script> a red square")


def png(i: int) -> bytes:
    """Image ``i``: 16×16, colour ``NAMES[i % 4]`` with a little seeded noise."""
    rng = np.random.default_rng(i)
    base = np.array(COLOURS[NAMES[i % 4]], dtype=int)
    arr = np.clip(base + rng.integers(-8, 9, (16, 16, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def captions(i: int, per_image: int) -> tuple[list[str], list[bool]]:
    """The captions of image ``i`` and which are planted (every fourth caption overall names the wrong colour)."""
    texts, planted = [], []
    for k in range(per_image):
        wrong = (i * per_image + k) % 4 == 1
        colour = NAMES[(i + 2) % 4] if wrong else NAMES[i % 4]
        texts.append(f"a {colour} {SHAPES[(i + k) % 3]}")
        planted.append(wrong)
    return texts, planted


def image_files(folder: Path, n: int) -> list[str]:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / "img" / f"{i:03d}.png").write_bytes(png(i))
    return [f"img/{i:03d}.png" for i in range(n)]


def csv_set(folder: Path, n: int = 32, hostile: bool = False) -> tuple[Path, dict[str, bool]]:
    """``data.csv`` (id, image, caption); with ``hostile``, two more rows whose captions attack spreadsheets and pages."""
    paths = image_files(folder, n)
    rows = [(f"p{i:03d}", paths[i], *captions(i, 1)) for i in range(n)]
    frame = pd.DataFrame({"id": [r[0] for r in rows], "image": paths, "caption": [r[2][0] for r in rows]})
    truth = {r[0]: r[3][0] for r in rows}
    if hostile:
        extra = pd.DataFrame({"id": ["h0", "h1"], "image": paths[:2], "caption": list(HOSTILE)})
        frame = pd.concat([frame, extra], ignore_index=True)
        truth |= {"h0": False, "h1": False}
    frame.to_csv(folder / "data.csv", index=False)
    return folder / "data.csv", truth


def jsonl_set(folder: Path, n: int = 16) -> tuple[Path, dict[str, bool]]:
    """``data.jsonl`` with two captions per image as a list: pair ids ``j<i>#<k>``."""
    paths, truth = image_files(folder, n), {}
    with open(folder / "data.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            texts, planted = captions(i, 2)
            fh.write(json.dumps({"id": f"j{i}", "image": paths[i], "caption": texts}) + "\n")
            truth |= {f"j{i}#{k}": p for k, p in enumerate(planted)}
    return folder / "data.jsonl", truth


def parquet_set(folder: Path, n: int = 16) -> tuple[Path, dict[str, bool]]:
    """``data.parquet`` holding image bytes, a caption list (two each) and a ``note`` column; two row groups."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = [captions(i, 2) for i in range(n)]
    table = pa.table(
        {
            "id": [f"q{i}" for i in range(n)],
            "image": [png(i) for i in range(n)],
            "caption": [t for t, _ in texts],
            "note": [f"row {i}" for i in range(n)],
        }
    )
    pq.write_table(table, folder / "data.parquet", row_group_size=n // 2)
    return folder / "data.parquet", {f"q{i}#{k}": p for i, (_, ps) in enumerate(texts) for k, p in enumerate(ps)}


def coco_set(folder: Path, n: int = 16, per_image: int = 2) -> tuple[Path, dict[str, bool]]:
    """``captions.json`` (COCO) with ``per_image`` annotations per image and one image that has none."""
    paths, annotations, truth = image_files(folder, n), [], {}
    for i in range(n):
        texts, planted = captions(i, per_image)
        for k, (text, p) in enumerate(zip(texts, planted)):
            annotations.append({"id": 100 + per_image * i + k, "image_id": i, "caption": text})
            truth[str(100 + per_image * i + k)] = p
    images = [{"id": i, "file_name": paths[i]} for i in range(n)] + [{"id": 999, "file_name": paths[0]}]
    doc = {"info": {"description": "colours"}, "images": images, "annotations": annotations}
    (folder / "captions.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder / "captions.json", truth


def tar_set(folder: Path, n: int = 32) -> tuple[Path, dict[str, bool]]:
    """Two webdataset shards ``0000{0,1}.tar`` of ``KEY.png`` + ``KEY.txt`` (+ ``KEY.json`` metadata)."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for shard in range(2):
        with tarfile.open(folder / f"0000{shard}.tar", "w") as tf:
            for i in range(shard * n // 2, (shard + 1) * n // 2):
                texts, planted = captions(i, 1)
                key = f"{i:06d}"
                for ext, data in (("png", png(i)), ("txt", texts[0].encode()), ("json", b'{"i": %d}' % i)):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                truth[key] = planted[0]
    return folder, truth


BUILDERS = {"csv": csv_set, "jsonl": jsonl_set, "parquet": parquet_set, "coco": coco_set, "tar": tar_set}


def diagnose(data: Path, out: Path, *extra: str) -> Path:
    """``misalignlab diagnose data --out out`` with the fast settings; returns ``out``."""
    assert main(["diagnose", str(data), "--out", str(out), *FAST, *extra]) == 0
    return out


def with_truth(run: Path, truth: dict[str, bool], to: Path) -> Path:
    """A copy of run folder ``run`` whose pair types are the planted truth (a perfect detector)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("cache"))
    pairs = pd.read_parquet(to / "pairs.parquet")
    pairs["type"] = ["wrong" if truth[i] else "aligned" for i in pairs["id"]]
    pairs.to_parquet(to / "pairs.parquet", index=False)
    return to
