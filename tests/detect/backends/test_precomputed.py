"""``precomputed:FILE.npz`` / ``--embeddings``: codes looked up by id, checked with clear errors, and a
diagnosis that skips word-level evidence because new captions cannot be embedded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from misalignlab.detect.backends import BACKENDS, EmbedCfg, parse_backbone, unit
from misalignlab.detect.crossfit import crossfit_embeddings
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs


def _codes(n: int = 40, d: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids and codes where the first 5 captions are swapped with unrelated ones."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    img = rng.normal(size=(n, d))
    txt = img + 0.1 * rng.normal(size=(n, d))
    txt[:5] = rng.normal(size=(5, d))
    return ids, img, txt


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_spec_and_config_round_trip(tmp_path):
    cfg = EmbedCfg().with_backbone(f"precomputed:{tmp_path}/codes.npz")
    assert (cfg.backend, cfg.path) == ("precomputed", str(tmp_path / "codes.npz"))
    assert cfg.backbone == f"precomputed:{tmp_path / 'codes.npz'}"
    with pytest.raises(ValueError, match="needs a file: precomputed:FILE.npz"):
        parse_backbone("precomputed:")
    with pytest.raises(ValueError, match="needs embed.path"):
        EmbedCfg(backend="precomputed")


def test_codes_are_looked_up_by_id_and_the_diagnosis_skips_word_evidence(tmp_path, caplog):
    ids, img, txt = _codes()
    order = np.random.default_rng(1).permutation(len(ids))  # the file's rows in another order, plus extras
    extra = np.ones((3, img.shape[1]))
    path = _write(
        tmp_path / "codes.npz",
        ids=np.array([ids[i] for i in order] + ["x1", "x2", "x3"]),
        image_emb=np.vstack([img[order], extra]).astype(np.float64),
        text_emb=np.vstack([txt[order], extra]).astype(np.float16),
    )
    cfg = DiagnoseCfg(embed=EmbedCfg().with_backbone(f"precomputed:{path}"), schema="scenes")
    captions = [f"inspection: gear, red, small, intact {i}" for i in range(len(ids))]
    images = np.zeros((len(ids), 4, 4, 3), np.uint8)  # never looked at
    with caplog.at_level("INFO"):
        diag = diagnose_pairs(ids, images, captions, cfg, tmp_path / "cache")
    emb = diag.embeddings
    np.testing.assert_allclose(emb.image_emb, unit(img), atol=1e-6)
    np.testing.assert_allclose(emb.text_emb, unit(txt.astype(np.float16).astype(np.float32)), atol=1e-6)
    assert (emb.fold == 0).all() and not emb.backend.can_embed_text and not (tmp_path / "cache").exists()
    assert "cannot embed new captions" in caplog.text  # no simulated edits: no omission is typed
    assert "score_similarity" in diag.table
    assert set(diag.table.sort_values("score", ascending=False)["id"].head(5)) == set(ids[:5])
    with pytest.raises(ValueError, match="cannot embed new caption strings"):
        emb.embed_texts(0, ["a red gear"])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"ids": np.array(["p0"]), "image_emb": np.ones((1, 2))}, "lacks the array\\(s\\) text_emb"),
        (
            {"ids": np.array([0, 1]), "image_emb": np.ones((2, 2)), "text_emb": np.ones((2, 2))},
            "ids must be a 1-D string",
        ),
        (
            {"ids": np.array(["a", "b"], dtype=object), "image_emb": np.ones((2, 2)), "text_emb": np.ones((2, 2))},
            "objects",
        ),
        (
            {"ids": np.array(["a", "b"]), "image_emb": np.ones((3, 2)), "text_emb": np.ones((2, 2))},
            "image_emb must be a \\(2, D\\)",
        ),
        ({"ids": np.array(["a", "b"]), "image_emb": np.ones((2, 2)), "text_emb": np.ones((2, 3))}, "same width"),
        (
            {"ids": np.array(["a", "b"]), "image_emb": np.ones((2, 2)), "text_emb": np.array([[1, 1], [np.nan, 1]])},
            "text_emb has 1 row\\(s\\) with NaN.*'b'",
        ),
        (
            {"ids": np.array(["a", "a"]), "image_emb": np.ones((2, 2)), "text_emb": np.ones((2, 2))},
            "ids are not unique",
        ),
        (
            {"ids": np.array(["a", "b"]), "image_emb": np.array([["x", "y"], ["z", "w"]]), "text_emb": np.ones((2, 2))},
            "numeric",
        ),
    ],
)
def test_a_bad_file_raises_naming_the_file_and_the_problem(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"embeddings file {path}.*{message}"):
        BACKENDS.get("precomputed")(EmbedCfg(backend="precomputed", path=str(path)), 4)


def test_missing_unreadable_and_incomplete_files(tmp_path):
    build = lambda p: BACKENDS.get("precomputed")(EmbedCfg(backend="precomputed", path=str(p)), 4)  # noqa: E731
    with pytest.raises(ValueError, match="nope.npz does not exist"):
        build(tmp_path / "nope.npz")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="cut.npz is not a readable .npz archive"):
        build(tmp_path / "cut.npz")
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        build(tmp_path / "one.npy")
    ids, img, txt = _codes(6)
    path = _write(tmp_path / "codes.npz", ids=np.array(ids[:4]), image_emb=img[:4], text_emb=txt[:4])
    with pytest.raises(ValueError, match=f"{path} has no codes for 2 pair id\\(s\\): 'p4', 'p5'"):
        crossfit_embeddings(
            ids, np.zeros((6, 4, 4, 3), np.uint8), ["c"] * 6, EmbedCfg().with_backbone(f"precomputed:{path}")
        )


@pytest.mark.slow
def test_diagnose_cli_takes_embeddings(tmp_path, capsys):
    import pandas as pd

    from misalignlab.cli import main
    from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
    from misalignlab.data.scenes.factors import SceneCfg

    folder = write_dataset_folder(make_scene_pairs(12, SceneCfg(size=32), seed=0), tmp_path / "data")
    base = ["diagnose", str(folder / "captions.csv"), "--out", str(tmp_path / "out"), "--image-size", "16"]
    probe = main([*base, "--backbone", "scratch", "--steps", "2"])  # learn the ids the dataset gets
    assert probe == 0
    ids = pd.read_parquet(tmp_path / "out" / "pairs.parquet")["id"].tolist()
    _, img, txt = _codes(len(ids))
    path = _write(tmp_path / "codes.npz", ids=np.array(ids), image_emb=img, text_emb=txt)
    assert main([*base, "--embeddings", str(path)]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["embed"]["backend"] == "precomputed" and summary["config"]["embed"]["path"] == str(path)
    assert summary["pairs"] == len(ids)
    assert main([*base, "--embeddings", str(path), "--backbone", "scratch"]) == 2
    assert "give --embeddings or --backbone, not both" in capsys.readouterr().err
