"""``hf`` backend: a Hugging Face CLIP or SigLIP checkpoint from a local folder, used as it is (not cross-fitted).

The folder is what ``CLIPModel`` / ``SiglipModel.save_pretrained`` plus the tokenizer's and image
processor's ``save_pretrained`` write: ``config.json`` (its ``model_type``, ``clip`` or ``siglip``,
picks the family in :data:`FAMILIES`), weights (``model.safetensors``, a sharded index, or
``pytorch_model.bin``), ``preprocessor_config.json`` and tokenizer files. Images go through the
family's PIL ("slow") image processor, so torchvision is never needed; everything loads with
``local_files_only`` and the hub switched off. A missing or malformed folder raises a
``ValueError`` naming the folder and what is wrong with it.

The two families differ in how texts are fed: CLIP pads a batch to its longest caption and masks
the padding; SigLIP was trained on texts padded to the full length without a mask (its pooled
code is the last position's), so captions are padded to ``max_position_embeddings`` and no mask
is passed. SigLIP's own tokenizer (``spiece.model``) needs ``sentencepiece``; a folder that holds
a ``tokenizer.json`` loads without it.

:meth:`HFClipBackend.image_input` asks for the original files at the image processor's own size
(its ``shortest_edge`` and centre crop for CLIP, its ``height`` × ``width`` for SigLIP), so a
224-pixel model does not see 32-pixel store images scaled up. The model saw none of the user's
pairs, so every pair is embedded by one model (fold 0) and nothing is trained or saved; the
embedding cache key includes a fingerprint of the checkpoint files, so replacing the checkpoint in
place does not reuse stale codes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.data.ingest.originals import ImageInput
from misalignlab.detect.backends.base import BACKENDS, EmbedCfg, EmbeddingBackend, require_hf

log = logging.getLogger(__name__)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class Family:
    """How one ``model_type`` is loaded and fed (see the module docstring)."""

    title: str
    model: str  # transformers class
    processor: str  # "module:Class" of the PIL image processor
    tokenizer_files: tuple[tuple[str, ...], ...]  # any one group present is enough
    pad_to_max: bool  # texts padded to max_position_embeddings
    text_mask: bool  # attention mask passed with the texts


FAMILIES = {
    "clip": Family(
        "CLIP",
        "CLIPModel",
        "transformers.models.clip.image_processing_pil_clip:CLIPImageProcessorPil",
        (("tokenizer.json",), ("vocab.json", "merges.txt")),
        pad_to_max=False,
        text_mask=True,
    ),
    "siglip": Family(
        "SigLIP",
        "SiglipModel",
        "transformers.models.siglip.image_processing_pil_siglip:SiglipImageProcessorPil",
        (("tokenizer.json",), ("spiece.model",)),
        pad_to_max=True,
        text_mask=False,
    ),
}


def check_clip_folder(folder: Path) -> Family:
    """The family of the checkpoint in ``folder``; ``ValueError`` naming the folder and every missing or
    malformed part."""
    if not folder.exists():
        raise ValueError(f"hf backbone folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"hf backbone path {folder} is not a folder (expected a CLIP or SigLIP checkpoint folder)")
    config = _config(folder) if (folder / "config.json").is_file() else {}
    family = FAMILIES.get(config.get("model_type"), FAMILIES["clip"])  # the file list of CLIP if unknown
    missing = [n for n in ("config.json", "preprocessor_config.json") if not (folder / n).is_file()]
    if not any((folder / n).is_file() for n in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[::2]) + ")")
    if not any(all((folder / n).is_file() for n in group) for group in family.tokenizer_files):
        missing.append("tokenizer (" + ", or ".join(" + ".join(g) for g in family.tokenizer_files) + ")")
    if missing:
        raise ValueError(
            f"hf backbone folder {folder} is missing {', '.join(missing)}; "
            "save a CLIP or SigLIP model, its tokenizer and its image processor there with save_pretrained"
        )
    kind = config.get("model_type")
    if kind not in FAMILIES:
        valid = " or ".join(repr(k) for k in FAMILIES)
        raise ValueError(f"hf backbone folder {folder}: config.json has model_type {kind!r}, expected {valid}")
    return FAMILIES[kind]


def _config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"hf backbone folder {folder}: config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"hf backbone folder {folder}: config.json has model_type {type(config).__name__!r}")
    return config


def folder_fingerprint(folder: Path) -> str:
    """Hash of config.json, preprocessor_config.json and every weight file's name, size and modification time."""
    h = hashlib.blake2b(digest_size=8)
    h.update((folder / "config.json").read_bytes())
    h.update((folder / "preprocessor_config.json").read_bytes())
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            st = (folder / name).stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def processor_input(processor: Any) -> ImageInput | None:
    """The originals' size and fit that reproduce what ``processor`` does to a full image, or None."""
    size, crop = getattr(processor, "size", None), getattr(processor, "crop_size", None)
    short = _side(size, "shortest_edge")
    if getattr(processor, "do_resize", True) and short:
        return ImageInput(short, "crop")  # short side to S, centre crop; the processor then crops crop_size
    height, width = _side(size, "height"), _side(size, "width")
    if getattr(processor, "do_resize", True) and height and width:
        return ImageInput(max(height, width), "stretch")  # resized to height × width whatever the aspect
    if getattr(processor, "do_center_crop", False) and _side(crop, "height"):
        return ImageInput(max(_side(crop, "height"), _side(crop, "width")), "crop")
    return None


