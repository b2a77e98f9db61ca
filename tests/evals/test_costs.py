"""Prices of what a migration makes: every base the migration recipe may move a model to has a
chat price, so the evaluation of a migrated model shows a known estimate, not "unknown"."""

from __future__ import annotations

from bot.evals.costs import Asked, chat_price, estimate
from bot.migration.recipes import COMPARABLE_BASES


def test_every_migration_target_base_has_a_chat_price() -> None:
    for (source, target), base in COMPARABLE_BASES.items():
        migrated = f"acct/{base.split('/')[-1]}-migrated-{source}-abc123"
        assert chat_price(target, migrated, base=base) is not None, (source, target, base)
        est = estimate([Asked("model", target, migrated, base), Asked("baseline", target, base)], 10_000, 2_000, 20)
        assert est["usd"] is not None and est["usd"] > 0, est
