"""Facts of ../shared/contract/CANONICAL_MODEL.md the tests check against (§1 owners, §4
categories by check), written down once, independently of the code under test."""

CATEGORIES = {
    "booked_vs_billed_daily": {"unbilled", "under_billed", "over_billed", "renewal_miss"},
    "billed_vs_collected_weekly": {"unpaid", "payment_failed", "short_paid", "disputed",
                                   "unapplied_cash"},
    "recognized_vs_collected_quarterly": {"recognized_not_collected", "payment_not_deposited"},
    "pricing_drift_quarterly": {"expired_promo", "stacked_discount", "unapproved_discount",
                                "grandfathered_rate", "price_mismatch"},
    "funnel_leak_weekly": {"intake", "routing", "response", "follow_up", "close", "stale_deal"},
}
OWNING_TEAMS = {"booked_vs_billed_daily": "RevOps", "billed_vs_collected_weekly": "Finance",
                "recognized_vs_collected_quarterly": "Accounting",
                "pricing_drift_quarterly": "Finance", "funnel_leak_weekly": "Sales Ops"}
