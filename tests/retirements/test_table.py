"""The retirement table: shipped dates, lookups by snapshot, alias and fine-tuned name, the operator's file."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.retirements.table import RetirementTable, base_model_of
from bot.retirements.warnings import threshold_for
from bot.settings import SettingsError, load_settings


def test_shipped_table_knows_the_announced_dates() -> None:
    t = RetirementTable.load()
    nano = t.lookup("openai", "gpt-4.1-nano-2025-04-14")
    assert nano is not None and nano.serving_ends == date(2026, 10, 23)
    mini = t.lookup("openai", "gpt-4o-mini-2024-07-18")
    assert mini is not None and mini.training_ends == date(2027, 1, 6) and mini.serving_ends == date(2027, 1, 14)  # reported
    for family in ("gpt-4o-2024-08-06", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14"):
        assert t.lookup("openai", family).serving_ends == date(2027, 1, 14)
    assert t.lookup("openai", "o4-mini-2025-04-16").serving_ends is None
    # An alias stands for its snapshots when they agree; the Azure bridge has its own dates.
    assert t.lookup("openai", "gpt-3.5-turbo").serving_ends == date(2026, 10, 23)
    assert t.lookup("azure", "gpt-4o").serving_ends == date(2027, 10, 1)
    assert t.lookup("together", "meta-llama/Llama-3.1-8B-Instruct") is None
    assert t.lookup("openai", "no-such-model") is None


def test_base_model_of_fine_tuned_and_checkpoint_names() -> None:
    assert base_model_of("ft:gpt-4o-mini-2024-07-18:acme:support:9xQ") == "gpt-4o-mini-2024-07-18"
    assert base_model_of("ft:gpt-4o-2024-08-06:acme::9xQ:ckpt-step-40") == "gpt-4o-2024-08-06"
    assert base_model_of("acct/Llama-3.1-8B-x-1a2b", known_base="meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"


def test_operator_file_is_merged_over_the_shipped_table(tmp_path) -> None:  # noqa: ANN001
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"gpt-4o-mini-2024-07-18": {"training_ends": "2027-01-06", "serving_ends": "2027-03-01"}, "my-base": {"serving_ends": "2028-01-01"}}))
    t = RetirementTable.load(f)
    assert t.lookup("openai", "gpt-4o-mini-2024-07-18").serving_ends == date(2027, 3, 1)
    assert t.lookup("together", "my-base").serving_ends == date(2028, 1, 1)
    assert t.lookup("openai", "gpt-4.1-nano-2025-04-14").serving_ends == date(2026, 10, 23)  # the rest stays


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "must be a JSON object"),
        ('{"m": {"serving_ends": "01/02/2027"}}', "m.serving_ends must be a date YYYY-MM-DD"),
        ('{"m": {"ends": "2027-01-01"}}', "'m' must be"),
    ],
)
def test_a_bad_file_stops_start_up_with_one_line(tmp_path, content: str, says: str) -> None:  # noqa: ANN001
    f = tmp_path / "r.json"
    f.write_text(content)
    with pytest.raises(SettingsError) as err:
        load_settings({"FTBOT_RETIREMENTS": str(f)}, dotenv_path=None)
    assert says in str(err.value) and str(err.value).startswith("FTBOT_RETIREMENTS") and "\n" not in str(err.value)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"FTBOT_RETIREMENTS": str(tmp_path / "missing.json")}, dotenv_path=None)


@pytest.mark.parametrize(("days", "threshold"), [(45, None), (31, None), (30, 30), (8, 30), (7, 7), (2, 7), (1, 1), (0, 1), (-1, None)])
def test_the_most_urgent_threshold_crossed(days: int, threshold: int | None) -> None:
    assert threshold_for(days) == threshold


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2027-01-14", date(2027, 1, 14)),
        ("2027-01-14T00:00:00Z", date(2027, 1, 14)),
        ("2027-01-13T23:30:00-02:00", date(2027, 1, 14)),
        (1_799_884_800, date(2027, 1, 14)),
        ("1799884800", date(2027, 1, 14)),
        (None, None),
        ("", None),
        ("soon", None),
        (1_799_884_800_000, date(2027, 1, 14)),  # milliseconds
        ("1799884800000", date(2027, 1, 14)),
        (float("nan"), None),
        (float("inf"), None),
        (1e300, None),
        ("9" * 40, None),
    ],
)
def test_a_provider_date_in_every_shape_it_takes(raw, day) -> None:  # noqa: ANN001
    from bot.provider.base import day_of

    assert day_of(raw) == day
