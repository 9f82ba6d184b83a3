"""Image–text training on in-memory pairs: toy retrieval, weights, determinism, resume, embedding."""

import numpy as np
import pytest
import torch

from misalignlab.models.losses import ClipInfoNCE, NTXentIntraModal
from misalignlab.models.pair_model import ModelCfg, build_model
from misalignlab.models.tokenizer import WordTokenizer
from misalignlab.train.callbacks import Checkpoint, StopAfter
from misalignlab.train.pairs import (
    LossCfg,
    PairBatches,
    PairObjective,
    PairTrainCfg,
    embed,
    images_to_float,
    train_pairs,
)
from misalignlab.train.trainer import TrainCfg, latest_checkpoint

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
    "purple": (140, 30, 160),
    "orange": (240, 130, 20),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
}
NAMES = list(COLOURS)
TEMPLATES = ["a {} image", "the colour is {}", "{}", "something {} here"]


def colour_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Solid-colour images with pixel noise; captions name the colour in one of four templates."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(NAMES), n)
    rgb = np.array([COLOURS[NAMES[i]] for i in label], dtype=np.float64)[:, None, None, :]
    images = np.clip(rgb + rng.normal(0, 25, (n, size, size, 3)), 0, 255).astype(np.uint8)
    captions = [TEMPLATES[t].format(NAMES[i]) for i, t in zip(label, rng.integers(0, 4, n), strict=True)]
    return images, captions, label


def tiny_cfg(steps: int, **train: object) -> PairTrainCfg:
    settings = {"steps": steps, "batch_size": 32, "lr": 3e-3, "seed": 1, **train}
    train_cfg = TrainCfg(**settings)  # type: ignore[arg-type]
    return PairTrainCfg(train=train_cfg, model=ModelCfg(code_dim=8, image_size=16, max_len=6))


def test_toy_colour_task_reaches_high_retrieval_accuracy() -> None:
    images, captions, _ = colour_pairs(512, 16, seed=0)
    model = train_pairs(images, captions, tiny_cfg(60))
    test_images, _, test_label = colour_pairs(200, 16, seed=1)
    img, _ = embed(model, test_images, ["x"] * 200, batch_size=64)
    _, txt = embed(model, test_images[:8], [f"a {c} image" for c in NAMES])  # one caption per colour
    sim = (img / np.linalg.norm(img, axis=1, keepdims=True)) @ (txt / np.linalg.norm(txt, axis=1, keepdims=True)).T
    accuracy = (sim.argmax(axis=1) == test_label).mean()
    assert accuracy > 0.9, accuracy  # chance is 1/8


def test_same_seed_gives_identical_weights_and_resume_is_exact(tmp_path) -> None:
    images, captions, _ = colour_pairs(64, 16, seed=0)
    cfg = tiny_cfg(6, schedule="cosine", warmup_steps=2)
    a = train_pairs(images, captions, cfg)
    b = train_pairs(images, captions, cfg)
    train_pairs(images, captions, cfg, callbacks=[Checkpoint(tmp_path, every=4), StopAfter(4)])
    c = train_pairs(images, captions, cfg, resume=latest_checkpoint(tmp_path))
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True):
        assert torch.equal(p, q) and torch.equal(p, r), name
    d = train_pairs(images, captions, tiny_cfg(6, seed=2))
    assert not torch.equal(a.text_encoder.proj.weight, d.text_encoder.proj.weight)


@pytest.mark.parametrize("loss", [ClipInfoNCE(tau=0.1), NTXentIntraModal(tau=0.5)])
def test_zero_weight_removes_a_pairs_loss_term(loss) -> None:
    images, captions, _ = colour_pairs(6, 16, seed=0)
    tok = WordTokenizer.build(captions)
    torch.manual_seed(0)
    model = build_model(ModelCfg(code_dim=4, image_size=16), tok).eval()  # eval: no batch-norm batch statistics
    objective = PairObjective(model, loss)
    batch = {"image": torch.from_numpy(images), "tokens": model.tokenize(captions)}

    def grads(loss_value: torch.Tensor) -> list[torch.Tensor]:
        return torch.autograd.grad(loss_value, [p for p in model.parameters()], allow_unused=True)

    weight = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    weighted = grads(objective.training_step({**batch, "weight": weight})["contrastive_loss"])
    img = model.encode_image(images_to_float(batch["image"]))
    txt = model.encode_text(batch["tokens"])
    keep = weight.bool()
    reference = grads(loss.per_pair(img, txt)[keep].mean())  # only the kept pairs' terms
    for g, r in zip(weighted, reference, strict=True):
        if r is not None:
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    unweighted = grads(objective.training_step(batch)["contrastive_loss"])
    assert any(not torch.allclose(g, r) for g, r in zip(weighted, unweighted, strict=True) if g is not None)


def test_loss_cfg_resolves_defaults_and_rejects_unsupported_options() -> None:
    assert LossCfg().kwargs() == {"tau": 0.07, "similarity": "cosine", "align_weight": 0.0}
    assert LossCfg("ntxent_intra_modal").kwargs() == {"tau": 1.0}
    assert LossCfg("clip_cross_modal", tau=1.0, similarity="neg_sq_euclid").build().similarity == "neg_sq_euclid"
    assert LossCfg("sqeuclid_independent").kwargs() == {"align_weight": 1.0}
    with pytest.raises(ValueError, match="takes no align_weight"):
        LossCfg("ntxent_intra_modal", align_weight=1.0).build()
    with pytest.raises(ValueError, match="takes no similarity"):
        LossCfg("ntxent_intra_modal", similarity="cosine").build()
    with pytest.raises(ValueError, match="known: clip_cross_modal"):
        LossCfg("infonce").build()


