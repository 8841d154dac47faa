"""Champion/challenger: whether a candidate version may replace production, from both versions' metrics on
the same recent interval. Plain functions: the Spark side (scoring both, measuring) is pipeline.challenge.

With labels (the dataset's labels table, else the anomalies analysts confirmed) the candidate must not lose
more than the configured margins of PR-AUC or event recall, nor raise more false alerts per entity-day. Without
any, it is judged on what can be known: its alerts per entity-day must stay within the alert budget (or, with
none, within a factor of production's), and its share of flagged points likewise (score stability).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from lakewatch.config import PromotionSettings

LABELED_METRICS = ("pr_auc", "event_recall", "false_alerts_per_entity_day")
UNLABELED_METRICS = ("alerts_per_entity_day", "flagged_share")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    basis: str = "labels"  # labels | feedback | unlabeled | no production

    def to_dict(self) -> dict:
        return asdict(self)


def _num(metrics: dict[str, float], key: str) -> float | None:
    v = metrics.get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def decide(champion: dict[str, float] | None, challenger: dict[str, float], basis: str, rules: PromotionSettings,
           budget: float | None) -> Decision:
    """Promote unless the challenger is worse by more than the margins (each failed check is a reason)."""
    if champion is None:
        return Decision(True, ["no production version to compare with"], "no production")
    reasons: list[str] = []
    if basis in ("labels", "feedback"):
        for key, margin, higher_is_better in (("pr_auc", rules.max_pr_auc_drop, True),
                                              ("event_recall", rules.max_event_recall_drop, True),
                                              ("false_alerts_per_entity_day", rules.max_false_alerts_increase, False)):
            a, b = _num(champion, key), _num(challenger, key)
            if a is None or b is None:
                continue
            worse = (a - b) if higher_is_better else (b - a)
            if worse > margin:
                reasons.append(f"{key} {b:.4g} against production's {a:.4g}: worse by {worse:.4g} (margin {margin:g})")
        ok = not reasons
        if ok:
            reasons.append("not worse than production by more than the margins on "
                           + ", ".join(k for k in LABELED_METRICS if _num(challenger, k) is not None))
        return Decision(ok, reasons, basis)
    for key in UNLABELED_METRICS:
        a, b = _num(champion, key), _num(challenger, key)
        if b is None:
            continue
        limit = (budget if key == "alerts_per_entity_day" and budget is not None else (a or 0.0)) \
            * rules.max_alert_rate_ratio
        if b > limit and b > 0:
            what = "the alert budget" if key == "alerts_per_entity_day" and budget is not None else "production's"
            reasons.append(f"{key} {b:.4g} above {what} x {rules.max_alert_rate_ratio:g} = {limit:.4g}")
    ok = not reasons
    if ok:
        reasons.append("no labels: alert rate and flagged share within the limits")
    return Decision(ok, reasons, "unlabeled")
