"""Encoders and the pair model: output shapes, padding invariance, presets, save/load."""

import dataclasses

import pytest
import torch

from misalignlab.config import from_dict
from misalignlab.models.image_encoder import ImageEncoderCfg, ResNetEncoder
from misalignlab.models.pair_model import (
    ENCODERS,
    ImageTextModel,
    ModelCfg,
    build_model,
    encoder_preset,
    load_model,
    save_model,
)
from misalignlab.models.text_encoder import ConvTextEncoder, TextEncoderCfg
from misalignlab.models.tokenizer import WordTokenizer

CAPTIONS = ["a red cube on the left", "a big blue sphere", "green", ""]


@pytest.mark.parametrize("preset", ["tiny", "small", "resnet18"])
def test_image_presets_give_codes_of_code_dim(preset: str) -> None:
    torch.manual_seed(0)
    enc = ResNetEncoder(encoder_preset("image", preset), code_dim=5).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = enc(x)
        out_cl = enc.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    torch.testing.assert_close(out_cl, out, rtol=1e-4, atol=1e-5)  # channels-last gives the same codes


def test_resnet18_preset_is_resnet18_sized() -> None:
    enc = ResNetEncoder(encoder_preset("image", "resnet18"), code_dim=8)
    n_backbone = sum(p.numel() for n, p in enc.named_parameters() if not n.startswith(("fc", "proj")))
    assert 11.0e6 < n_backbone < 11.3e6  # torchvision's resnet18 without fc: 11.18M
    assert enc.feature_dim == 512


def test_image_encoder_handles_other_sizes_and_validates_cfg() -> None:
    enc = ResNetEncoder(ImageEncoderCfg(widths=(8, 16), blocks=(1, 2), pool_grid=2, head_dim=10), code_dim=3)
    assert enc(torch.randn(3, 3, 32, 48)).shape == (3, 3)
    with pytest.raises(ValueError, match="equal length"):
        ImageEncoderCfg(widths=(8, 16), blocks=(1,))


def _text_encoder(vocab: int = 20) -> ConvTextEncoder:
    torch.manual_seed(0)
    return ConvTextEncoder(TextEncoderCfg(embed_dim=16, widths=(12, 12, 12), dilations=(1, 2, 1)), vocab, code_dim=4)


@pytest.mark.parametrize("training", [False, True])
def test_padding_does_not_change_text_codes(training: bool) -> None:
    tok = WordTokenizer.build(CAPTIONS)
    enc = _text_encoder(len(tok)).train(training)
    with torch.no_grad():
        short = enc(tok.encode(CAPTIONS, max_len=6))
        long = enc(tok.encode(CAPTIONS, max_len=40))
        alone = enc(tok.encode(CAPTIONS[1:2], max_len=9))  # batch composition does not matter either
    assert short.shape == (4, 4)
    torch.testing.assert_close(long, short, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(alone[0], short[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(short[3], enc.proj.bias)  # empty caption: pooled zeros


def test_text_codes_do_depend_on_words_and_order() -> None:
    tok = WordTokenizer.build(["red cube left", "cube red left"])
    enc = _text_encoder(len(tok)).eval()
    with torch.no_grad():
        a, b = enc(tok.encode(["red cube left", "cube red left"], 5))
        c = enc(tok.encode(["blue cube left"], 5))[0]  # "blue" is unknown: not the same as "red"
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_model_cfg_presets_and_registry() -> None:
    tok = WordTokenizer.build(CAPTIONS)
    model = build_model(ModelCfg(code_dim=6, max_len=7), tok)
    assert isinstance(model, ImageTextModel)
    img, txt = model(torch.randn(4, 3, 64, 64), model.tokenize(CAPTIONS))
    assert img.shape == (4, 6) and txt.shape == (4, 6)
    with pytest.raises(ValueError, match="valid: resnet18, small, tiny"):
        build_model(ModelCfg(image="resnet50"), tok)
    with pytest.raises(ValueError, match="vocab_size"):
        build_model(ModelCfg())
    with pytest.raises(ValueError, match="already registered"):
        ENCODERS.register("image/tiny")(ImageEncoderCfg())
    with ENCODERS.scoped():
        ENCODERS.register("image/fake")(ImageEncoderCfg(widths=(4,), blocks=(1,)))
        assert build_model(ModelCfg(image="fake"), tok).encode_image(torch.randn(1, 3, 16, 16)).shape == (1, 8)
    assert "image/fake" not in ENCODERS
    with pytest.raises(ValueError, match="unknown config key"):
        from_dict(ModelCfg, {"image": "tiny", "widths": 3})


def test_save_and_load_model_round_trip(tmp_path) -> None:
    tok = WordTokenizer.build(CAPTIONS)
    cfg = ModelCfg(code_dim=3)
    torch.manual_seed(0)
    model = build_model(cfg, tok).eval()
    save_model(tmp_path, model, cfg)
    loaded, loaded_cfg = load_model(tmp_path)
    assert loaded_cfg == dataclasses.replace(cfg, vocab_size=len(tok))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(x), model.encode_image(x), rtol=0, atol=0)
        tokens = model.tokenize(CAPTIONS)
        torch.testing.assert_close(loaded.encode_text(loaded.tokenize(CAPTIONS)), model.encode_text(tokens))
