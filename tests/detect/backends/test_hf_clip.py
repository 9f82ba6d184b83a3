"""``hf:PATH``: a tiny randomly initialised CLIP (or SigLIP) saved with ``save_pretrained`` loads through
the same path a real checkpoint takes (offline), embeds the original files at its processor's size,
caches, and fails clearly when broken."""

import json
import string

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from misalignlab.cli import main  # noqa: E402
from misalignlab.detect.backends import BACKENDS, EmbedCfg  # noqa: E402
from misalignlab.detect.crossfit import crossfit_embeddings  # noqa: E402


def save_tiny_clip(folder, seed=0, side=16):
    """A 1-layer CLIP (``side``-pixel images, character-level BPE vocabulary) with tokenizer and PIL processor."""
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
        image_size=side, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(seed)
    transformers.CLIPModel(
        transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)
    ).save_pretrained(folder)
    transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor.save_pretrained(folder)
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


def _originals(tmp_path, n=6):
    """``n`` 80×60 PNG originals with a CSV manifest (id, image, caption): stripes of a 6-pixel period over a
    smooth colour field, detail a 16-pixel store cannot hold but a 64-pixel input keeps."""
    from PIL import Image

    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:60, 0:80]
    lines = ["id,image,caption"]
    for i in range(n):
        field = np.asarray(Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).resize((80, 60)), float)
        stripes = 60 * np.sin(2 * np.pi * (x * np.cos(i) + y * np.sin(i)) / 6)[..., None]
        Image.fromarray(np.clip(field + stripes, 0, 255).astype(np.uint8)).save(root / f"img/{i}.png")
        lines.append(f"p{i},img/{i}.png,a red gear number {i}")
    (root / "m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "m.csv"


def _spy(monkeypatch, cls):
    """Record every ``pixel_values`` that ``cls.get_image_features`` receives."""
    seen = []
    original = cls.get_image_features
    monkeypatch.setattr(
        cls,
        "get_image_features",
        lambda self, pixel_values, **kw: seen.append(pixel_values) or original(self, pixel_values, **kw),
    )
    return seen


def _expected_pixels(processor, data, side, fit):
    """The processor applied to the original files decoded at ``side`` (what the backend should see)."""
    from misalignlab.data.ingest.images import ImageCfg, decode_image

    files = sorted((data.parent / "img").glob("*.png"), key=lambda p: int(p.stem))
    return processor(images=[decode_image(f.read_bytes(), ImageCfg(side, fit)) for f in files], return_tensors="pt")


def test_diagnosis_feeds_clip_the_original_files_at_its_processor_size(tmp_path, monkeypatch):
    from PIL import Image
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from misalignlab.data.ingest.stream import IngestCfg, open_pairs
    from misalignlab.detect.pipeline import DiagnoseCfg
    from misalignlab.workflows.diagnose import run_diagnosis

    ckpt, data = save_tiny_clip(tmp_path / "ckpt", side=64), _originals(tmp_path)
    seen = _spy(monkeypatch, transformers.CLIPModel)
    cfg = DiagnoseCfg(embed=EmbedCfg().with_backbone(f"hf:{ckpt}"), schema="none", gallery=2)
    run_diagnosis(open_pairs(data, IngestCfg(image_size=16)), cfg, tmp_path / "out")  # a 16-pixel store
    pixels = torch.cat(seen)
    assert pixels.shape == (6, 3, 64, 64)  # the processor's size, not the store's
    processor = CLIPImageProcessorPil.from_pretrained(ckpt)
    assert torch.equal(pixels, _expected_pixels(processor, data, 64, "crop")["pixel_values"])
    # From the originals: close to the processor on the full files, far from the 16-pixel store scaled up.
    full = [np.asarray(Image.open(data.parent / f"img/{i}.png").convert("RGB")) for i in range(6)]
    (store,) = (tmp_path / "out" / "cache").glob("images-*.npy")
    from_full = processor(images=full, return_tensors="pt")["pixel_values"]
    from_store = processor(images=list(np.load(store)), return_tensors="pt")["pixel_values"]
    assert (pixels - from_full).abs().mean() < 0.5 * (pixels - from_store).abs().mean()


def test_unreadable_originals_fall_back_to_the_store_and_the_key_names_the_image_source(tmp_path, caplog):
    from misalignlab.data.ingest.image_store import store_pairs
    from misalignlab.data.ingest.originals import ImageSource
    from misalignlab.data.ingest.stream import IngestCfg, open_pairs

    ckpt, data = save_tiny_clip(tmp_path / "ckpt", side=64), _originals(tmp_path)
    stream = open_pairs(data, IngestCfg(image_size=16))
    pairs = store_pairs(stream, tmp_path / "store")
    source = ImageSource.of_stream(stream, pairs.rows)
    cfg = EmbedCfg().with_backbone(f"hf:{ckpt}")
    args = (pairs.ids, pairs.images, pairs.captions, cfg)
    from_files = crossfit_embeddings(*args, tmp_path / "emb", originals=source)
    from_store = crossfit_embeddings(*args, tmp_path / "emb")
    assert from_files.folder.name != from_store.folder.name  # another image source, another cache entry
    assert not np.allclose(from_files.image_emb, from_store.image_emb, atol=1e-3)
    assert crossfit_embeddings(*args, tmp_path / "emb", originals=source).cache_hit
    (data.parent / "img" / "2.png").unlink()
    with caplog.at_level("WARNING"):
        again = crossfit_embeddings(*args, None, originals=source)
    assert "img/2.png" in caplog.text and "1 of 6 originals could not be re-read" in caplog.text
    keep = np.arange(6) != 2
    np.testing.assert_allclose(again.image_emb[keep], from_files.image_emb[keep], atol=1e-5)
    assert np.isfinite(again.image_emb).all() and not np.allclose(again.image_emb[2], from_files.image_emb[2])


def save_tiny_siglip(folder, seed=0, side=32):
    """A 1-layer SigLIP (``side``-pixel images) with a character-level tokenizer.json and the PIL processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for c in string.ascii_lowercase + string.digits + "- ":
        vocab.setdefault(c, len(vocab))
    text = dict(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=24,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    vision = dict(
        image_size=side, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(seed)
    transformers.SiglipModel(transformers.SiglipConfig(text_config=text, vision_config=vision)).save_pretrained(folder)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    fast.save_pretrained(folder)
    SiglipImageProcessorPil(size={"height": side, "width": side}).save_pretrained(folder)
    return folder


def test_tiny_siglip_embeds_like_the_model_itself_padded_to_full_length(tmp_path):
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from misalignlab.data.ingest.originals import ImageInput

    ckpt = save_tiny_siglip(tmp_path / "sig")
    cfg = EmbedCfg().with_backbone(f"hf:{ckpt}")
    backend = BACKENDS.get("hf")(cfg, 20)
    assert backend.family.title == "SigLIP" and backend.image_input() == ImageInput(32, "stretch")
    ids, images, captions = _pairs(6)
    emb = crossfit_embeddings(ids, images, captions, cfg)
    assert emb.image_emb.shape == (6, 16) and (emb.fold == 0).all()
    model = transformers.SiglipModel.from_pretrained(ckpt).eval()
    tok = transformers.AutoTokenizer.from_pretrained(ckpt)
    pixels = SiglipImageProcessorPil.from_pretrained(ckpt)(images=list(images), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (6, 3, 32, 32)
    full = tok(captions, padding="max_length", max_length=24, truncation=True, return_tensors="pt")["input_ids"]
    longest = tok(captions, padding=True, return_tensors="pt")
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(input_ids=full).pooler_output  # as SigLIP was trained: no mask
        short = model.get_text_features(**longest).pooler_output
    unit = lambda x: (x / x.norm(dim=1, keepdim=True)).numpy()  # noqa: E731
    assert np.allclose(emb.image_emb, unit(img), atol=1e-5) and np.allclose(emb.text_emb, unit(txt), atol=1e-5)
    assert not np.allclose(emb.text_emb, unit(short), atol=1e-3)  # the padding matters
    assert np.allclose(emb.embed_texts(0, captions[:2]), emb.text_emb[:2], atol=1e-5)


def test_siglip_sees_the_original_files_stretched_to_its_size(tmp_path, monkeypatch):
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from misalignlab.data.ingest.image_store import store_pairs
    from misalignlab.data.ingest.originals import ImageSource
    from misalignlab.data.ingest.stream import IngestCfg, open_pairs

    ckpt, data = save_tiny_siglip(tmp_path / "sig"), _originals(tmp_path)
    stream = open_pairs(data, IngestCfg(image_size=16))
    pairs = store_pairs(stream, tmp_path / "store")
    seen = _spy(monkeypatch, transformers.SiglipModel)
    cfg = EmbedCfg().with_backbone(f"hf:{ckpt}")
    crossfit_embeddings(
        pairs.ids, pairs.images, pairs.captions, cfg, originals=ImageSource.of_stream(stream, pairs.rows)
    )
    processor = SiglipImageProcessorPil.from_pretrained(ckpt)
    assert torch.equal(torch.cat(seen), _expected_pixels(processor, data, 32, "stretch")["pixel_values"])


def test_unknown_model_types_are_named(tmp_path):
    ckpt = save_tiny_siglip(tmp_path / "sig")
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(config | {"model_type": "siglip2"}))
    with pytest.raises(ValueError, match="model_type 'siglip2', expected 'clip' or 'siglip'"):
        BACKENDS.get("hf")(EmbedCfg(backend="hf", path=str(ckpt)), 16)
