"""Who may point a job at a channel, over signed `/ft` commands: with FTBOT_OPERATORS set, `watch` and
`unwatch` are operator verbs; and only a member of the target channel may point a job at it
(conversations.members, every page, cached), the channel the command runs in being fine."""

from __future__ import annotations

import json

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from storage.models import Subscription
from tests.conftest import BOT_TOKEN, wait_for


def subscribed(chat) -> list[str]:  # noqa: ANN001
    with chat.bot.services.db.session() as s:
        return sorted(s.scalars(select(Subscription.channel_id)).all())


def member_lookups(slack, channel: str) -> int:  # noqa: ANN001
    return len([c for c in slack.calls("conversations.members") if c.args.get("channel") == channel])


def test_watch_and_unwatch_are_operator_verbs_when_operators_are_set(make_chat, slack, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0OPS",))
    job_id = chat.start(user="U0OPS")
    slack.set_members("G0PRIVATE", ["U0OPS", "U0002"])
    for text in (f"watch {job_id} <#G0PRIVATE>", f"watch {job_id}", f"unwatch {job_id}"):
        refused = chat.ask(text, user="U0002")["ack"]
        assert refused["response_type"] == "ephemeral" and ":lock: Only operators" in refused["text"], text
    assert subscribed(chat) == ["C0001"] and slack.channel_messages("G0PRIVATE") == []
    # An operator who is in the channel may.
    assert "now follows" in chat.ask(f"watch {job_id} <#G0PRIVATE>", user="U0OPS")["text"]
    assert "no longer follows" in chat.ask(f"unwatch {job_id}", user="U0OPS", channel="G0PRIVATE")["text"]
    assert subscribed(chat) == ["C0001"]


def test_only_a_member_may_point_a_job_at_a_channel(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    slack.set_channel("G0PRIVATE", private=True, member=True)  # the bot is in it; U0001 is not
    slack.set_members("G0PRIVATE", ["U0OTHER"])
    refused = chat.ask(f"watch {job_id} <#G0PRIVATE|secret>")["ack"]
    assert refused["response_type"] == "ephemeral" and "channel you are in" in refused["text"] and "<#G0PRIVATE>" in refused["text"]
    assert subscribed(chat) == ["C0001"] and slack.channel_messages("G0PRIVATE") == []
    # Asked again at once: the answer comes from the cache, not from Slack again.
    assert "channel you are in" in chat.ask(f"watch {job_id} G0PRIVATE")["ack"]["text"]
    assert member_lookups(slack, "G0PRIVATE") == 1
    # U0001 joins; once the cached answer expires, it works.
    slack.set_members("G0PRIVATE", ["U0OTHER", "U0001"])
    chat.bot.services.extras["channel_members"].ttl = 0.2
    wait_for(lambda: "<#G0PRIVATE> now follows" in chat.ask(f"watch {job_id} <#G0PRIVATE>").get("text", ""))
    assert job_id in json.dumps(slack.channel_messages("G0PRIVATE"))


def test_the_channel_the_command_runs_in_needs_no_lookup(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start(channel="C0001")
    assert "already follows" in chat.ask(f"watch {job_id}", channel="C0001")["text"]
    assert "already follows" in chat.ask(f"watch {job_id} <#C0001>", channel="C0001")["text"]
    assert "now follows" in chat.ask(f"watch {job_id}", channel="C0SECOND")["text"]
    assert slack.calls("conversations.members") == []


def test_a_channel_the_bot_cannot_see_is_explained(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    slack.set_channel("G0HIDDEN", private=True, member=False)
    refused = chat.ask(f"watch {job_id} <#G0HIDDEN>")["ack"]
    assert "I can't see <#G0HIDDEN>" in refused["text"] and "/invite @ftbot" in refused["text"]
    slack.fail("conversations.members", 500)
    refused = chat.ask(f"watch {job_id} <#C0BUSY>")["ack"]
    assert "Slack could not tell me who is in <#C0BUSY>" in refused["text"]
    assert subscribed(chat) == ["C0001"]


def test_every_page_of_a_big_channel_is_read(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    slack.set_members("C0ALLHANDS", [f"U{i:07d}" for i in range(2_500)] + ["U0001"])
    assert "<#C0ALLHANDS> now follows" in chat.ask(f"watch {job_id} <#C0ALLHANDS>")["text"]
    pages = [c.args for c in slack.calls("conversations.members")]
    assert len(pages) == 3 and [p.get("cursor") for p in pages][1:] == ["1000", "2000"]


def test_the_stand_in_answers_conversations_members_as_slack_does(slack) -> None:  # noqa: ANN001
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    slack.set_members("C0PAGED", ["U1", "U2", "U3"])
    first = client.conversations_members(channel="C0PAGED", limit=2)
    assert first["members"] == ["U1", "U2"] and first["response_metadata"]["next_cursor"]
    rest = client.conversations_members(channel="C0PAGED", limit=2, cursor=first["response_metadata"]["next_cursor"])
    assert rest["members"] == ["U3", "UBOT"] and rest["response_metadata"]["next_cursor"] == ""
    slack.set_channel("C0GONE", deleted=True)
    slack.set_channel("G0NOTIN", private=True, member=False)
    for channel in ("C0GONE", "G0NOTIN", "XNOTACHANNEL"):
        try:
            client.conversations_members(channel=channel)
        except SlackApiError as exc:
            assert exc.response["error"] == "channel_not_found", channel
        else:
            raise AssertionError(f"{channel} answered")
