"""The ``diagnose`` command's settings in one place, and a budget that only shortens the fold training."""

from misalignlab.config import to_dict
from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.pipeline import DIAGNOSE_STEPS, DiagnoseCfg, diagnose_config, within_budget


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out |= flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def test_diagnose_config_are_diagnose_cfg_with_the_schema_and_backbone_applied():
    cfg = diagnose_config(backbone="scratch", schema="scenes")
    assert cfg.embed.train.steps == DIAGNOSE_STEPS and cfg.schema == "scenes" and cfg.embed.backend == "scratch"
    diff = {k for k, v in flat(to_dict(cfg)).items() if flat(to_dict(DiagnoseCfg()))[k] != v}
    assert diff == {"schema"}  # the command trains EmbedCfg's own steps: nothing else differs
    assert diagnose_config().embed.backbone == EmbedCfg().with_backbone("auto").backbone


def test_a_budget_shortens_only_the_fold_training():
    full = diagnose_config(backbone="scratch")
    cut = within_budget(full, 300)
    assert cut.embed.train.steps == 300
    assert cut.embed.reweight_steps == round(full.embed.reweight_steps * 300 / DIAGNOSE_STEPS)
    assert cut.embed.train.warmup_steps <= full.embed.train.warmup_steps
    diff = {k for k, v in flat(to_dict(cut)).items() if flat(to_dict(full))[k] != v}
    assert diff == {"embed.train.steps", "embed.train.warmup_steps", "embed.reweight_steps"}
    assert within_budget(full, 10 * DIAGNOSE_STEPS) is full
