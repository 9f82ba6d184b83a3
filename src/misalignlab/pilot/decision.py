"""Turn measured gains into money and a recommendation: clean, adapt (naming the strategy) or stop.

Pure functions on a long table of scores (``option``, ``seed``, ``value`` in accuracy points,
0–100). Gains are paired by seed (option − baseline trained with the same seed), so the seed's
share of the noise cancels. The standard error of a gain combines the spread over seeds with a
floor from the test set's own sampling noise (a binomial accuracy on ``n_test`` items), because
two or three seeds alone understate it.

Money: cleaning the top ``k`` share costs ``k · n_pairs · cost_per_caption`` (every flagged pair
is reviewed, whether or not it was wrong); a model-side strategy costs ``adapt_cost`` (0 by
default). An option is *worth it* when its gain reaches ``min_gain_points`` and its value
``gain · value_per_point`` exceeds its cost. The recommendation is the worth-it option with the
highest net value, or **stop** when there is none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.pilot.config import CostModel

BASELINE = "baseline"
CLEAN_PREFIX = "clean@"


def clean_option(fraction: float) -> str:
    """The option name of cleaning the top ``fraction`` of pairs: ``clean@0.2``."""
    return f"{CLEAN_PREFIX}{fraction:g}"


def clean_fraction(option: str) -> float | None:
    """``clean@0.2`` → 0.2; None for any other option."""
    return float(option[len(CLEAN_PREFIX) :]) if option.startswith(CLEAN_PREFIX) else None


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def accuracy_noise_points(accuracy_points: float, n_test: int) -> float:
    """Standard error (points) of one accuracy measured on ``n_test`` items."""
    p = min(max(accuracy_points / 100.0, 0.01), 0.99)
    return 100.0 * math.sqrt(p * (1.0 - p) / max(n_test, 1))


@dataclass(frozen=True)
class Outcome:
    """One option against the baseline: gain (points) with its standard error, cost and net value."""

    option: str
    action: str  # "clean" or "adapt"
    score: float  # mean score (points)
    gain: float
    gain_se: float
    seeds: int
    cost: float
    value: float
    net: float
    break_even: float  # the gain (points) at which the option starts to pay: max(min_gain, cost / value_per_point)

    @property
    def p_worth(self) -> float:
        """Probability (normal approximation) that the true gain exceeds ``break_even``."""
        return _phi((self.gain - self.break_even) / max(self.gain_se, 1e-9))

    @property
    def worth_it(self) -> bool:
        return self.gain >= self.break_even and self.net > 0


@dataclass(frozen=True)
class Decision:
    """The recommendation, how sure it is, the three reasons that decided it, and every option's numbers."""

    action: str  # "clean" | "adapt" | "stop"
    option: str | None  # e.g. "clean@0.2", "filter"; None for stop
    confidence: float
    reasons: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    baseline: float  # baseline score (points)

    @property
    def confidence_label(self) -> str:
        return "high" if self.confidence >= 0.9 else "medium" if self.confidence >= 0.7 else "low"

    @property
    def label(self) -> str:
        """``clean (top 20 %)``, ``adapt: filter`` or ``stop``."""
        if self.action == "clean":
            return f"clean (top {100 * (clean_fraction(self.option or '') or 0):.0f} %)"
        return f"adapt: {self.option}" if self.action == "adapt" else "stop"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "option": self.option,
            "label": self.label,
            "confidence": self.confidence,
            "confidence_label": self.confidence_label,
            "reasons": list(self.reasons),
            "baseline_points": self.baseline,
            "options": [vars(o) | {"p_worth": o.p_worth, "worth_it": o.worth_it} for o in self.outcomes],
        }


def outcomes(scores: pd.DataFrame, n_pairs: int, n_test: int, cost: CostModel) -> list[Outcome]:
    """Every non-baseline option of ``scores`` (columns option, seed, value) against the baseline."""
    wide = scores.pivot_table(index="seed", columns="option", values="value", aggfunc="mean")
    if BASELINE not in wide:
        raise ValueError("the scores hold no baseline run; every gain is measured against it")
    base = wide[BASELINE]
    out = []
    for option in [c for c in wide.columns if c != BASELINE]:
        paired = (wide[option] - base).dropna()
        if paired.empty:
            continue
        n = len(paired)
        floor = math.sqrt(2.0) * accuracy_noise_points(float(base.mean()), n_test)
        spread = float(paired.std(ddof=1)) if n >= 2 else floor
        se = math.sqrt(spread**2 / n + floor**2 / n)
        gain = float(paired.mean())
        fraction = clean_fraction(option)
        money = fraction * n_pairs * cost.cost_per_caption if fraction is not None else cost.adapt_cost
        value = gain * cost.value_per_point
        even = max(cost.min_gain_points, money / cost.value_per_point if cost.value_per_point > 0 else math.inf)
        out.append(
            Outcome(
                option,
                "clean" if fraction is not None else "adapt",
                float(wide[option].mean()),
                gain,
                se,
                n,
                money,
                value,
                value - money,
                even,
            )
        )
    return out


