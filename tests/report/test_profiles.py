"""``misalignlab profiles``: two runs side by side with known counts, escaping, errors, a real run."""

import json

import pandas as pd
import pytest

from misalignlab.cli import main
from misalignlab.report.profiles import load_profile, load_profiles, profile_table, top_slots
from misalignlab.report.profiles_page import write_profiles
from misalignlab.stats import wilson_interval


def _summary(folder, pairs, types, omitted, wrong, backend="scratch"):
    folder.mkdir(parents=True)
    data = {
        "pairs": pairs,
        "flagged": pairs - types["aligned"],
        "types": {
            k: {"count": c, "rate": c / pairs, "ci95": list(wilson_interval(c, pairs))} for k, c in types.items()
        },
        "profile": {"omitted": omitted, "wrong": wrong},
        "config": {"embed": {"backend": backend, "model": {}}},
    }
    (folder / "summary.json").write_text(json.dumps(data))
    return folder


@pytest.fixture
def two_runs(tmp_path):
    a = _summary(
        tmp_path / "line_a",
        100,
        {"aligned": 70, "incomplete": 10, "wrong": 15, "unrelated": 5},
        {"colour": 8, "size": 2},
        {"shape": 9, "colour": 6},
    )
    b = _summary(
        tmp_path / "line_b",
        50,
        {"aligned": 40, "incomplete": 5, "wrong": 5, "unrelated": 0},
        {"size": 5},
        {"<script>alert(1)</script>": 5},
        backend="text:minilm",
    )
    return a, b


def test_profiles_known_rates_intervals_and_top_slots(two_runs, tmp_path):
    table = profile_table(load_profiles(two_runs))
    row = table[(table.run == "line_a") & (table.section == "type") & (table.name == "wrong")].iloc[0]
    assert row["count"] == 15 and row.rate == 0.15 and (row.ci_low, row.ci_high) == wilson_interval(15, 100)
    size_b = table[(table.run == "line_b") & (table.section == "omitted") & (table.name == "size")].iloc[0]
    assert size_b.rate == 0.1 and size_b.backbone == "text:minilm"
    assert top_slots(table, "omitted", 5) == ["size", "colour"]  # B's 10 % beats A's 8 %
    assert top_slots(table, "wrong_slot", 1) == ["<script>alert(1)</script>"]  # 10 % of B > 9 % of A
    paths = write_profiles(two_runs, tmp_path / "out", top=3)
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == 2 * (4 + 2 + 3)  # per run: four types, the 2 omitted and 3 wrong slots of either run
    assert csv[(csv.run == "line_b") & (csv.name == "colour") & (csv.section == "omitted")]["count"].tolist() == [0]
    md = paths["markdown"].read_text()
    assert "| line_a | scratch | 100 | 30 | 70.0 % [" in md and "15.0 % [" in md
    assert "&lt;script&gt;" in md and "<script" not in md
    saved = json.loads(paths["json"].read_text())
    assert [r["name"] for r in saved["runs"]] == ["line_a", "line_b"] and len(saved["rows"]) == len(csv)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["html"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "data:image/png;base64," in page and "http" not in page  # self-contained


def test_profiles_errors_name_the_folder(two_runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=f"{tmp_path / 'empty'} holds no summary.json"):
        load_profiles([two_runs[0], tmp_path / "empty"])
    with pytest.raises(ValueError, match="does not exist"):
        load_profile(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text('{"pairs": 3}')
    with pytest.raises(ValueError, match=r"bad/summary.json is not a diagnose summary"):
        load_profile(tmp_path / "bad")
    assert main(["profiles", str(two_runs[0]), str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no summary.json" in capsys.readouterr().err


def test_same_folder_names_get_their_parent(tmp_path):
    types = {"aligned": 1, "incomplete": 0, "wrong": 0, "unrelated": 0}
    runs = [_summary(tmp_path / p / "diag", 1, types, {}, {}) for p in ("plant1", "plant2")]
    assert [p.name for p in load_profiles(runs)] == ["plant1/diag", "plant2/diag"]


@pytest.mark.slow
def test_profiles_cli_on_a_real_diagnose_run(two_runs, tmp_path, capsys):
    from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
    from misalignlab.data.scenes.factors import SceneCfg
    from misalignlab.data.scenes.inject import InjectionCfg

    pairs = make_scene_pairs(40, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2, drop_rate=0.2), seed=0)
    data = write_dataset_folder(pairs, tmp_path / "data")
    run = tmp_path / "real"
    argv = [
        "diagnose",
        str(data / "captions.csv"),
        "--out",
        str(run),
        "--steps",
        "3",
        "--set",
        "embed.reweight_steps=0",
    ]
    assert main([*argv, "--backbone", "scratch"]) == 0
    out = tmp_path / "prof"
    assert main(["profiles", str(run), str(two_runs[1]), "--out", str(out)]) == 0
    real = load_profile(run)
    assert real.pairs == 40 and sum(real.types.values()) == 40 and real.backbone == "scratch"
    assert "| real | scratch | 40 |" in capsys.readouterr().out
    assert (out / "profiles.html").is_file() and (out / "profiles.png").is_file()
