"""From cross-fitted codes to typed pairs: vocabulary → what captions state → slot models → simulation → types.

:func:`read_vocabulary` gives the slots: a declared vocabulary (a built-in name or a file,
:mod:`misalignlab.detect.vocabulary`) or, with ``auto``, one inferred from the captions. Then
:func:`type_pairs` reads every caption (:mod:`.stated`; inferred words are grouped into the values
the images tell apart), fits the per-slot models (:mod:`.slot_models`), edits samples of captions
and encodes them with the fold models (:mod:`.simulate`; skipped for a backbone that cannot embed
new captions, which then finds no omissions), measures the wording norms (:mod:`.wording`) and types
every pair (:mod:`.classify`). The steps' own modules say how; this one only chains them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from misalignlab.detect.classify import Typing, TypingCfg, classify
from misalignlab.detect.simulate import Simulated, simulate
from misalignlab.detect.slot_models import fit_slot_models
from misalignlab.detect.slots import SlotSchema
from misalignlab.detect.stated import Stated, merge_synonyms, parse_captions
from misalignlab.detect.vocabulary import BUILTIN, builtin_vocabulary, infer_vocabulary, load_vocabulary
from misalignlab.detect.wording import peer_shares

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TypedPairs:
    """What every caption states and the types that follow; ``vocabulary`` names where the slots came from."""

    stated: Stated
    typing: Typing
    vocabulary: str  # "inferred", a built-in name, or "file:<name>"
    declared: bool


def read_vocabulary(spec: str, captions: Sequence[str]) -> tuple[SlotSchema | None, bool]:
    """(slots, declared?) for a ``--schema`` value: ``auto`` (inferred), ``none``, a built-in name or a file."""
    if spec == "none":
        return None, False
    if spec == "auto":
        return infer_vocabulary(captions), False
    if spec in BUILTIN:
        return builtin_vocabulary(spec), True
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(f"--schema {spec!r}: not auto, none, {', '.join(BUILTIN)} or a vocabulary file (JSON or TOML)")
    return load_vocabulary(path), True


def type_pairs(
    emb: object, captions: Sequence[str], spec: str, cfg: TypingCfg = TypingCfg(), image_group: np.ndarray | None = None
) -> TypedPairs | None:
    """Type every pair of ``emb`` (a :class:`~misalignlab.detect.crossfit.PairEmbeddings`); None without slots.
    ``image_group``: (N,) code of each pair's image (:func:`~misalignlab.detect.base.image_groups`); None: one
    image per pair."""
    schema, declared = read_vocabulary(spec, captions)
    if schema is None or not schema.slots:
        return None
    image, text, fold = emb.image_emb, emb.text_emb, emb.fold  # type: ignore[attr-defined]
    stated = parse_captions(schema, captions)
    if not declared:
        stated = merge_synonyms(stated, image, fold)
    models = fit_slot_models(stated, image, text, fold, seed=cfg.seed)
    seen = [
        s for s in range(len(stated.slots)) if models.logp[s] is not None and models.visibility[s] >= cfg.min_visibility
    ]
    if emb.backend.can_embed_text:  # type: ignore[attr-defined]
        simulated = simulate(stated, captions, emb, models, seen, seed=cfg.seed)
    else:
        log.info("the backbone cannot embed new captions: no simulated edits, so no omission is typed")
        simulated = Simulated({}, {}, {})
    shares = peer_shares(captions, stated, seen, seed=cfg.seed)
    pair_sim = np.einsum("nd,nd->n", image, text)
    typing = classify(stated, models, simulated, shares, pair_sim, image, text, fold, cfg, image_group)
    return TypedPairs(
        stated, typing, schema.source if not declared else (spec if spec in BUILTIN else schema.source), declared
    )
