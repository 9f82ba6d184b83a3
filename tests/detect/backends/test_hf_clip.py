"""``hf:PATH``: a tiny randomly initialised CLIP saved with ``save_pretrained`` loads through the
same path a real checkpoint takes (offline), embeds, caches, and fails clearly when broken."""

import json
import string

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from misalignlab.cli import main  # noqa: E402
from misalignlab.detect.backends import BACKENDS, EmbedCfg  # noqa: E402
from misalignlab.detect.crossfit import crossfit_embeddings  # noqa: E402


def save_tiny_clip(folder, seed=0):
    """A 1-layer CLIP (16-pixel images, character-level BPE vocabulary) with tokenizer and PIL processor."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits + "-":
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    text = dict(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = dict(
        image_size=16, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(seed)
    transformers.CLIPModel(
        transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)
    ).save_pretrained(folder)
    transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "ckpt")


def _pairs(n=12, size=20):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return [f"p{i}" for i in range(n)], images, [f"a red gear number {i}" for i in range(n)]


def test_tiny_clip_embeds_like_the_model_itself_and_caches(tiny_clip, tmp_path):
    ids, images, captions = _pairs()
    cfg = EmbedCfg().with_backbone(f"hf:{tiny_clip}")
    emb = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path)
    assert (emb.fold == 0).all() and emb.image_emb.shape == (12, 8) and not emb.cache_hit  # one model, no folds
    assert np.allclose(np.linalg.norm(emb.text_emb, axis=1), 1, atol=1e-5)
    # Reference: the checkpoint used directly, as its own documentation shows.
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    model = transformers.CLIPModel.from_pretrained(tiny_clip).eval()
    tok = transformers.AutoTokenizer.from_pretrained(tiny_clip)
    pixels = CLIPImageProcessorPil.from_pretrained(tiny_clip)(images=list(images), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (12, 3, 16, 16)  # resized from 20 to the checkpoint's 16
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(**tok(captions, padding=True, return_tensors="pt")).pooler_output
    unit = lambda x: (x / x.norm(dim=1, keepdim=True)).numpy()  # noqa: E731
    assert np.allclose(emb.image_emb, unit(img), atol=1e-5) and np.allclose(emb.text_emb, unit(txt), atol=1e-5)
    again = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path)
    assert again.cache_hit and np.allclose(again.embed_texts(0, captions[:2]), emb.text_emb[:2], atol=1e-5)


def test_replacing_the_checkpoint_in_place_invalidates_the_cache(tmp_path):
    ckpt = save_tiny_clip(tmp_path / "ckpt", seed=0)
    ids, images, captions = _pairs(6)
    cfg = EmbedCfg().with_backbone(f"hf:{ckpt}")
    first = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path / "cache")
    save_tiny_clip(ckpt, seed=1)  # same folder, same config, other weights
    second = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path / "cache")
    assert not second.cache_hit and not np.allclose(first.image_emb, second.image_emb)


def test_broken_weights_raise_a_clear_error(tiny_clip, tmp_path):
    import shutil

    bad = shutil.copytree(tiny_clip, tmp_path / "bad")
    (bad / "model.safetensors").write_bytes((tiny_clip / "model.safetensors").read_bytes()[:100])
    backend = BACKENDS.get("hf")(EmbedCfg(backend="hf", path=str(bad)), 16)
    with pytest.raises(ValueError, match=f"{bad} could not be loaded as CLIP"):
        backend.fit_fold(0, np.zeros((0, 16, 16, 3), np.uint8), [])


@pytest.mark.slow
def test_diagnose_cli_with_hf_backbone(tiny_clip, tmp_path, capsys):
    from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
    from misalignlab.data.scenes.factors import SceneCfg
    from misalignlab.data.scenes.inject import InjectionCfg

    pairs = make_scene_pairs(30, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2), seed=0)
    folder = write_dataset_folder(pairs, tmp_path / "data")
    out = tmp_path / "diag"
    assert main(["diagnose", str(folder / "captions.csv"), "--out", str(out), "--backbone", f"hf:{tiny_clip}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 30 and summary["config"]["embed"]["backend"] == "hf"
    assert summary["config"]["embed"]["path"] == str(tiny_clip)
    assert main(["diagnose", str(folder / "captions.csv"), "--out", str(out), "--backbone", "clip"]) == 2
    assert "unknown backbone 'clip'" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_cli_detects_with_hf_backbone(tiny_clip, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = [
        "compare",
        "tiny",
        "--strategies",
        "filter",
        "--seeds",
        "1",
        "--out",
        str(out),
        "--backbone",
        f"hf:{tiny_clip}",
    ]
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["compare"]["backbone"] == f"hf:{tiny_clip}"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows].count("detect") == 1
    cache = list((out / "cache").iterdir())
    assert len(cache) == 1 and not (cache[0] / "models" / "fold1").exists()  # one pretrained model, no folds
    assert main([*argv[:-1], "scratchy"]) == 2 and "unknown backbone 'scratchy'" in capsys.readouterr().err
