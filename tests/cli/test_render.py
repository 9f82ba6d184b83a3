"""The ``render`` command and the scene dataset folder format (write, read back, reject)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from misalignlab.cli import main
from misalignlab.data.scenes.dataset import make_scene_pairs, read_dataset_folder, write_dataset_folder
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


INJ = InjectionCfg(omit=("background",), perturb={"defect": 0.5}, outlier_rate=0.2, drop_rate=0.2, synonyms=True)


def assert_same_pairs(a, b) -> None:
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    pd.testing.assert_frame_equal(a.factors, b.factors)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert (a.scene_cfg, a.inj_cfg, a.seed) == (b.scene_cfg, b.inj_cfg, b.seed)


def test_folder_round_trip(tmp_path) -> None:
    pairs = make_scene_pairs(40, SceneCfg(size=32, causal=True), INJ, seed=4)
    seen: list[int] = []
    folder = write_dataset_folder(pairs, tmp_path / "scenes", on_image=seen.append)
    assert seen == list(range(40))
    table = pd.read_csv(folder / "captions.csv")
    assert list(table.columns) == ["image", "caption"] and table["image"][0] == "images/000000.png"
    assert sorted(p.name for p in folder.iterdir()) == ["captions.csv", "config.json", "images", "truth.parquet"]
    assert_same_pairs(read_dataset_folder(folder), pairs)


def test_render_command_writes_a_readable_folder(tmp_path) -> None:
    out = tmp_path / "run"
    argv = ["render", "--n", "12", "--out", str(out), "--size", "32", "--seed", "4", "--causal", "--synonyms"]
    argv += ["--omit", "background", "--perturb", "defect=0.5", "--outlier-rate", "0.2", "--drop-rate", "0.2"]
    assert main(argv) == 0
    loaded = read_dataset_folder(out)
    assert loaded.images.shape == (12, 32, 32, 3)
    assert_same_pairs(loaded, make_scene_pairs(12, SceneCfg(size=32, causal=True), INJ, seed=4))
    assert json.loads((out / "config.json").read_text())["injection"]["perturb"] == {"defect": 0.5}


@pytest.mark.parametrize(
    "extra",
    [["--perturb", "defect"], ["--perturb", "rotation=0.5"], ["--omit", "hue"], ["--outlier-rate", "2"]],
)
def test_render_command_rejects_bad_settings(tmp_path, extra: list[str]) -> None:
    assert main(["render", "--n", "3", "--out", str(tmp_path / "bad"), *extra]) == 2
    assert not (tmp_path / "bad").exists()


def test_reader_rejects_paths_outside_the_folder(tmp_path) -> None:
    folder = write_dataset_folder(make_scene_pairs(3, SceneCfg(size=32), seed=1), tmp_path / "d")
    (folder / "captions.csv").write_text("image,caption\n../../etc/passwd,a part\nimages/000001.png,x\n")
    with pytest.raises(ValueError, match="row 2: image path '../../etc/passwd' leaves the folder"):
        read_dataset_folder(folder)
    with pytest.raises(ValueError, match="missing"):
        read_dataset_folder(tmp_path / "nowhere")
