"""The image–text model: two injected encoders plus the tokenizer that feeds the text side.

Encoder architectures are data: named presets in :data:`ENCODERS` (``image/<name>`` holds an
:class:`ImageEncoderCfg`, ``text/<name>`` a :class:`TextEncoderCfg`). :class:`ModelCfg` picks one of
each by name and :func:`build_model` instantiates them. The model computes codes only; losses live
in :mod:`misalignlab.models.losses` and training in :mod:`misalignlab.train`.

Presets (``bench/imagetext_speed.py`` measures their training throughput):

- ``image/tiny``: stride-4 stem, three one-block stages (16, 32, 64 channels), 4×4 pooling grid
  (keeps position); fast enough to train on CPU.
- ``image/small``: the same with 32, 64, 128 channels.
- ``image/resnet18``: ResNet-18's layout (7×7 stem + max pool, 2-2-2-2 blocks, 64–512 channels,
  global average pooling), as in the paper; meant for a GPU.
- ``text/tiny``: embedding 128, two conv blocks of 128. ``text/base``: four blocks of 256 with
  dilations 1, 2, 4, 1.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from misalignlab.config import from_dict, to_dict
from misalignlab.models.image_encoder import ImageEncoderCfg, ResNetEncoder
from misalignlab.models.text_encoder import ConvTextEncoder, TextEncoderCfg
from misalignlab.models.tokenizer import WordTokenizer
from misalignlab.registry import Registry
from misalignlab.runs import atomic_write_bytes, write_json

ENCODERS: Registry[ImageEncoderCfg | TextEncoderCfg] = Registry("encoder preset")

ENCODERS.register("image/tiny")(
    ImageEncoderCfg(widths=(16, 32, 64), blocks=(1, 1, 1), stem_kernel=5, stem_stride=4, pool_grid=4)
)
ENCODERS.register("image/small")(
    ImageEncoderCfg(widths=(32, 64, 128), blocks=(1, 1, 1), stem_kernel=5, stem_stride=4, pool_grid=4)
)
ENCODERS.register("image/resnet18")(
    ImageEncoderCfg(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), stem_kernel=7, stem_stride=2, stem_pool=True)
)
ENCODERS.register("text/tiny")(TextEncoderCfg(embed_dim=128, widths=(128, 128), kernel=3))
ENCODERS.register("text/base")(
    TextEncoderCfg(embed_dim=128, widths=(256, 256, 256, 256), kernel=3, dilations=(1, 2, 4, 1))
)


def encoder_preset(modality: str, name: str) -> ImageEncoderCfg | TextEncoderCfg:
    """The preset ``name`` for ``modality`` ("image" or "text"); unknown names list the valid ones."""
    key = f"{modality}/{name}"
    if key not in ENCODERS:
        valid = [n.split("/", 1)[1] for n in ENCODERS.names() if n.startswith(f"{modality}/")]
        raise ValueError(f"unknown {modality} encoder preset {name!r}; valid: {', '.join(valid)}")
    return ENCODERS.get(key)


@dataclass(frozen=True)
class ModelCfg:
    """Which encoders, how large a code, and the input sizes they are built for.

    ``vocab_size`` is normally filled in from the tokenizer (``None`` until then).
    """

    image: str = "tiny"
    text: str = "tiny"
    code_dim: int = 8
    image_size: int = 64
    max_len: int = 32
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        if self.code_dim < 1 or self.image_size < 8 or self.max_len < 1:
            raise ValueError(f"need code_dim >= 1, image_size >= 8, max_len >= 1; got {self}")


class ImageTextModel(nn.Module):
    """Image encoder f_x and text encoder f_t side by side; ``forward`` returns both codes."""

    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        tokenizer: WordTokenizer | None = None,
        max_len: int = 32,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.max_len = max_len

    # Spare code dimensions (:class:`misalignlab.train.callbacks.SpareFade`): code dimensions from
    # ``spare_from`` on are multiplied by ``spare_scale``; at 0 they are dropped, so the trained
    # model's code has ``spare_from`` dimensions.
    spare_from: int | None = None
    spare_scale: float = 1.0

    def _fade(self, z: Tensor) -> Tensor:
        if self.spare_from is None or self.spare_scale == 1.0:
            return z
        if self.spare_scale == 0.0:
            return z[:, : self.spare_from]
        return torch.cat([z[:, : self.spare_from], z[:, self.spare_from :] * self.spare_scale], dim=1)

    def encode_image(self, images: Tensor) -> Tensor:
        """Float images (B, 3, H, W), normalised → codes (B, D)."""
        return self._fade(self.image_encoder(images))

    def encode_text(self, tokens: Tensor) -> Tensor:
        """Token ids (B, L) → codes (B, D)."""
        return self._fade(self.text_encoder(tokens))

    def tokenize(self, captions: list[str]) -> Tensor:
        """Captions → token ids (N, max_len) with the model's own tokenizer."""
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer; pass token ids to encode_text instead")
        return self.tokenizer.encode(captions, self.max_len)

    def forward(self, images: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        return self.encode_image(images), self.encode_text(tokens)


def build_model(cfg: ModelCfg, tokenizer: WordTokenizer | None = None) -> ImageTextModel:
    """Instantiate the encoders named by ``cfg``; the vocabulary size comes from ``tokenizer`` if given."""
    vocab_size = len(tokenizer) if tokenizer is not None else cfg.vocab_size
    if vocab_size is None:
        raise ValueError("ModelCfg.vocab_size is unset and no tokenizer was given")
    if cfg.vocab_size is not None and vocab_size != cfg.vocab_size:
        raise ValueError(f"ModelCfg.vocab_size={cfg.vocab_size} but the tokenizer has {vocab_size} words")
    image_cfg = encoder_preset("image", cfg.image)
    text_cfg = encoder_preset("text", cfg.text)
    assert isinstance(image_cfg, ImageEncoderCfg) and isinstance(text_cfg, TextEncoderCfg)
    image = ResNetEncoder(image_cfg, cfg.code_dim)
    text = ConvTextEncoder(text_cfg, vocab_size, cfg.code_dim, pad_id=WordTokenizer.pad_id)
    return ImageTextModel(image, text, tokenizer=tokenizer, max_len=cfg.max_len)


def save_model(folder: Path, model: ImageTextModel, cfg: ModelCfg) -> None:
    """Write ``model_cfg.json``, ``tokenizer.json`` and ``model.pt`` (a plain state dict) to ``folder``."""
    folder = Path(folder)
    if model.tokenizer is None:
        raise ValueError("save_model needs a model with a tokenizer")
    cfg = dataclasses.replace(cfg, vocab_size=len(model.tokenizer))
    write_json(folder / "model_cfg.json", to_dict(cfg))
    model.tokenizer.save(folder / "tokenizer.json")
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write_bytes(folder / "model.pt", buf.getvalue())


def load_model(folder: Path) -> tuple[ImageTextModel, ModelCfg]:
    """Inverse of :func:`save_model` (``weights_only`` loading: no pickled code runs)."""
    folder = Path(folder)
    cfg = from_dict(ModelCfg, json.loads((folder / "model_cfg.json").read_text(encoding="utf-8")))
    model = build_model(cfg, WordTokenizer.load(folder / "tokenizer.json"))
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval(), cfg
