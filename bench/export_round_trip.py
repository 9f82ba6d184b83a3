"""diagnose → export --to manifest → diagnose, on free-form pairs written as a user's files: does cleaning help?

Usage::

    python bench/export_round_trip.py --n 4000 --style b --out round_trip.json

Writes ``N`` free-form rendered-scene pairs (30 % mixed misalignment, writing style ``--style``) as
PNG files with a CSV manifest, then runs the three commands a user would, with their defaults:
``misalignlab diagnose``, ``misalignlab export --to manifest`` (every non-aligned type left out)
and ``misalignlab diagnose`` on the cleaned manifest. Prints and writes (``--out``, JSON) the pairs,
the true misaligned share and the share typed non-aligned before and after, and how many of the
removed pairs were truly misaligned (precision of the cut) and how many misaligned pairs stayed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules, as run_gpu.py does
from diagnose_speed import write_files  # noqa: E402
from misalignlab.data.freeform.scenes import FreeformCfg, make_freeform_scene_pairs  # noqa: E402
from misalignlab.data.scenes.factors import SceneCfg  # noqa: E402
from misalignlab.runs import atomic_write_text  # noqa: E402

RATE = 0.3  # 10 % each of incomplete, wrong, unrelated, as in benchmark-detect's scene set


def write_pairs(folder: Path, n: int, style: str, seed: int) -> pd.Series:
    """``images/<id>.png`` + ``manifest.csv`` (id, image, caption); returns the true kind by id."""
    r = RATE / 3
    pairs = make_freeform_scene_pairs(n, SceneCfg(), FreeformCfg(style, r, r, r), seed)
    ids = [f"pair{i:06d}" for i in range(n)]
    shutil.rmtree(folder, ignore_errors=True)  # a rerun writes the data afresh
    folder.mkdir(parents=True)
    write_files(folder, ids, pairs.images, list(pairs.captions))  # the speed benchmark's user layout
    return pd.Series(pairs.truth["kind"].to_numpy(), index=ids)


def command(*args: str) -> None:
    """Run ``misalignlab ARGS`` as a user would (same interpreter), failing loudly."""
    code = "import sys; from misalignlab.cli import console; sys.argv[0] = 'misalignlab'; sys.exit(console())"
    subprocess.run([sys.executable, "-c", code, *args], check=True)


def typed(run: Path) -> pd.Series:
    table = pd.read_parquet(run / "pairs.parquet", columns=["id", "type"])
    return pd.Series(table["type"].to_numpy(), index=table["id"].astype(str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="pairs")
    ap.add_argument("--style", default="b", help="free-form writing style (a: developed on, b: held out)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--work", type=Path, default=Path("runs/round-trip"), help="data and run folders")
    ap.add_argument("--out", type=Path, help="JSON file of the figures")
    args = ap.parse_args()

    data = args.work / "data"
    truth = write_pairs(data, args.n, args.style, args.seed)
    first, cleaned, second = args.work / "first", args.work / "cleaned", args.work / "second"
    command("diagnose", str(data / "manifest.csv"), "--out", str(first))
    command("export", str(first), "--to", "manifest", "--out", str(cleaned))
    manifest = next(cleaned.glob("*.csv"))
    command("diagnose", str(manifest), "--root", str(data), "--out", str(second))

    before, after = typed(first), typed(second)
    removed = truth.index.difference(after.index)
    bad = truth != "aligned"
    figures = {
        "pairs": int(len(truth)),
        "style": args.style,
        "true_misaligned_before": float(bad.mean()),
        "flagged_before": float((before != "aligned").mean()),
        "pairs_after": int(len(after)),
        "true_misaligned_after": float(bad[after.index].mean()),
        "flagged_after": float((after != "aligned").mean()),
        "removed": int(len(removed)),
        "removed_truly_misaligned": float(bad[removed].mean()) if len(removed) else float("nan"),
        "misaligned_kept": int(bad[after.index].sum()),
        "misaligned_kept_by_kind": {k: int(v) for k, v in truth[after.index][bad[after.index]].value_counts().items()},
    }
    for key, value in figures.items():
        print(f"{key}: {round(value, 3) if isinstance(value, float) and np.isfinite(value) else value}")
    if args.out:
        atomic_write_text(args.out, json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