def test_pair_batches_cover_each_epoch_and_restore_position() -> None:
    images = torch.zeros(10, 4, 4, 3, dtype=torch.uint8)
    tokens = torch.arange(10)[:, None]
    src = PairBatches(images, tokens, batch_size=3, seed=0)
    epoch0 = torch.cat([src.next_batch()["tokens"][:, 0] for _ in range(3)])
    assert sorted(epoch0.tolist()) == sorted(set(epoch0.tolist())) and len(epoch0) == 9  # no repeats
    state = src.state_dict()
    ahead = [src.next_batch()["tokens"] for _ in range(4)]
    other = PairBatches(images, tokens, batch_size=3, seed=0)
    other.load_state_dict(state)
    assert all(torch.equal(a, other.next_batch()["tokens"]) for a in ahead)
    with pytest.raises(ValueError, match="larger than the number of pairs"):
        PairBatches(images, tokens, batch_size=11, seed=0)


def test_input_validation_and_embed_shapes() -> None:
    images, captions, _ = colour_pairs(40, 16, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        train_pairs(images.astype(np.float32), captions, tiny_cfg(1))
    with pytest.raises(ValueError, match="model.image_size is 64"):
        train_pairs(images, captions, PairTrainCfg(train=TrainCfg(steps=1)))
    with pytest.raises(ValueError, match="40 images but 39 captions"):
        train_pairs(images, captions[:-1], tiny_cfg(1))
    model = train_pairs(images, captions, tiny_cfg(1), weights=np.ones(40))
    img, txt = embed(model.train(), images, captions, batch_size=16)
    assert img.shape == txt.shape == (40, 8) and img.dtype == np.float32
    assert model.training  # embed restores the mode it found
    x = images_to_float(torch.from_numpy(images[:2]))
    assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1 and x.is_contiguous()


def interrupted_then_resumed(tmp_path, cfg, make_callback, read):
    """Train 8 steps with ``make_callback()``, stopped at step 4 and resumed from its checkpoint.

    Returns what ``read(trainer)`` gave after each step of the first part and of the resumed part
    (the value the next step uses), the trained model and its pairs.
    """
    images, captions, _ = colour_pairs(64, 16, seed=0)
    seen: list[float] = []

    class Recorder(StopAfter):
        def on_step_end(self, trainer, step, logs):
            seen.append(read(trainer))
            super().on_step_end(trainer, step, logs)

    train_pairs(images, captions, cfg, callbacks=[make_callback(), Checkpoint(tmp_path, every=4), Recorder(4)])
    first = list(seen)
    seen.clear()
    model = train_pairs(
        images, captions, cfg, callbacks=[make_callback(), Recorder(100)], resume=latest_checkpoint(tmp_path)
    )
    return first, list(seen), model, images, captions


def test_align_weight_ramp_sets_the_loss_weight_by_step_also_after_a_resume(tmp_path) -> None:
    from misalignlab.train.callbacks import AlignWeightRamp

    ramp = AlignWeightRamp(2.0, 0.25, 0.75)
    assert [ramp.weight_at(s, 8) for s in (0, 2, 4, 6, 8)] == pytest.approx([0.0, 0.0, 1.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="align ramp"):
        AlignWeightRamp(1.0, 0.8, 0.2)
    cfg = tiny_cfg(8)
    cfg = PairTrainCfg(train=cfg.train, model=cfg.model, loss=LossCfg(align_weight=2.0))
    first, resumed, *_ = interrupted_then_resumed(
        tmp_path, cfg, lambda: AlignWeightRamp(2.0, 0.25, 0.75), lambda trainer: trainer.objective.loss.align_weight
    )
    assert first == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert resumed == pytest.approx([1.5, 2.0, 2.0, 2.0])


def test_spare_fade_leaves_the_kept_code_size_and_is_set_by_step_after_a_resume(tmp_path) -> None:
    from misalignlab.train.callbacks import SpareFade

    fade = SpareFade(3, 0.25, 0.75)
    assert [fade.scale_at(s, 8) for s in (0, 2, 4, 6, 8)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="spare fade"):
        SpareFade(0, 0.2, 0.5)
    cfg = tiny_cfg(8)  # code_dim 8: three kept, five spare
    first, resumed, model, images, captions = interrupted_then_resumed(
        tmp_path, cfg, lambda: SpareFade(3, 0.25, 0.75), lambda trainer: trainer.objective.model.spare_scale
    )
    assert first == pytest.approx([1.0, 1.0, 0.75, 0.5])
    assert resumed == pytest.approx([0.25, 0.0, 0.0, 0.0])
    img, txt = embed(model, images[:10], captions[:10])
    assert img.shape == txt.shape == (10, 3)  # the faded dimensions are gone from the trained code
    model.spare_scale = 0.5  # halfway: the spare dimensions are scaled, the kept ones untouched
    half, _ = embed(model, images[:10], captions[:10])
    model.spare_scale = 1.0
    full, _ = embed(model, images[:10], captions[:10])
    np.testing.assert_allclose(half[:, :3], full[:, :3], rtol=1e-6)
    np.testing.assert_allclose(half[:, 3:], 0.5 * full[:, 3:], rtol=1e-5, atol=1e-7)
