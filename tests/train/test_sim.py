import numpy as np
import pytest
import torch

from misalignlab.lvm.bias import BiasSpec
from misalignlab.lvm.generators import GeneratorCfg
from misalignlab.lvm.model import LVMCfg as _LVMCfg
from misalignlab.models.sim_stack import Setting, SimEncoderCfg, SimStack
from misalignlab.train.sim import SimTrainCfg, train_stack


def LVMCfg() -> _LVMCfg:  # noqa: N802 - cheaper generator search keeps the tests fast
    return _LVMCfg(generator=GeneratorCfg(cond_quantile=0.02, n_reference=2000))


ENC = SimEncoderCfg(hidden=(16, 16))
CFG = SimTrainCfg(
    steps=15, batch_size=64, lr=3e-3, schedule="cosine", warmup_steps=3, grad_clip=0.5, independent_negatives=True
)
SETTINGS = [
    Setting(BiasSpec(selected=(0, 1, 2, 3)), seed=0),
    Setting(BiasSpec(selected=(0,)), seed=1),
    Setting(BiasSpec(selected=tuple(range(10)), perturbed=(0, 1, 2)), seed=2),
]


def batched_and_alone(enc, cfg):
    """Train every setting at once, then each alone; yields (m, batched stack, alone stack) after comparing curves."""
    batched = SimStack(SETTINGS, LVMCfg(), enc)
    curve = train_stack(batched, cfg)
    for m, setting in enumerate(SETTINGS):
        alone = SimStack([setting], LVMCfg(), enc)
        alone_curve = train_stack(alone, cfg)
        np.testing.assert_allclose(curve[:, m], alone_curve[:, 0], rtol=1e-4, atol=1e-5)
        yield m, batched, alone


def test_batched_training_equals_each_model_trained_alone():
    torch.manual_seed(0)
    for m, batched, alone in batched_and_alone(ENC, CFG):
        for key, value in alone.f_x.slice_state(0).items():
            torch.testing.assert_close(batched.f_x.slice_state(m)[key], value, rtol=1e-4, atol=1e-5)


def test_padded_weights_stay_zero():
    stack = SimStack(SETTINGS, LVMCfg(), ENC)
    train_stack(stack, CFG)
    w_first = stack.f_t.weights[0]  # (M, hidden, max text dim)
    assert w_first[1, :, stack.lvms[1].text_dim :].abs().sum() == 0  # model 1's text input is narrower
    w_last = stack.f_x.weights[-1]  # (M, max code, hidden)
    assert w_last[1, 1:, :].abs().sum() == 0  # model 1 has a 1-d code


def test_same_seed_same_numbers():
    a = train_stack(SimStack(SETTINGS[:1], LVMCfg(), ENC), CFG)
    b = train_stack(SimStack(SETTINGS[:1], LVMCfg(), ENC), CFG)
    np.testing.assert_array_equal(a, b)


def test_resume_from_checkpoint_gives_the_uninterrupted_numbers(tmp_path):
    full = SimStack(SETTINGS[:2], LVMCfg(), ENC)
    ref = train_stack(full, CFG)
    ckpt = tmp_path / "ckpt.pt"
    first = SimStack(SETTINGS[:2], LVMCfg(), ENC)

    class Stop(Exception):
        pass

    def stop_at_8(step, _):
        if step == 8:
            raise Stop

    with pytest.raises(Stop):
        train_stack(first, SimTrainCfg(**{**CFG.__dict__, "log_every": 1}), stop_at_8, ckpt, checkpoint_every=4)
    resumed = SimStack(SETTINGS[:2], LVMCfg(), ENC)  # a fresh process: new objects, same config
    curve = train_stack(resumed, CFG, checkpoint=ckpt, checkpoint_every=4)
    np.testing.assert_allclose(curve, ref, rtol=1e-6, atol=1e-7)
    for key, value in full.f_t.slice_state(1).items():
        torch.testing.assert_close(resumed.f_t.slice_state(1)[key], value)


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        train_stack(SimStack(SETTINGS[:1], LVMCfg(), ENC), CFG, checkpoint=ckpt)


def test_bad_train_config_raises():
    with pytest.raises(ValueError, match="train.schedule"):
        SimTrainCfg(steps=1, schedule="linear")
    with pytest.raises(ValueError, match="train.steps"):
        SimTrainCfg(steps=0)


def test_batched_equivalence_holds_with_whitening_tanh_and_clip_loss():
    enc = SimEncoderCfg(hidden=(16, 16), whiten_inputs=True, output="tanh")
    cfg = SimTrainCfg(steps=10, batch_size=64, lr=3e-3, loss="clip_cross_modal", tau=0.1, independent_negatives=False)
    batched = SimStack(SETTINGS, LVMCfg(), enc)
    curve = train_stack(batched, cfg)
    for m, setting in enumerate(SETTINGS):
        alone_curve = train_stack(SimStack([setting], LVMCfg(), enc), cfg)
        np.testing.assert_allclose(curve[:, m], alone_curve[:, 0], rtol=1e-4, atol=1e-5)