def decide(scores: pd.DataFrame, n_pairs: int, n_test: int, cost: CostModel, profile_reason: str = "") -> Decision:
    """The recommendation from the scores of every option (see module docstring)."""
    found = outcomes(scores, n_pairs, n_test, cost)
    if not found:
        raise ValueError("no option besides the baseline was measured; nothing to decide between")
    baseline = float(scores.loc[scores.option == BASELINE, "value"].mean())
    worth = sorted((o for o in found if o.worth_it), key=lambda o: o.net, reverse=True)
    cleans = sorted((o for o in found if o.action == "clean"), key=lambda o: o.net, reverse=True)
    adapts = sorted((o for o in found if o.action == "adapt"), key=lambda o: o.net, reverse=True)
    if not worth:
        confidence = 1.0 - max(o.p_worth for o in found)
        best = max(found, key=lambda o: o.gain)
        lead = (
            f"No option pays: the largest gain is {_gain(best)} ({best.option}), below its break-even "
            f"of {best.break_even:.1f} points."
        )
        family = [_clean_reason(cleans[0]) if cleans else "", _adapt_reason(adapts[0]) if adapts else ""]
        return Decision("stop", None, confidence, _three([lead, *family, profile_reason]), tuple(found), baseline)
    best = worth[0]
    # The rival is the best *other decision*: another share of cleaning is the same decision ("clean").
    others = sorted(
        (o for o in found if o is not best and not (o.action == best.action == "clean")),
        key=lambda o: o.net,
        reverse=True,
    )
    runner = others[0] if others and others[0].net > 0 else None  # stopping is always an option worth 0
    rival_net, rival_se = (runner.net, runner.gain_se) if runner else (0.0, 0.0)
    margin_se = cost.value_per_point * math.sqrt(best.gain_se**2 + rival_se**2)
    confidence = min(best.p_worth, _phi((best.net - rival_net) / max(margin_se, 1e-9)))
    lead = (
        f"{best.option} has the highest net value: {_money(best.net)} "
        f"({_gain(best)} worth {_money(best.value)}, cost {_money(best.cost)})."
    )
    if best.action == "clean":
        family = _adapt_reason(adapts[0]) if adapts else "No model-side strategy was measured."
    else:
        family = _clean_reason(cleans[0]) if cleans else "No cleaning option was measured."
    margin = (
        f"It beats the runner-up, {runner.option if runner else 'stopping'}, by {_money(best.net - rival_net)} "
        f"with probability {100 * confidence:.0f} % (normal approximation over seeds and test noise)."
    )
    reasons = [lead, family, profile_reason or margin]
    return Decision(best.action, best.option, confidence, _three(reasons), tuple(found), baseline)


def _three(reasons: Sequence[str]) -> tuple[str, ...]:
    return tuple(r for r in reasons if r)[:3]


def _gain(o: Outcome) -> str:
    return f"{o.gain:+.1f} ± {o.gain_se:.1f} points"


def _money(x: float) -> str:
    return f"{x:,.2f}" if abs(x) < 1000 else f"{x:,.0f}"


def _clean_reason(o: Outcome) -> str:
    return (
        f"Cleaning the most suspicious {100 * (clean_fraction(o.option) or 0):.0f} % of pairs costs "
        f"{_money(o.cost)} and gains {_gain(o)} (net {_money(o.net)})."
    )


def _adapt_reason(o: Outcome) -> str:
    return f"The best model-side strategy, {o.option}, gains {_gain(o)} at no labelling cost (net {_money(o.net)})."


def profile_sentence(
    types: Mapping[str, Mapping[str, Any]],
    wrong: Mapping[str, int],
    omitted: Mapping[str, int],
    unseen: Sequence[str] = (),
) -> str:
    """One line on the misalignment profile: flagged share by type and the slot most often wrong/omitted.

    ``unseen``: slots the diagnosis's models cannot see; the line names them, so a low rate is not
    read as an all-clear where wrong or omitted words could not have been found.
    """
    parts = [f"{k} {100 * v['rate']:.0f} %" for k, v in types.items() if k != "aligned" and v.get("count", 0)]
    top_wrong = next(iter(wrong), None)
    top_omit = next(iter(omitted), None)
    text = "Diagnosis: " + (", ".join(parts) if parts else "no pair typed misaligned")
    if top_wrong:
        text += f"; most often wrong: {top_wrong}"
    if top_omit:
        text += f"; most often omitted: {top_omit}"
    if unseen:
        text += f"; its models cannot see {', '.join(unseen)}, so wrong or omitted words there go unseen"
    return text + "."


def as_scores(rows: Sequence[Mapping[str, Any]], metric: str) -> pd.DataFrame:
    """Long (option, seed, value) from run records holding ``metric`` (a fraction, turned into points)."""
    data = [(r["option"], int(r["seed"]), 100.0 * float(r[metric])) for r in rows if np.isfinite(r.get(metric, np.nan))]
    return pd.DataFrame(data, columns=["option", "seed", "value"])
