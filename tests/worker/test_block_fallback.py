"""Item 8 of issue 22: a workspace whose Slack refuses a newer block (`invalid_blocks` naming the
block's type, as the stand-in answers when told to) still gets every message: sent again once with
the block drawn classic, the refusal remembered for the workspace and block type (in the database),
so the next message goes classic at once; after the memory runs out the newer block is tried again.
Through the real worker and sender, the real slack_sdk client and the Slack stand-in."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.messages.dataset_report import DatasetRow, datasets_list
from bot.outbox.queue import enqueue
from bot.worker.runner import Worker
from storage.models import BlockFallback, OutboxMessage
from storage.types import utcnow
from tests.worker.test_retirement_warnings import BASE, CH, _made_model, _warnings


def _types(args: dict) -> list[str]:
    return [b.get("type") for b in args.get("blocks") or []]


def _posts_with(slack, kind: str) -> list:  # noqa: ANN001
    return [c for c in slack.calls("chat.postMessage") if kind in _types(c.args)]


def _remembered(bot) -> list[tuple[str, str]]:  # noqa: ANN001
    with bot.services.db.session() as s:
        return [tuple(r) for r in s.execute(select(BlockFallback.team_id, BlockFallback.block_type)).all()]


def test_a_refused_alert_is_sent_classic_and_the_next_goes_classic_at_once(db_url, start_bot, slack, sandbox, tmp_path) -> None:  # noqa: ANN001
    bot = start_bot(db_url, worker=True)
    job_id, model = _made_model(bot, sandbox)
    bot.services.extras.pop("worker").stop()
    slack.refuse_blocks("alert")
    today = utcnow().date()
    settings = bot.services.settings

    def warn(days_left: int) -> None:
        f = tmp_path / f"retire-{days_left}.json"
        f.write_text(json.dumps({BASE: {"training_ends": str(today), "serving_ends": str(today + timedelta(days=days_left))}}))
        bot.services.settings = replace(settings, retirements_file=str(f))
        w = Worker(bot.services, lease_seconds=5, team_id="T0001")
        w.warn_retirements()
        w.sender.send_pending()

    warn(20)
    [first] = _warnings(slack)  # delivered, nothing lost
    assert "in 20 days" in first and model in first
    post = next(m for m in slack.channel_messages(CH) if "in 20 days" in (m.get("text") or ""))
    assert "alert" not in _types(post)
    lead = post["blocks"][0]
    assert lead["type"] == "section" and lead["text"]["text"].startswith(":warning: ") and model in lead["text"]["text"]
    assert len(_posts_with(slack, "alert")) == 1  # refused once, then sent classic
    assert _remembered(bot) == [("T0001", "alert")]
    with bot.services.db.session() as s:
        assert s.scalar(select(OutboxMessage.gave_up_at).where(OutboxMessage.idempotency_key.like("%retire%"))) is None

    warn(5)  # the next warning: classic at once, no refused attempt first
    assert len(_warnings(slack)) == 2 and len(_posts_with(slack, "alert")) == 1
    urgent = next(m for m in slack.channel_messages(CH) if "in 5 days" in (m.get("text") or ""))
    assert urgent["blocks"][0]["text"]["text"].startswith(":rotating_light: ")  # an error-level alert's emoji

    # Slack takes alerts again and the memory runs out: the next warning is an alert again.
    slack.refuse_blocks()
    with bot.services.db.session() as s:
        s.execute(update(BlockFallback).values(until=utcnow() - timedelta(seconds=1)))
    warn(1)
    tomorrow = next(m for m in slack.channel_messages(CH) if "tomorrow" in (m.get("text") or ""))
    assert tomorrow["blocks"][0]["type"] == "alert" and len(_posts_with(slack, "alert")) == 2


def test_a_refused_table_is_sent_as_preformatted_text_within_limits(sqlite_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    slack.refuse_blocks("table")
    # A report with a table of 99 rows (names with markup that must stay literal), through the outbox.
    rows = [DatasetRow(f"set-{i:02d} <!here> & co", f"file-{i:024d}", 1000 * i, 10 + i, "clean", 100 * i, "U0001", datetime(2026, 12, 1, tzinfo=UTC)) for i in range(99)]
    report = datasets_list(rows)
    assert "table" in _types(report)
    with bot.services.db.session() as s:
        enqueue(s, "report:1", kind="post", channel=CH, team_id="T0001", payload=report)
        enqueue(s, "report:2", kind="post", channel=CH, team_id="T0001", payload=datasets_list(rows[:3]))
    from bot.outbox.sender import Sender

    stats = Sender(bot.services, "w1").send_pending()
    assert stats.delivered == 2 and stats.gave_up == 0
    first, second = [m for m in slack.channel_messages(CH)]
    for m in (first, second):
        assert "table" not in _types(m)
        pre = next(b for b in m["blocks"] if b["type"] == "section" and b["text"]["text"].startswith("```"))
        assert len(pre["text"]["text"]) <= 3000 and "set-00 &lt;!here&gt; &amp; co" in pre["text"]["text"]
        assert "<!here>" not in json.dumps(m["blocks"])
    # 99 rows do not fit one section: cut, saying how many are not shown.
    assert "more rows not shown" in json.dumps(first["blocks"])
    assert "more rows not shown" not in json.dumps(second["blocks"]) and "set-02" in json.dumps(second["blocks"])
    assert len(_posts_with(slack, "table")) == 1  # only the first was tried with its table
    assert _remembered(bot) == [("T0001", "table")]


def test_a_refusal_inside_a_newer_block_is_sent_classic_but_not_remembered(sqlite_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    # An alert with a level Slack does not know is refused for that block's content, not its type:
    # the message still goes (classic), and the workspace keeps getting alerts.
    bot = start_bot(sqlite_url)
    payload = {"text": "odd level", "blocks": [{"type": "alert", "level": "critical", "text": {"type": "mrkdwn", "text": "odd level"}}]}
    with bot.services.db.session() as s:
        enqueue(s, "odd:1", kind="post", channel=CH, team_id="T0001", payload=payload)
    from bot.outbox.sender import Sender

    assert Sender(bot.services, "w1").send_pending().delivered == 1
    [m] = slack.channel_messages(CH)
    assert m["blocks"][0]["type"] == "section" and "odd level" in m["blocks"][0]["text"]["text"]
    assert _remembered(bot) == []