def test_whitening_gives_identity_covariance():
    stack = SimStack(SETTINGS, LVMCfg(), SimEncoderCfg(hidden=(8,), whiten_inputs=True))
    x, t, _ = stack.sample(20_000, [torch.Generator().manual_seed(50 + i) for i in range(len(SETTINGS))])
    mx, wx, mt, wt = stack.whiten
    for m in range(len(SETTINGS)):
        d = stack.lvms[m].text_dim
        tw = ((t[m] - mt[m]) @ wt[m])[:, :d]
        torch.testing.assert_close(torch.cov(tw.T), torch.eye(d), atol=0.05, rtol=0)
        xw = (x[m] - mx[m]) @ wx[m]
        torch.testing.assert_close(torch.cov(xw.T), torch.eye(15), atol=0.05, rtol=0)


def test_batched_equivalence_holds_for_the_residual_encoder():
    enc = SimEncoderCfg(hidden=(16, 16), arch="resmlp", whiten_inputs=True, output="tanh")
    cfg = SimTrainCfg(steps=10, batch_size=64, lr=3e-3, loss="clip_cross_modal", tau=0.1, independent_negatives=False)
    for m, batched, alone in batched_and_alone(enc, cfg):
        x = torch.randn(7, alone.lvms[0].image_dim)
        torch.testing.assert_close(batched.f_x.forward_one(m, x), alone.f_x.forward_one(0, x), rtol=1e-4, atol=1e-5)


def test_resmlp_needs_a_single_width():
    with pytest.raises(ValueError, match="resmlp"):
        SimEncoderCfg(hidden=(16, 32), arch="resmlp")


def test_alignment_weight_ramp_starts_at_the_paper_loss_and_then_departs():
    base = SimTrainCfg(steps=4, batch_size=32, lr=1e-3, independent_negatives=False)
    ramp = SimTrainCfg(**{**base.__dict__, "align_weight_final": 5.0})
    plain = train_stack(SimStack(SETTINGS[:1], LVMCfg(), ENC), base)
    ramped = train_stack(SimStack(SETTINGS[:1], LVMCfg(), ENC), ramp)
    assert plain[0, 0] == pytest.approx(ramped[0, 0], abs=1e-6)  # step 0: λ = 1
    assert ramped[-1, 0] > plain[-1, 0]  # λ = 5 at the last step adds 4·d⁺ > 0


def test_alignment_weight_holds_before_and_after_its_ramp_window():
    cfg = SimTrainCfg(steps=101, align_weight=1.0, align_weight_final=4.0, align_ramp=(0.25, 0.5))
    assert [cfg.align_weight_at(s) for s in (0, 25, 50, 75, 100)] == pytest.approx([1.0, 1.0, 4.0, 4.0, 4.0])
    assert cfg.align_weight_at(37) == pytest.approx(1.0 + 3.0 * (0.37 - 0.25) / 0.25)
    with pytest.raises(ValueError, match="align_ramp"):
        SimTrainCfg(steps=10, align_ramp=(0.6, 0.4))


def test_spare_code_dimensions_fade_out_to_the_theorems_code_size():
    enc = SimEncoderCfg(hidden=(16, 16), code_extra=3)
    cfg = SimTrainCfg(steps=12, batch_size=32, lr=3e-3, independent_negatives=False, spare_fade=(0.25, 0.5))
    stack = SimStack(SETTINGS, LVMCfg(), enc)
    assert stack.code_dims == [4 + 3, 1 + 3, 7 + 3]
    x, t, _ = stack.sample(50, [torch.Generator().manual_seed(i) for i in range(len(SETTINGS))])
    za, zb = stack.encode(x, t)  # before the fade: every spare dimension is part of the code
    assert [z.shape[1] for z in za] == [7, 4, 10] and np.abs(za[1][:, 1:]).sum() > 0
    train_stack(stack, cfg)
    za, zb = stack.encode(x, t)  # after it: exactly |I_θ \ I_ρ| dimensions remain
    assert [z.shape[1] for z in za] == [4, 1, 7] == [z.shape[1] for z in zb]
    a, _ = stack.codes(x, t)
    assert a[1, :, 1:].abs().sum() == 0  # the faded dimensions no longer reach the loss
    for m in range(len(SETTINGS)):
        np.testing.assert_allclose(stack.image_codes_one(m, x[m]).numpy(), za[m], rtol=1e-5, atol=1e-6)


def test_spare_fade_holds_before_and_after_its_window_and_rejects_bad_windows():
    cfg = SimTrainCfg(steps=101, spare_fade=(0.2, 0.6))
    assert [cfg.spare_scale_at(s) for s in (0, 20, 40, 60, 100)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    assert SimTrainCfg(steps=101).spare_scale_at(100) == 1.0  # (0, 0): no fade
    with pytest.raises(ValueError, match="spare_fade"):
        SimTrainCfg(steps=10, spare_fade=(0.5, 0.2))
    with pytest.raises(ValueError, match="code_extra"):
        SimEncoderCfg(code_extra=-1)


def test_batched_equivalence_holds_with_fading_spare_dimensions():
    enc = SimEncoderCfg(hidden=(16, 16), code_extra=2)
    cfg = SimTrainCfg(steps=10, batch_size=64, lr=3e-3, independent_negatives=False, spare_fade=(0.2, 0.6))
    for m, batched, alone in batched_and_alone(enc, cfg):
        for key, value in alone.f_x.slice_state(0).items():
            torch.testing.assert_close(batched.f_x.slice_state(m)[key], value, rtol=1e-4, atol=1e-5)
