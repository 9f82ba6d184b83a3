"""The pilot end to end on tiny data: rendered (truth known) and user pairs (no truth), rerun, CLI, task file."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from misalignlab.cli import main
from misalignlab.cli.pilot import read_task
from misalignlab.pilot import PILOT_SCENARIOS, CostModel, PilotCfg
from misalignlab.pilot.data import PilotData, render_builtin
from misalignlab.pilot.decision import as_scores, decide
from misalignlab.runs import read_jsonl
from misalignlab.workflows.pilot import run_pilot

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


TINY = PilotCfg(
    budget_minutes=5,
    n_train=96,
    n_fit=48,
    n_test=48,
    batch_size=32,
    min_steps=3,
    max_steps=3,
    detect_steps=3,
    seeds=2,
    clean_fractions=(0.25,),
    adapt=("filter",),
    gallery=200,
)
HOSTILE = "<script>alert('x')</script><b>bold</b> & `tick`"


def user_pairs_with_hostile_caption(scenario: str, name: str, at: int):
    """Rendered pairs handed over as user data (no truth), one caption replaced by HOSTILE; (data, cfg)."""
    chosen = PILOT_SCENARIOS.get(scenario)
    cfg = chosen.config(TINY)
    scenes = render_builtin(chosen.scenario, cfg.task, cfg)
    caps = list(scenes.captions)
    caps[at] = HOSTILE
    return PilotData(name, scenes.ids, scenes.images, tuple(caps)), cfg


def runs(out):
    return [r for r in read_jsonl(out / "results.jsonl") if r.get("stage") == "run"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("pilot")
    chosen = PILOT_SCENARIOS.get("perturb-task")
    cfg = chosen.config(TINY)
    data = render_builtin(chosen.scenario, cfg.task, cfg)
    return out, cfg, data, run_pilot(data, cfg, out, chosen.scenario)


def test_every_option_runs_for_every_seed_and_the_report_holds_the_decision(rendered):
    out, cfg, data, result = rendered
    got = runs(out)
    assert sorted((r["option"], r["seed"]) for r in got) == sorted(
        (o, s) for o in ("baseline", "clean@0.25", "filter") for s in range(2)
    )
    trained = {r["option"]: r["n_trained"] for r in got}
    # cleaning with known truth fixes captions (keeps every pair); filter drops its share
    assert trained["clean@0.25"] == 96 and trained["baseline"] == 96
    fraction = next(r["strategy"]["fraction"] for r in got if r["option"] == "filter")
    assert 0.05 <= fraction <= 0.5 and trained["filter"] == 96 - round(fraction * 96)
    report = json.loads((out / "report.json").read_text())
    again = decide(as_scores(got, "id/task_acc"), len(data), cfg.n_test, cfg.cost)
    assert report["decision"]["action"] == again.action == result.decision.action
    assert report["decision"]["option"] == again.option
    assert report["profile"]["pairs"] == 96 and set(report["profile"]["types"]) == {
        "aligned",
        "incomplete",
        "wrong",
        "unrelated",
    }
    assert 0.0 <= report["profile"]["quality"]["detect/combined/auroc"] <= 1.0
    assert [p["option"] for p in report["cleaning_curve"]] == ["baseline", "clean@0.25"]
    base_acc = [r["id/task_acc"] for r in got if r["option"] == "baseline"]
    assert report["strategy_table"]["baseline"]["id/task_acc"] == pytest.approx(sum(base_acc) / 2)
    assert set(report["strategy_table"]) == {"baseline", "clean@0.25", "filter"}
    md = (out / "report.md").read_text()
    assert md.splitlines()[2].startswith("**Recommendation:")  # the decision comes first
    for name in ("report.html", "plots/cleaning_curve.png", "plots/profile.png", "plan.json", "config.json"):
        assert (out / name).stat().st_size > 0


def test_rerun_with_other_costs_redecides_without_training(rendered, tmp_path):
    out, cfg, data, _ = rendered
    before = len(runs(out))
    costly = replace(cfg, cost=CostModel(cost_per_caption=1000.0))
    result = run_pilot(data, costly, out, PILOT_SCENARIOS.get("perturb-task").scenario)
    assert len(runs(out)) == before
    clean = next(o for o in result.decision.outcomes if o.option == "clean@0.25")
    assert clean.cost == pytest.approx(0.25 * 96 * 1000.0)
    assert result.decision.action != "clean"


def test_user_pairs_without_truth_use_removal_and_heldout_retrieval(tmp_path):
    data, cfg = user_pairs_with_hostile_caption("outliers", "user-data", at=3)
    result = run_pilot(data, cfg, tmp_path)
    assert result.metric == "id/image_to_text_R@1"
    got = runs(tmp_path)
    trained = {r["option"]: r["n_trained"] for r in got}
    n_train = trained["baseline"]  # the pairs left after holding out aligned ones (at most 20 %)
    assert 96 - round(0.2 * 96) <= n_train < 96
    assert trained["clean@0.25"] == n_train - round(0.25 * n_train)
    page = (tmp_path / "report.html").read_text()
    assert (
        "<script>" not in page
        and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp;" in page
    )
    assert "`tick`" not in (tmp_path / "report.md").read_text()
    to_clean = pd.read_csv(
        tmp_path / "to_clean.csv", keep_default_na=False, dtype={"id": str}
    )  # the pairs behind the recommendation
    flagged = int(result.diagnosis.table["quarantine"].sum())
    assert len(to_clean) == (round(0.25 * 96) if result.decision.action == "clean" else flagged)
    assert to_clean["score"].is_monotonic_decreasing and set(to_clean["id"]) <= set(data.ids)


def test_cli_pilot_on_built_in_data(tmp_path, capsys):
    sets = [
        f"--set={k}"
        for k in (
            "n_train=96",
            "n_fit=48",
            "n_test=48",
            "batch_size=32",
            "min_steps=2",
            "max_steps=2",
            "detect_steps=2",
            "seeds=2",
            'adapt=["filter"]',
        )
    ]
    code = main(
        [
            "pilot",
            "--budget-minutes",
            "3",
            "--cost-per-caption",
            "0.5",
            "--value-per-point",
            "10",
            "--out",
            str(tmp_path),
            *sets,
        ]
    )
    assert code == 0
    shown = capsys.readouterr().out
    assert "recommendation:" in shown and "report.html" in shown
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cost"]["cost_per_caption"] == 0.5 and report["cost"]["value_per_point"] == 10.0
    assert (tmp_path / "argv.txt").read_text().startswith("misalignlab pilot")


def test_task_file_is_read_strictly(tmp_path):
    good = tmp_path / "task.json"
    good.write_text(
        json.dumps(
            {
                "tasks": ["shape"],
                "nuisance": ["background"],
                "deploy_shifts": [{"factor": "background", "follows": "shape", "offset": 1}],
            }
        )
    )
    task = read_task(good)
    assert task.split == "ood" and task.deploy_shifts[0].offset == 1
    toml = tmp_path / "task.toml"
    toml.write_text('tasks = ["colour"]\n')
    assert read_task(toml).tasks == ("colour",)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tasks": ["shape"], "deadline": 3}))
    with pytest.raises(ValueError, match="bad.json.*deadline|deadline.*bad.json"):
        read_task(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{tasks: ")
    with pytest.raises(ValueError, match="broken.json"):
        read_task(broken)
    assert main(["pilot", "--task", str(bad), "--out", str(tmp_path / "x")]) == 2


TINY_SETS = [
    f"--set={k}"
    for k in (
        "n_train=96",
        "n_fit=48",
        "n_test=48",
        "batch_size=16",
        "min_steps=2",
        "max_steps=2",
        "detect_steps=2",
        "seeds=2",
        'adapt=["filter"]',
        "clean_fractions=[0.25]",
    )
]


def test_cli_pilot_on_a_render_folder_and_on_a_user_manifest(tmp_path):
    from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
    from misalignlab.data.scenes.factors import SceneCfg
    from misalignlab.data.scenes.inject import InjectionCfg

    pairs = make_scene_pairs(
        60,
        SceneCfg(size=32, factors=("shape", "colour", "size", "background")),
        InjectionCfg(perturb={"shape": 0.3}),
        seed=1,
    )
    folder = write_dataset_folder(pairs, tmp_path / "data")
    assert main(["pilot", str(folder), "--out", str(tmp_path / "rendered"), *TINY_SETS]) == 0
    rendered = json.loads((tmp_path / "rendered" / "report.json").read_text())
    assert rendered["data"] == {"name": "folder:data", "pairs": 60, "truth_known": True}
    assert rendered["metric"] == "id/task_acc"
    table = pd.read_csv(folder / "captions.csv")
    table.loc[len(table)] = ["../outside.png", "a red gear"]  # refused: outside the root, quarantined
    table.to_csv(folder / "manifest.csv", index=False)
    assert main(["pilot", str(folder / "manifest.csv"), "--out", str(tmp_path / "user"), *TINY_SETS]) == 0
    user = json.loads((tmp_path / "user" / "report.json").read_text())
    assert user["data"] == {"name": "manifest.csv", "pairs": 60, "truth_known": False}
    assert user["metric"] == "id/image_to_text_R@1"
    quarantine = (tmp_path / "user" / "quarantine.jsonl").read_text()
    assert "path_outside_root" in quarantine


def test_finished_runs_are_reused_only_for_the_same_data_and_settings(rendered):
    from misalignlab.workflows.pilot import fingerprint

    _, cfg, data, _ = rendered
    key = fingerprint(data, cfg)
    assert fingerprint(data, replace(cfg, cost=CostModel(cost_per_caption=9.0), budget_minutes=60)) == key
    assert fingerprint(data, replace(cfg, lr=1e-4)) != key
    other = PilotData(
        data.name, data.ids, data.images, ("changed", *data.captions[1:]), data.template, data.clean_captions, data.kind
    )
    assert fingerprint(other, cfg) != key


def test_captions_sharing_images_make_another_fingerprint():
    from misalignlab.workflows.pilot import fingerprint

    images = np.zeros((4, 8, 8, 3), np.uint8)
    data = PilotData("toy", ("p0", "p1", "p2", "p3"), images, ("a", "b", "c", "d"))
    key = fingerprint(data, TINY)
    assert fingerprint(replace(data, image_keys=data.ids), TINY) == key  # one caption per image, as before
    assert fingerprint(replace(data, image_keys=("x", "x", "y", "y")), TINY) != key  # other folds, another diagnosis


def test_cleaning_that_changes_no_caption_reuses_the_baseline_run(tmp_path):
    chosen = PILOT_SCENARIOS.get("clean-data")
    cfg = chosen.config(TINY)
    data = render_builtin(chosen.scenario, cfg.task, cfg)
    assert data.captions == data.clean_captions
    run_pilot(data, cfg, tmp_path, chosen.scenario)
    got = {(r["option"], r["seed"]): r for r in runs(tmp_path)}
    for seed in range(2):
        twin, base = got[("clean@0.25", seed)], got[("baseline", seed)]
        assert twin["same_as"] == "baseline" and twin["id/task_acc"] == base["id/task_acc"]
        assert "same_as" not in got[("filter", seed)]


def test_spare_budget_buys_whole_extra_seeds_and_keeps_finished_runs(rendered):
    out, cfg, data, _ = rendered
    plan = json.loads((out / "plan.json").read_text())
    assert plan["seeds"] == 2
    before = runs(out)
    result = run_pilot(data, replace(cfg, seeds=3), out, PILOT_SCENARIOS.get("perturb-task").scenario)
    after = runs(out)
    assert after[: len(before)] == before  # nothing retrained
    assert sorted((r["option"], r["seed"]) for r in after[len(before) :]) == [
        ("baseline", 2),
        ("clean@0.25", 2),
        ("filter", 2),
    ]
    assert all(o.seeds == 3 for o in result.decision.outcomes)


def test_pilot_diagnoses_with_a_pretrained_backbone_chosen_by_flag(tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests.detect.backends.test_hf_clip import save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    out = tmp_path / "pilot"
    assert main(["pilot", "--out", str(out), "--backbone", f"hf:{clip}", *TINY_SETS]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["pilot"]["backbone"] == f"hf:{clip}"
    cache = [p for p in (out / "cache").iterdir() if p.is_dir()]
    assert len(cache) == 1 and not (cache[0] / "models" / "fold1").exists()  # one pretrained model, no fold models
    assert main(["pilot", "--out", str(out), "--backbone", "clipper"]) == 2
    assert "unknown backbone 'clipper'" in capsys.readouterr().err


def test_an_option_that_cannot_train_is_reported_and_the_pilot_goes_on(tmp_path, monkeypatch):
    import misalignlab.workflows.pilot as pilot_run

    real = pilot_run.fit_strategy

    def fit(strategy, pairs, icfg, found=None, callbacks=()):
        if strategy.name == "filter":
            raise ValueError("filter left 3 pairs, fewer than batch_size 32")
        return real(strategy, pairs, icfg, found, callbacks)

    monkeypatch.setattr(pilot_run, "fit_strategy", fit)
    chosen = PILOT_SCENARIOS.get("perturb-task")
    cfg = chosen.config(TINY)
    result = run_pilot(render_builtin(chosen.scenario, cfg.task, cfg), cfg, tmp_path, chosen.scenario)
    assert {r["option"] for r in runs(tmp_path)} == {"baseline", "clean@0.25"}
    failed = [r for r in read_jsonl(tmp_path / "results.jsonl") if r.get("stage") == "failed"]
    assert [(r["option"], r["seed"]) for r in failed] == [("filter", 0), ("filter", 1)]
    assert "fewer than batch_size" in failed[0]["error"]
    assert [o.option for o in result.decision.outcomes] == ["clean@0.25"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["skipped_runs"][0].startswith("filter/seed0 (failed: filter left 3 pairs")
    assert "Runs not done" in (tmp_path / "report.html").read_text()


# --- what the options are scored on: a verified test set, or the proxy (which leans towards cleaning) ---


def user_and_test(n_test: int = 24):
    """96 rendered pairs handed over as user data, and ``n_test`` fresh ones with their true captions (verified)."""
    chosen = PILOT_SCENARIOS.get("perturb-task")
    cfg = replace(chosen.config(TINY), adapt=("filter", "reweight"))
    scenes = render_builtin(chosen.scenario, cfg.task, cfg)
    fresh = render_builtin(chosen.scenario, cfg.task, replace(cfg, n_train=n_test, data_seed=7))
    user = PilotData("user-data", scenes.ids, scenes.images, scenes.captions)
    verified = PilotData("test:checked.csv", tuple(f"t{i}" for i in fresh.ids), fresh.images, fresh.clean_captions)
    return user, verified, cfg


def test_a_verified_test_set_scores_every_option_and_its_captions_decide_the_scores(tmp_path):
    from misalignlab.pilot.data import VERIFIED

    user, verified, cfg = user_and_test()
    result = run_pilot(user, cfg, tmp_path, test=verified)
    assert result.evaluation.kind == VERIFIED and result.evaluation.pairs == 24
    assert {r["n_trained"] for r in result.runs if r["option"] == "baseline"} == {96}  # nothing held out
    for r in result.runs:  # every option scored on the 24 verified pairs
        assert (24 * r["id/image_to_text_R@1"]) == pytest.approx(round(24 * r["id/image_to_text_R@1"]))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluation"] == {
        "kind": "verified test set",
        "pairs": 24,
        "source": "test:checked.csv",
        "left_out": 0,
        "caveat": "",
    }
    assert "proxy" not in (tmp_path / "report.md").read_text()
    # the same images with other captions (a person verified something else): the same models score otherwise
    caps = verified.captions[1:] + verified.captions[:1]
    other = run_pilot(user, cfg, tmp_path, test=PilotData(verified.name, verified.ids, verified.images, caps))
    scores = lambda res: [(r["option"], r["seed"], r["id/image_to_text_R@1"]) for r in res.runs]  # noqa: E731
    assert scores(other) != scores(result)
    assert [(r["option"], r["seed"], r["n_trained"]) for r in other.runs] == [
        (r["option"], r["seed"], r["n_trained"]) for r in result.runs
    ]


def test_training_pairs_that_share_an_image_with_the_test_set_are_not_trained_on(tmp_path):
    user, _, cfg = user_and_test()
    checked = PilotData("test:sample.csv", user.ids[:20], user.images[:20], tuple(f"fixed {i}" for i in range(20)))
    result = run_pilot(user, cfg, tmp_path, test=checked)
    assert result.evaluation.left_out == 20
    assert {r["n_trained"] for r in result.runs if r["option"] == "baseline"} == {76}
    assert "20 training pair(s) whose image is in the test set" in (tmp_path / "report.md").read_text()


def test_without_a_test_set_the_report_says_the_score_is_a_proxy_and_which_way_it_leans(tmp_path):
    user, _, cfg = user_and_test()
    result = run_pilot(user, cfg, tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["evaluation"]["kind"] == result.evaluation.kind == "proxy: held-out pairs typed aligned"
    for text in ((tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()):
        assert "The score is a proxy" in text and "overstates the benefit of cleaning and filtering" in text


def test_rendered_data_refuses_a_test_set(rendered, tmp_path):
    _, cfg, data, _ = rendered
    with pytest.raises(ValueError, match="--test"):
        run_pilot(data, cfg, tmp_path, PILOT_SCENARIOS.get("perturb-task").scenario, test=data)


# --- the diagnosis is diagnose's, the budget only shortens it ---


def test_the_pilot_diagnoses_with_diagnose_defaults_and_reports_what_the_budget_cut(rendered):
    from misalignlab.detect.backends import EmbedCfg
    from misalignlab.detect.pipeline import DIAGNOSE_STEPS

    out, _, _, result = rendered
    diag = json.loads((out / "report.json").read_text())["diagnosis"]
    assert diag["backbone"] == EmbedCfg().with_backbone("auto").backbone and diag["schema"] == "auto"
    assert diag["default_steps"] == DIAGNOSE_STEPS and diag["steps"] == 3 and diag["budget_cut"]
    assert f"3 of diagnose's {DIAGNOSE_STEPS} steps" in (out / "report.md").read_text()
    assert result.diagnosis.summary["schema"]["source"] == "inferred"  # schema auto, as diagnose


# --- embrace options on a user's pairs: the declared vocabulary, or the report says why not ---


def test_cli_pilot_on_user_pairs_embraces_with_a_declared_vocabulary(tmp_path):
    from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
    from misalignlab.data.scenes.factors import SceneCfg
    from misalignlab.data.scenes.inject import InjectionCfg

    pairs = make_scene_pairs(60, SceneCfg(size=32), InjectionCfg(perturb={"shape": 0.3}), seed=1)
    folder = write_dataset_folder(pairs, tmp_path / "data")
    vocab = tmp_path / "parts.json"
    vocab.write_text(
        json.dumps({"slots": {"belt": ["grey", "gray", "black", "white", "brown"], "kind": ["gear", "bolt", "nut"]}})
    )
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"nuisance": ["belt"]}))
    sets = [s for s in TINY_SETS if not s.startswith("--set=adapt")] + ['--set=adapt=["augment","multipositive"]']
    argv = [
        "pilot",
        str(folder / "captions.csv"),
        "--schema",
        str(vocab),
        "--task",
        str(task),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, *sets]) == 0
    got = {r["option"]: r for r in runs(tmp_path / "o")}
    assert got["augment"]["strategy"] == {"omit": {"belt": 1.0}, "swap": {}, "vocabulary": "file:parts.json"}
    assert got["multipositive"]["strategy"] == {"vocabulary": "file:parts.json"}
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["not_applicable"] == {} and report["diagnosis"]["vocabulary"] == "file:parts.json"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"nuisance": ["tone"]}))
    assert main([*argv[:-4], "--task", str(wrong), "--out", str(tmp_path / "x"), *sets]) == 2  # checked before any work


def test_without_any_caption_slot_the_report_says_the_embrace_options_do_not_apply(tmp_path):
    user, _, cfg = user_and_test()
    cfg = replace(cfg, schema="none", adapt=("filter", "augment", "multipositive"))
    result = run_pilot(user, cfg, tmp_path)
    assert set(result.not_applicable) == {"augment", "multipositive"}
    assert {r["option"] for r in result.runs} == {"baseline", "clean@0.25", "filter"}
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "Options that do not apply" in md and "no caption slots: --schema none reads no slots" in md
    assert "id='not-applicable'" in page and "no caption slots" in page


def test_slots_the_diagnosis_cannot_see_are_named_and_their_rates_called_floors():
    from types import SimpleNamespace

    from misalignlab.detect.pipeline import diagnose_config, within_budget
    from misalignlab.workflows.pilot import diagnosis_settings

    full = diagnose_config(backbone="scratch")
    slots = ["colour", "shape"]
    partly = SimpleNamespace(summary={"schema": {"source": "inferred", "slots": slots, "seen": ["colour"]}})
    seeing = SimpleNamespace(summary={"schema": {"source": "inferred", "slots": slots, "seen": slots}})
    cut = diagnosis_settings(full, within_budget(full, 200), partly)
    assert cut["unseen_slots"] == ["shape"]
    assert "cannot see the slot `shape`" in cut["note"] and "floors, not estimates" in cut["note"]
    whole = diagnosis_settings(full, full, seeing)
    assert whole["unseen_slots"] == [] and "floors" not in whole["note"]
