"""The pilot's report: ``report.json``, ``report.md`` and one self-contained ``report.html``.

Order: the decision first (recommendation, confidence, three reasons) and what the options were
scored on (a verified test set, rendered scenes, or a proxy with the way it leans), then the
misalignment profile with the diagnosis's settings (and what the time box cut), the cleaning curve,
the option table, the options that do not apply and why, and a gallery of the most suspicious pairs.
Captions, ids and explanations are untrusted text: every piece goes through :func:`html.escape`
in the HTML and is put in code spans with backticks removed in Markdown. Plots are embedded as
base64 PNG; the page has no script and loads nothing from the network. All files atomic.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.decision import BASELINE, clean_fraction
from misalignlab.report.pilot_plots import cleaning_curve_plot, type_coverage_plot
from misalignlab.report.tables import markdown_table
from misalignlab.report.thumbs import thumbnail_b64
from misalignlab.runs import atomic_write_text, write_json

# the look of the report and its table of suspicious pairs
CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:6px 10px;text-align:left;vertical-align:top}
img{image-rendering:pixelated;width:96px;height:96px}.k-wrong{color:#b00}.k-unrelated{color:#808}
.k-incomplete{color:#a60}.k-aligned{color:#070}code{background:#f4f4f4}"""


def report_data(result: Any, cfg: PilotCfg) -> dict[str, Any]:
    """Everything in the report as plain JSON-ready data (``report.json``)."""
    d = result.decision
    outcomes = {o.option: o for o in d.outcomes}
    curve = [{"fraction": 0.0, "option": BASELINE, "score": d.baseline, "gain": 0.0, "se": 0.0, "cost": 0.0}]
    for o in sorted((o for o in d.outcomes if o.action == "clean"), key=lambda o: clean_fraction(o.option) or 0):
        curve.append(
            {
                "fraction": clean_fraction(o.option),
                "option": o.option,
                "score": o.score,
                "gain": o.gain,
                "se": o.gain_se,
                "cost": o.cost,
                "net": o.net,
            }
        )
    adapt = [
        {"option": o.option, "score": o.score, "gain": o.gain, "se": o.gain_se, "net": o.net}
        for o in d.outcomes
        if o.action == "adapt"
    ]
    return {
        "decision": d.to_dict(),
        "data": {"name": result.data.name, "pairs": len(result.data), "truth_known": result.data.truth_known},
        "metric": result.metric,
        "profile": result.profile,
        "cleaning_curve": curve,
        "adapt": adapt,
        "plan": {
            "steps": result.plan.steps,
            "seeds": result.plan.seeds,
            "detect_steps": result.plan.detect_steps,
            "detect_step_seconds": result.plan.detect_step_seconds,
            "options": list(result.plan.options),
        },
        "evaluation": result.evaluation.to_dict(),
        "diagnosis": dict(result.diagnosis_settings),
        "not_applicable": dict(result.not_applicable),
        "skipped_runs": list(result.skipped),
        "seconds": result.seconds,
        "budget_minutes": cfg.budget_minutes,
        "cost": {
            "cost_per_caption": cfg.cost.cost_per_caption,
            "value_per_point": cfg.cost.value_per_point,
            "min_gain_points": cfg.cost.min_gain_points,
            "adapt_cost": cfg.cost.adapt_cost,
        },
        "best_score": max([d.baseline] + [o.score for o in outcomes.values()]),
        "strategy_table": strategy_table(result.runs),
    }


HEADLINE = ("task_acc", "image_to_text_R@1", "text_to_image_R@1")


