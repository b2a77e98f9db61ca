"""The Slack stand-in's rate limits, seen through the real slack_sdk WebClient: what Slack answers over
a limit (HTTP 429, Retry-After, "ratelimited"), per channel for posts, per method for the tiers, once
a minute for history reads outside the Marketplace. A fake clock: no test waits for a limit to pass."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_client import make_web_client
from bot.slack_standin.limits import RateLimits
from tests.conftest import BOT_TOKEN


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(slack):  # noqa: ANN001, ANN201
    c = Clock()
    slack.enforce_limits(RateLimits(clock=c))
    return c


def _client(slack) -> WebClient:  # noqa: ANN001
    # What the outbox sender uses: a 429 comes back at once instead of being slept on.
    return make_web_client(BOT_TOKEN, slack.api_url, retry_unsure=False, retry_rate_limited=False)


def _refused(call) -> SlackApiError:  # noqa: ANN001
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value


def test_limits_are_off_unless_enforced(slack) -> None:  # noqa: ANN001
    client = _client(slack)
    for i in range(10):
        client.chat_postMessage(channel="C1", text=f"m{i}")
    for _ in range(3):
        client.conversations_history(channel="C1")
    assert slack.rate_limited() == 0


def test_posting_is_about_one_message_a_second_per_channel_after_a_short_burst(slack, clock) -> None:  # noqa: ANN001
    client = _client(slack)
    for i in range(3):  # the burst
        client.chat_postMessage(channel="C1", text=f"m{i}")
    exc = _refused(lambda: client.chat_postMessage(channel="C1", text="one too many"))
    assert exc.response.status_code == 429
    assert exc.response.headers.get("Retry-After") == "1"
    assert exc.response.data == {"ok": False, "error": "ratelimited"}
    assert [m["text"] for m in slack.channel_messages("C1")] == ["m0", "m1", "m2"]  # the refused post did nothing
    client.chat_postMessage(channel="C2", text="another channel is not held back")
    clock.t += 1.0
    client.chat_postMessage(channel="C1", text="a second later")
    _refused(lambda: client.chat_postMessage(channel="C1", text="x", thread_ts="1.000001"))  # thread replies count too
    assert slack.rate_limited("chat.postMessage") == 2


def test_chat_update_is_tier_3_per_method(slack, clock) -> None:  # noqa: ANN001
    client = _client(slack)
    ts = [client.chat_postMessage(channel=f"C{i}", text="card")["ts"] for i in range(3)]
    for i in range(50):
        client.chat_update(channel="C0", ts=ts[0], text=f"v{i}")
    exc = _refused(lambda: client.chat_update(channel="C1", ts=ts[1], text="other channel, same method"))
    assert exc.response.status_code == 429 and exc.response.headers.get("Retry-After") == "2"  # 60/50 s, rounded up
    client.chat_postMessage(channel="C2", text="posting is not held back by chat.update")
    clock.t += 1.2
    client.chat_update(channel="C1", ts=ts[1], text="later")


def test_history_reads_are_once_a_minute_and_15_a_page_outside_the_marketplace(slack, clock) -> None:  # noqa: ANN001
    client = _client(slack)
    for i in range(20):
        slack.post_as_user("C1", f"m{i}")
    page = client.conversations_history(channel="C1", limit=200)
    assert len(page["messages"]) == 15 and page["has_more"]
    exc = _refused(lambda: client.conversations_history(channel="C1", cursor=page["response_metadata"]["next_cursor"]))
    assert exc.response.headers.get("Retry-After") == "60"
    thread = page["messages"][0]["ts"]
    assert client.conversations_replies(channel="C1", ts=thread)["ok"]  # a method of its own: its first call this minute
    _refused(lambda: client.conversations_replies(channel="C1", ts=thread))
    clock.t += 60
    assert client.conversations_replies(channel="C1", ts=thread)["ok"] and client.conversations_history(channel="C1")["ok"]


def test_the_default_client_waits_out_a_429_with_its_retry_handler(slack) -> None:  # noqa: ANN001
    # Everything but the outbox sender keeps slack_sdk's RateLimitErrorRetryHandler: a command's
    # answer waits Retry-After and goes out (the sender reschedules instead, test_rate_limits.py).
    slack.fail("chat.postMessage", 429, count=1, retry_after=1)
    client = make_web_client(BOT_TOKEN, slack.api_url)
    assert client.chat_postMessage(channel="C1", text="after the wait")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
