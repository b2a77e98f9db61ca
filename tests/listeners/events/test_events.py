"""Events, delivered as Slack sends them: every type the manifest subscribes to is answered 200."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[3]

# One realistic delivery per event type the manifest can subscribe ftbot to.
SAMPLES = {
    "app_home_opened": {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"},
    "message.im": {"type": "message", "channel": "D0001", "channel_type": "im", "user": "U0001", "text": "hi", "ts": "1.1"},
    "file_shared": {"type": "file_shared", "file_id": "F0001", "user_id": "U0001", "file": {"id": "F0001"}, "channel_id": "D0001", "event_ts": "1.2"},
}


def _subscribed() -> list[str]:
    text = (ROOT / "manifest.yml").read_text()
    block = text.split("bot_events:", 1)[1].split("interactivity:", 1)[0]
    return re.findall(r"^\s+- ([a-z_.]+)\s*$", block, re.M)


def test_manifest_copies_agree_and_subscribe_to_known_events() -> None:
    assert (ROOT / "manifest.yml").read_text() == (ROOT / "bot" / "manifest.yml").read_text()
    assert set(_subscribed()) <= set(SAMPLES), _subscribed()


# What each sample makes the bot call (None: nothing, the event is only acknowledged). A shared file
# Slack cannot describe (F0001 does not exist) is answered as such: the dataset tests cover the rest.
EFFECT = {"app_home_opened": "views.publish", "message.im": "chat.postMessage", "file_shared": "chat.postMessage"}


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_subscribed_event_is_acknowledged(start_bot, slack, sqlite_url, event_type: str) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    assert bot.slack.event(SAMPLES[event_type]).status == 200
    if EFFECT[event_type]:
        wait_for(lambda: slack.calls(EFFECT[event_type]))


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "subtype": "message_changed", "channel": "D0001", "channel_type": "im", "message": {"text": "x"}, "ts": "1.4"},
        {"type": "message", "subtype": "message_deleted", "channel": "D0001", "channel_type": "im", "deleted_ts": "1.1", "ts": "1.5"},
        {"type": "message", "channel": "D0001", "channel_type": "im", "user": "UBOT", "bot_id": "B0001", "text": "my own help", "ts": "1.6"},
        {"type": "message", "subtype": "bot_message", "channel": "D0001", "channel_type": "im", "bot_id": "B0002", "text": "another bot", "ts": "1.7"},
    ],
    ids=["edited", "deleted", "own-post", "other-bot"],  # a file_share is a dataset: tests/datasets
)
def test_other_dm_events_are_acknowledged_without_an_answer(start_bot, slack, sqlite_url, event: dict) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    assert bot.slack.event(event).status == 200
    # a plain DM sent afterwards is answered; nothing was posted for the event before it
    assert bot.slack.event(SAMPLES["message.im"]).status == 200
    wait_for(lambda: slack.calls("chat.postMessage"))
    assert len(slack.calls("chat.postMessage")) == 1


def test_plain_dm_gets_a_short_help_answer(start_bot, slack, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    assert bot.slack.event({**SAMPLES["message.im"], "text": "how do I start a job <!channel>?"}).status == 200
    posted = wait_for(lambda: slack.channel_messages("D0001"))[0]
    assert "/ft help" in posted["text"] and "/ft help" in json.dumps(posted["blocks"])


def test_app_home_shows_the_teams_jobs(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    reply = chat.bot.slack.event({"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"})
    assert reply.status == 200
    published = wait_for(lambda: slack.calls("views.publish"))[0].args
    assert published["user_id"] == "U0001" and published["view"]["type"] == "home"
    assert job_id in json.dumps(published["view"])
    # the Messages tab has nothing to draw
    n = len(slack.calls("views.publish"))
    assert chat.bot.slack.event({"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "messages"}).status == 200
    assert chat.bot.slack.event({"type": "app_home_opened", "user": "U0002", "channel": "D0002", "tab": "home"}).status == 200
    second = wait_for(lambda: slack.calls("views.publish")[n:])
    assert [c.args["user_id"] for c in second] == ["U0002"]
