"""The shipped table's Gemini entries: tuning stops a month before the base retires."""

from __future__ import annotations

from datetime import date, timedelta

from bot.provider.vertex_models import TUNABLE_MODELS
from bot.retirements.table import RetirementTable


def test_every_tunable_gemini_model_has_dates_a_month_apart() -> None:
    table = RetirementTable.load()
    for model in TUNABLE_MODELS:
        r = table.lookup("vertex", model)
        assert r is not None and r.serving_ends is not None and r.training_ends is not None, model
        assert timedelta(days=28) <= r.serving_ends - r.training_ends <= timedelta(days=31), model
    assert table.lookup("vertex", "gemini-3.5-flash").serving_ends == date(2027, 5, 19)
    assert table.lookup("vertex", "gemini-2.5-flash").training_ends == date(2026, 10, 20)
    assert table.lookup("openai", "gemini-3.5-flash") is None
