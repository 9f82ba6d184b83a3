"""``misalignlab export``: clear errors for bad input, and every format from a real run folder."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from tests.workflows.export_data import diagnose, tar_set

from misalignlab.cli import main


def test_bad_types_name_the_valid_ones(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--to", "csv", "--types", "wrong,typo"]) == 2
    assert "unknown type(s) 'typo'; valid: aligned, incomplete, wrong, unrelated or all" in capsys.readouterr().err


def test_a_folder_that_is_not_a_run_folder_says_so(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--to", "csv"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a diagnose run folder (no pairs.parquet, summary.json, config.json)" in err
    assert main(["export", str(tmp_path), "--to", "excel"]) == 2
    assert "unknown export format 'excel'; valid: csv, label-studio, manifest" in capsys.readouterr().err


@pytest.mark.slow
def test_export_every_format_from_a_tar_diagnosis(tmp_path, capsys):
    data, truth = tar_set(tmp_path / "shards")
    run = diagnose(data, tmp_path / "run")
    capsys.readouterr()
    pairs = pd.read_parquet(run / "pairs.parquet")
    flagged = pairs[pairs["type"] != "aligned"]

    assert main(["export", str(run), "--to", "csv"]) == 0
    review = run / "export" / "review.csv"
    assert capsys.readouterr().out == f"wrote {len(flagged)} pairs to {review}\n"
    with open(review, encoding="utf-8", newline="") as fh:
        assert sorted(r["id"] for r in csv.DictReader(fh)) == sorted(flagged["id"])

    assert main(["export", str(run), "--to", "label-studio", "--types", "all"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {len(pairs)} pairs to {run / 'export' / 'label_studio_tasks.json'}" in printed
    assert (run / "export" / "label_studio_config.xml").is_file() and "LOCAL_FILES" not in printed  # images embedded

    out = tmp_path / "clean"
    assert main(["export", str(run), "--to", "manifest", "--types", "wrong,unrelated", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    kept = int((~pairs["type"].isin(["wrong", "unrelated"])).sum())
    assert printed[0].startswith(f"wrote a cleaned copy ({kept} pairs kept, {len(pairs) - kept} left out)")
    assert printed[-1] == f"diagnose it with: misalignlab diagnose {out}"
    assert sorted(p.name for p in out.iterdir()) == ["00000.tar", "00001.tar"]