def _side(size: Any, key: str) -> int:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else 0


@BACKENDS.register("hf")
class HFClipBackend(EmbeddingBackend):
    """CLIP or SigLIP image and text features from ``EmbedCfg.path`` (see the module docstring)."""

    name = "hf"
    crossfit = False

    def __init__(self, cfg: EmbedCfg, image_size: int, batch_size: int = 64) -> None:
        self.folder = Path(cfg.path).expanduser()
        self.family = check_clip_folder(self.folder)
        self.batch_size = batch_size
        self._processor: Any = None
        self._parts: tuple[Any, Any] | None = None  # (model, tokenizer), loaded lazily

    def fingerprint(self) -> str:
        return folder_fingerprint(self.folder)

    def image_input(self) -> ImageInput | None:
        return processor_input(self._image_processor())

    def _image_processor(self) -> Any:
        if self._processor is None:
            require_hf("hf:" + str(self.folder))
            module, cls = self.family.processor.split(":")
            try:
                self._processor = getattr(importlib.import_module(module), cls).from_pretrained(
                    self.folder, local_files_only=True
                )
            except Exception as exc:  # noqa: BLE001 - transformers raises its own types for a bad config
                raise ValueError(
                    f"hf backbone folder {self.folder}: image processor could not be loaded: {exc}"
                ) from exc
        return self._processor

    def _load(self) -> tuple[Any, Any, Any]:
        if self._parts is None:
            tf = require_hf("hf:" + str(self.folder))
            self._image_processor()
            try:
                model = getattr(tf, self.family.model).from_pretrained(self.folder, local_files_only=True).eval()
                tokenizer = tf.AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - safetensors, tokenizers and torch raise their own types
                hint = (
                    " (SigLIP's spiece.model needs `pip install sentencepiece`)" if "sentencepiece" in str(exc) else ""
                )
                raise ValueError(
                    f"hf backbone folder {self.folder} could not be loaded as {self.family.title}: {exc}{hint}"
                ) from exc
            log.info("loaded %s from %s", self.family.title, self.folder)
            self._parts = (model, tokenizer)
        return (*self._parts, self._processor)

    def fit_fold(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> None:
        self._load()  # pretrained: nothing to fit, but a broken checkpoint should fail before embedding

    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        import torch

        model, _, processor = self._load()
        out = []
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                chunk = [np.ascontiguousarray(im) for im in images[start : start + self.batch_size]]  # (S, S, 3) uint8
                pixels = processor(images=chunk, return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
                out.append(_features(model.get_image_features(pixel_values=pixels)))
        return np.concatenate(out) if out else np.zeros((0, _dim(model)), dtype=np.float32)

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        import torch

        model, tokenizer, _ = self._load()
        max_len = int(model.config.text_config.max_position_embeddings)
        padding = "max_length" if self.family.pad_to_max else True
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), 256):
                chunk = list(texts[start : start + 256])
                batch = tokenizer(chunk, padding=padding, truncation=True, max_length=max_len, return_tensors="pt")
                mask = batch["attention_mask"] if self.family.text_mask else None
                out.append(_features(model.get_text_features(input_ids=batch["input_ids"], attention_mask=mask)))
        return np.concatenate(out) if out else np.zeros((0, _dim(model)), dtype=np.float32)

    def save(self, folder: Path) -> None:
        pass  # nothing trained; the checkpoint folder is the model

    def load(self, folder: Path) -> bool:
        return True  # the checkpoint loads lazily from self.folder when a caption needs embedding


def _features(out: Any) -> np.ndarray:
    """(B, D) float32 from ``get_*_features`` (a tensor, or an output whose pooler_output is projected)."""
    tensor = out if hasattr(out, "float") else out.pooler_output
    return tensor.float().numpy()


def _dim(model: Any) -> int:
    """Width of the codes: CLIP's projection, else (SigLIP) the vision tower's pooled width."""
    return int(getattr(model.config, "projection_dim", 0) or model.config.vision_config.hidden_size)
