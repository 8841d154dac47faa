"""Champion/challenger decisions from both versions' metrics: the margins of the profile, each failed check
named as a reason; without labels, the alert rate against the budget (or production's)."""

from __future__ import annotations

from lakewatch.config import PromotionSettings
from lakewatch.packaging.promotion import decide

RULES = PromotionSettings(max_pr_auc_drop=0.02, max_event_recall_drop=0.02, max_false_alerts_increase=0.1,
                          max_alert_rate_ratio=1.25)
CHAMPION = {"pr_auc": 0.80, "event_recall": 0.90, "false_alerts_per_entity_day": 0.30}


def test_a_challenger_within_the_margins_is_promoted():
    d = decide(CHAMPION, {"pr_auc": 0.79, "event_recall": 0.89, "false_alerts_per_entity_day": 0.39}, "labels", RULES,
               None)
    assert d.promote and d.basis == "labels" and "not worse" in d.reasons[0]


def test_each_metric_worse_by_more_than_its_margin_keeps_production():
    d = decide(CHAMPION, {"pr_auc": 0.77, "event_recall": 0.80, "false_alerts_per_entity_day": 0.45}, "feedback",
               RULES, None)
    assert not d.promote and d.basis == "feedback" and len(d.reasons) == 3
    assert d.reasons[0].startswith("pr_auc 0.77 against production's 0.8: worse by 0.03")
    assert d.reasons[1].startswith("event_recall 0.8") and d.reasons[2].startswith("false_alerts_per_entity_day 0.45")


def test_without_labels_the_alert_rate_is_held_to_the_budget_or_to_production():
    champion = {"alerts_per_entity_day": 0.2, "flagged_share": 0.002}
    noisy = {"alerts_per_entity_day": 0.5, "flagged_share": 0.002}
    over = decide(champion, noisy, "unlabeled", RULES, budget=0.3)  # 0.5 > 0.3 x 1.25
    assert not over.promote and "the alert budget x 1.25 = 0.375" in over.reasons[0]
    assert decide(champion, noisy, "unlabeled", RULES, budget=0.5).promote
    no_budget = decide(champion, noisy, "unlabeled", RULES, budget=None)  # 0.5 > production's 0.2 x 1.25
    assert not no_budget.promote and "production's x 1.25 = 0.25" in no_budget.reasons[0]


def test_a_first_version_has_nothing_to_beat():
    d = decide(None, {"pr_auc": 0.1}, "labels", RULES, None)
    assert d.promote and d.basis == "no production"
