"""The Slack stand-in refuses `table` and `alert` blocks as Slack does, and takes what our builders make."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import AlertBlock, TableBlock

from bot.messages.table import MAX_BODY_ROWS, code_cell, table_block, table_blocks, table_texts, user_cell
from tests.conftest import BOT_TOKEN


def _row(n: int, i: int = 0) -> list[dict]:
    return [{"type": "raw_text", "text": f"r{i}c{j}"} for j in range(n)]


def _refused(slack, blocks: list[dict]) -> str:  # noqa: ANN001
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    assert err.value.response["error"] == "invalid_blocks"
    return err.value.response["errors"][0]


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ({"type": "table", "rows": [_row(2, i) for i in range(101)]}, "no more than 100 items allowed [json-pointer:/blocks/0]/rows"),
        ({"type": "table", "rows": [_row(21)]}, "no more than 20 items allowed [json-pointer:/blocks/0]/rows/0"),
        ({"type": "table", "rows": []}, "missing required field: rows"),
        ({"type": "table", "rows": [[{"type": "mrkdwn", "text": "*x*"}]]}, "unsupported cell type 'mrkdwn'"),
        ({"type": "table", "rows": [["plain string"]]}, "unsupported cell type 'str'"),
        ({"type": "table", "rows": [[{"type": "raw_text", "text": ""}]]}, "must be at least 1 character"),
        ({"type": "table", "rows": [[{"type": "rich_text"}]]}, "missing required field: elements"),
        ({"type": "table", "rows": [_row(1)], "column_settings": [{"align": "middle"}]}, "/column_settings/0/align"),
        ({"type": "table", "rows": [_row(1)], "column_settings": [{}] * 21}, "/column_settings"),
        ({"type": "alert", "text": {"type": "mrkdwn", "text": "x"}, "level": "critical"}, "/level"),
        ({"type": "alert", "level": "warning"}, "missing required field: text"),
        ({"type": "alert", "text": {"type": "plain_text", "text": ""}}, "must be at least 1 character"),
    ],
)
def test_bad_tables_and_alerts_are_refused(slack, block: dict, why: str) -> None:  # noqa: ANN001
    assert why in _refused(slack, [block])
    assert slack.channel_messages("C1") == []


def test_one_table_per_message(slack) -> None:  # noqa: ANN001
    t = {"type": "table", "rows": [_row(2)]}
    assert "only one table block is allowed per message" in _refused(slack, [t, t])


def test_slack_sdk_shapes_and_our_builders_are_accepted(slack) -> None:  # noqa: ANN001
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    sdk_table = TableBlock(rows=[_row(20, i) for i in range(100)], column_settings=[{"align": "right", "is_wrapped": True}]).to_dict()
    client.chat_postMessage(channel="C1", text="sdk table", blocks=[sdk_table])
    for level in ("warning", "error"):
        client.chat_postMessage(channel="C1", text=level, blocks=[AlertBlock(text="Loss is rising", level=level).to_dict()])
    rows = [[str(i), code_cell(f"ftjob-{i}"), user_cell("U0001" if i % 2 else None), ""] for i in range(250)]
    ours = table_blocks(["#", "Job", "By", "Empty"], rows, more="{n} more jobs", align=["right"], wrapped=[1])
    client.chat_postMessage(channel="C1", text="ours", blocks=ours)
    posted = slack.channel_messages("C1")[-1]["blocks"]
    texts = table_texts(posted[0])
    assert texts[0] == ["#", "Job", "By", "Empty"] and len(texts) == 1 + MAX_BODY_ROWS
    assert texts[1] == ["0", "ftjob-0", "–", "–"] and texts[2] == ["1", "ftjob-1", "<@U0001>", "–"]
    assert posted[1]["elements"][0]["text"] == f"{250 - MAX_BODY_ROWS} more jobs"
    assert posted[0]["column_settings"] == [{"align": "right"}, {"is_wrapped": True}]


def test_table_block_refuses_what_slack_would() -> None:
    with pytest.raises(ValueError, match="at most 99 rows"):
        table_block(["a"], [["x"]] * 100)
    with pytest.raises(ValueError, match="1 to 20 columns"):
        table_block([str(i) for i in range(21)], [])
    with pytest.raises(ValueError, match="2 cells"):
        table_block(["a"], [["x", "y"]])
