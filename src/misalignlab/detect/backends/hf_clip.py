"""``hf`` backend: a Hugging Face CLIP checkpoint from a local folder, used as it is (not cross-fitted).

The folder is what ``CLIPModel.save_pretrained`` plus the tokenizer's and image processor's
``save_pretrained`` write: ``config.json`` (``model_type`` ``clip``), weights
(``model.safetensors``, a sharded index, or ``pytorch_model.bin``), ``preprocessor_config.json``
and tokenizer files. Images go through the PIL ("slow") CLIP image processor, so torchvision is
never needed; everything loads with ``local_files_only`` and the hub switched off. A missing or
malformed folder raises a ``ValueError`` naming the folder and what is wrong with it.

The model saw none of the user's pairs, so every pair is embedded by one model (fold 0) and
nothing is trained or saved; the embedding cache key includes a fingerprint of the checkpoint
files, so replacing the checkpoint in place does not reuse stale codes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.detect.backends.base import BACKENDS, EmbedCfg, EmbeddingBackend, require_hf

log = logging.getLogger(__name__)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))


def check_clip_folder(folder: Path) -> None:
    """Raise ``ValueError`` naming ``folder`` and every missing or malformed part; return if usable."""
    if not folder.exists():
        raise ValueError(f"hf backbone folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"hf backbone path {folder} is not a folder (expected a CLIP checkpoint folder)")
    missing = [n for n in ("config.json", "preprocessor_config.json") if not (folder / n).is_file()]
    if not any((folder / n).is_file() for n in WEIGHT_FILES):
        missing.append("weights (" + " or ".join(WEIGHT_FILES[::2]) + ")")
    if not any(all((folder / n).is_file() for n in group) for group in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json, or vocab.json + merges.txt)")
    if missing:
        raise ValueError(
            f"hf backbone folder {folder} is missing {', '.join(missing)}; "
            "save a CLIP model, its tokenizer and its image processor there with save_pretrained"
        )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"hf backbone folder {folder}: config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("model_type") != "clip":
        kind = config.get("model_type") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"hf backbone folder {folder}: config.json has model_type {kind!r}, expected 'clip'")


def folder_fingerprint(folder: Path) -> str:
    """Hash of config.json and of every weight file's name, size and modification time."""
    h = hashlib.blake2b(digest_size=8)
    h.update((folder / "config.json").read_bytes())
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            st = (folder / name).stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@BACKENDS.register("hf")
class HFClipBackend(EmbeddingBackend):
    """CLIP image and text features from ``EmbedCfg.model["path"]`` (see the module docstring)."""

    name = "hf"
    crossfit = False

    def __init__(self, cfg: EmbedCfg, image_size: int, batch_size: int = 64) -> None:
        self.folder = Path(cfg.path).expanduser()
        check_clip_folder(self.folder)
        self.batch_size = batch_size
        self._parts: tuple[Any, Any, Any] | None = None  # (model, tokenizer, image processor), loaded lazily

    def fingerprint(self) -> str:
        return folder_fingerprint(self.folder)

    def _load(self) -> tuple[Any, Any, Any]:
        if self._parts is None:
            tf = require_hf("hf:" + str(self.folder))
            from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

            try:
                model = tf.CLIPModel.from_pretrained(self.folder, local_files_only=True).eval()
                tokenizer = tf.AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
                processor = CLIPImageProcessorPil.from_pretrained(self.folder, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - safetensors, tokenizers and torch raise their own types
                raise ValueError(f"hf backbone folder {self.folder} could not be loaded as CLIP: {exc}") from exc
            log.info("loaded CLIP from %s", self.folder)
            self._parts = (model, tokenizer, processor)
        return self._parts

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
        return np.concatenate(out) if out else np.zeros((0, model.config.projection_dim), dtype=np.float32)

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        import torch

        model, tokenizer, _ = self._load()
        max_len = int(model.config.text_config.max_position_embeddings)
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), 256):
                batch = tokenizer(
                    list(texts[start : start + 256]),
                    padding=True,
                    truncation=True,
                    max_length=max_len,
                    return_tensors="pt",
                )
                out.append(
                    _features(
                        model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                    )
                )
        return np.concatenate(out) if out else np.zeros((0, model.config.projection_dim), dtype=np.float32)

    def save(self, folder: Path) -> None:
        pass  # nothing trained; the checkpoint folder is the model

    def load(self, folder: Path) -> bool:
        return True  # the checkpoint loads lazily from self.folder when a caption needs embedding


def _features(out: Any) -> np.ndarray:
    """(B, D) float32 from ``get_*_features`` (a tensor, or an output whose pooler_output is projected)."""
    tensor = out if hasattr(out, "float") else out.pooler_output
    return tensor.float().numpy()