def strategy_table(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Option → mean over seeds of the headline metrics of every split (``id/task_acc``, ``ood/…``)."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        cells = table.setdefault(r["option"], {})
        for key, value in r.items():
            if key.partition("/")[2] in HEADLINE and isinstance(value, (int, float)):
                cells.setdefault(key, []).append(float(value))
    return {opt: {k: float(np.mean(v)) for k, v in sorted(cells.items())} for opt, cells in table.items()}


def write_report(out: Path, result: Any, cfg: PilotCfg) -> dict[str, Path]:
    """Write the plots, ``report.json``, ``report.md`` and ``report.html`` under ``out``."""
    out = Path(out)
    data = report_data(result, cfg)
    plots = {
        "cleaning_curve": cleaning_curve_plot(
            data["cleaning_curve"], data["adapt"], result.metric, out / "plots" / "cleaning_curve.png"
        ),
        "profile": type_coverage_plot(
            data["profile"]["types"], data["profile"]["coverage"], out / "plots" / "profile.png"
        ),
    }
    write_json(out / "report.json", data)
    atomic_write_text(out / "report.md", render_markdown(data))
    atomic_write_text(out / "report.html", render_html(data, plots, result.diagnosis.table, result.data, cfg.gallery))
    return {"json": out / "report.json", "markdown": out / "report.md", "html": out / "report.html", **plots}


def _md(text: str) -> str:
    """Untrusted text as a Markdown code span (backticks and line breaks removed)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ").replace("\r", " ") + "`"


def _option_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = [("baseline", f"{data['decision']['baseline_points']:.1f}", "–", "0", "–", "–")]
    for o in data["decision"]["options"]:
        rows.append(
            (
                o["option"],
                f"{o['score']:.1f}",
                f"{o['gain']:+.1f} ± {o['gain_se']:.1f}",
                f"{o['cost']:,.2f}",
                f"{o['net']:,.2f}",
                "yes" if o["worth_it"] else "no",
            )
        )
    return rows


OPTION_HEAD = ("option", "score", "gain (points ± s.e.)", "cost", "net value", "worth it")


def evaluation_line(ev: dict[str, Any]) -> str:
    """One sentence on what the options were scored on (plain text: the caller escapes it)."""
    source = f" from {ev['source']}" if ev.get("source") else ""
    left = (
        f"; {ev['left_out']} training pair(s) whose image is in the test set were left out of training"
        if ev.get("left_out")
        else ""
    )
    return f"Scored on: {ev['kind']} ({ev['pairs']} pairs{source}){left}."


def _diagnosis_md(diag: dict[str, Any]) -> list[str]:
    if not diag:
        return []
    slots = ", ".join(_md(s) for s in diag.get("slots", [])) or "none"
    return [
        f"Diagnosis: backbone {_md(diag['backbone'])}, schema {_md(diag['schema'])} (vocabulary "
        f"{_md(diag['vocabulary'])}; slots {slots}), {diag['folds']} folds. {diag['note']}",
        "",
    ]


def _diagnosis_html(diag: dict[str, Any]) -> str:
    if not diag:
        return ""
    e = html.escape
    slots = ", ".join(f"<code>{e(s)}</code>" for s in diag.get("slots", [])) or "none"
    return (
        f"<p id='diagnosis'>Diagnosis: backbone <code>{e(diag['backbone'])}</code>, schema "
        f"<code>{e(diag['schema'])}</code> (vocabulary <code>{e(diag['vocabulary'])}</code>; slots {slots}), "
        f"{diag['folds']} folds. {e(diag['note'])}</p>"
    )


def _not_applicable_md(skip: dict[str, str]) -> list[str]:
    if not skip:
        return []
    return ["Options that do not apply (not run):", "", *(f"- {o}: {_md(why)}" for o, why in skip.items()), ""]


def _not_applicable_html(skip: dict[str, str]) -> str:
    if not skip:
        return ""
    e = html.escape
    items = "".join(f"<li><b>{e(o)}</b>: {e(why)}</li>" for o, why in skip.items())
    return f"<p>Options that do not apply (not run):</p><ul id='not-applicable'>{items}</ul>"


def render_markdown(data: dict[str, Any]) -> str:
    d, prof = data["decision"], data["profile"]
    lines = [
        f"# Pilot report: {_md(data['data']['name'])}",
        "",
        f"**Recommendation: {d['label']}** (confidence {d['confidence_label']}, {100 * d['confidence']:.0f} %)",
        "",
    ]
    lines += [f"{i}. {r}" for i, r in enumerate(d["reasons"], 1)] + [""]
    ev = data["evaluation"]
    lines += [_md_sentence(evaluation_line(ev), ev.get("source", "")), ""]
    if ev.get("caveat"):
        lines += [f"**{ev['caveat']}**", ""]
    lines += [
        f"Metric: {data['metric']} (points); {data['data']['pairs']} pairs; plan {data['plan']['steps']} steps × "
        f"{data['plan']['seeds']} seeds per option; {data['seconds']:.0f} s of a {data['budget_minutes']:g}-minute budget.",
        "",
    ]
    type_rows = [
        [k, v["count"], f"{100 * v['rate']:.1f} %", f"{100 * v['ci95'][0]:.1f}–{100 * v['ci95'][1]:.1f} %"]
        for k, v in prof["types"].items()
    ]
    lines += ["## Misalignment profile", "", *_diagnosis_md(data["diagnosis"])]
    lines += markdown_table(["type", "pairs", "rate", "95 % CI"], type_rows)
    for title, key in (("Most often wrong", "wrong"), ("Most often omitted", "omitted")):
        items = ", ".join(f"{_md(k)} ({n})" for k, n in list(prof[key].items())[:5]) or "none"
        lines.append(f"\n{title}: {items}")
    cov = ", ".join(f"{_md(k)} {100 * v:.0f} %" for k, v in prof["coverage"].items()) or "no slots recognised"
    lines += ["", f"Coverage (captions stating each slot): {cov}", ""]
    if "quality" in prof:
        q = prof["quality"]
        lines += [
            f"Detector quality against the known truth: AUROC {q['detect/combined/auroc']:.3f}, "
            f"type macro-F1 {q['type/macro_f1']:.3f}.",
            "",
        ]
    lines += ["## Options", "", *markdown_table(OPTION_HEAD, _option_rows(data))]
    lines += ["", *_metric_table(data["strategy_table"], lambda c: c)]
    lines += ["", *_not_applicable_md(data["not_applicable"])]
    lines += ["", "![cleaning curve](plots/cleaning_curve.png)", "", "![profile](plots/profile.png)", ""]
    if data["skipped_runs"]:
        lines += [f"Runs not done: {_md(', '.join(data['skipped_runs']))}.", ""]
    return "\n".join(lines)


def _md_sentence(text: str, untrusted: str) -> str:
    """``text`` with its one untrusted piece (a file name) shown as a code span."""
    return text.replace(untrusted, _md(untrusted)) if untrusted else text


def _metric_table(table: dict[str, dict[str, float]], esc: Any) -> list[str]:
    """Markdown rows: option × every split's headline metric (means over seeds)."""
    cols = sorted({k for cells in table.values() for k in cells})
    if not cols:
        return []
    rows = [[esc(opt), *(cells.get(c, float("nan")) for c in cols)] for opt, cells in table.items()]
    return ["Every option, mean over seeds:", "", *markdown_table(["option", *(esc(c) for c in cols)], rows)]


def _metric_html(table: dict[str, dict[str, float]]) -> str:
    e = html.escape
    cols = sorted({k for cells in table.values() for k in cells})
    head = "<tr><th>option</th>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"
    rows = "".join(
        f"<tr><td>{e(opt)}</td>"
        + "".join(f"<td>{cells[c]:.3f}</td>" if c in cells else "<td>–</td>" for c in cols)
        + "</tr>"
        for opt, cells in table.items()
    )
    return f"<p>Every option, mean over seeds:</p><table id='metrics'>{head}{rows}</table>"


def _img(path: Path, alt: str) -> str:
    b64 = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img class='plot' alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def render_html(data: dict[str, Any], plots: dict[str, Path], table: Any, pilot_data: Any, gallery: int = 24) -> str:
    e = html.escape
    d, prof = data["decision"], data["profile"]
    reasons = "".join(f"<li>{e(r)}</li>" for r in d["reasons"])
    types = "".join(
        f"<tr><td>{e(k)}</td><td>{v['count']}</td><td>{100 * v['rate']:.1f} %</td>"
        f"<td>{100 * v['ci95'][0]:.1f}–{100 * v['ci95'][1]:.1f} %</td></tr>"
        for k, v in prof["types"].items()
    )
    opts = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in _option_rows(data))
    wrong = ", ".join(f"{e(str(k))} ({n})" for k, n in list(prof["wrong"].items())[:5]) or "none"
    omitted = ", ".join(f"{e(str(k))} ({n})" for k, n in list(prof["omitted"].items())[:5]) or "none"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>misalignlab pilot report</title>"
        f"<style>{CSS}.plot{{width:auto;height:auto;max-width:100%;image-rendering:auto}}"
        ".decision{font-size:1.4em;padding:.6em;background:#eef5ee;border-left:6px solid #228833}</style></head><body>"
        f"<h1>Pilot report: {e(data['data']['name'])}</h1>"
        f"<p class='decision' id='decision'>Recommendation: <b>{e(d['label'])}</b> — confidence {e(d['confidence_label'])} "
        f"({100 * d['confidence']:.0f} %)</p><ol id='reasons'>{reasons}</ol>"
        f"<p id='evaluation'>{e(evaluation_line(data['evaluation']))}</p>"
        + (f"<p id='caveat'><b>{e(data['evaluation']['caveat'])}</b></p>" if data["evaluation"].get("caveat") else "")
        + f"<p>Metric: {e(data['metric'])} (points), {data['data']['pairs']} pairs, {data['plan']['steps']} steps × "
        f"{data['plan']['seeds']} seeds per option, {data['seconds']:.0f} s of {data['budget_minutes']:g} minutes.</p>"
        f"<h2>Misalignment profile</h2>{_diagnosis_html(data['diagnosis'])}"
        "<table><tr><th>type</th><th>pairs</th><th>rate</th><th>95 % CI</th></tr>"
        f"{types}</table><p>Most often wrong: {wrong}.<br>Most often omitted: {omitted}.</p>{_img(plots['profile'], 'profile')}"
        f"<h2>Cleaning curve and options</h2>{_img(plots['cleaning_curve'], 'cleaning curve')}"
        "<table id='options'><tr>" + "".join(f"<th>{e(h)}</th>" for h in OPTION_HEAD) + f"</tr>{opts}</table>"
        f"{_metric_html(data['strategy_table'])}{_not_applicable_html(data['not_applicable'])}"
        + (f"<p id='skipped'>Runs not done: {e(', '.join(data['skipped_runs']))}.</p>" if data["skipped_runs"] else "")
        + f"<h2>Most suspicious pairs</h2>{_gallery(table, pilot_data, gallery)}</body></html>\n"
    )


def _gallery(table: Any, pilot_data: Any, n: int) -> str:
    e = html.escape
    worst = np.argsort(-table["score"].to_numpy(), kind="stable")[:n]
    rows = []
    for i in worst:
        r = table.iloc[int(i)]
        rows.append(
            f"<tr><td><img alt='pair {e(str(r['id']))}' src='data:image/png;base64,{thumbnail_b64(pilot_data.images[int(i)])}'></td>"
            f"<td><code>{e(str(r['id']))}</code><br><span class='caption'>{e(str(pilot_data.captions[int(i)]))}</span></td>"
            f"<td class='k-{e(str(r['type']))}'>{e(str(r['type']))}</td><td>{e(str(r['explanation']))}</td>"
            f"<td>{float(r['score']):.3f}</td></tr>"
        )
    return (
        "<table id='gallery'><tr><th>image</th><th>id / caption</th><th>type</th><th>explanation</th>"
        "<th>score</th></tr>" + "".join(rows) + "</table>"
    )
