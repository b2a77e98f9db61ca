"""The Slack stand-in behaves like Slack where ftbot depends on it."""

from __future__ import annotations

import urllib.request

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.conftest import BOT_TOKEN


def test_file_download_needs_the_bot_token(slack) -> None:  # noqa: ANN001
    meta = slack.add_user_file("train.jsonl", b'{"messages": []}\n')
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    info = client.files_info(file=meta["id"])["file"]
    req = urllib.request.Request(info["url_private_download"], headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    with urllib.request.urlopen(req) as r:
        assert r.read() == b'{"messages": []}\n'
    with urllib.request.urlopen(info["url_private_download"]) as r:  # no token: Slack's login page, status 200
        assert r.status == 200 and b"<html" in r.read()


def test_bad_token_and_injected_failures(slack) -> None:  # noqa: ANN001
    bad = WebClient(token="xoxb-wrong", base_url=slack.api_url)
    try:
        bad.chat_postMessage(channel="C1", text="x")
        raise AssertionError("expected invalid_auth")
    except SlackApiError as exc:
        assert exc.response["error"] == "invalid_auth"
    slack.fail("chat.postMessage", 503)
    good = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    try:
        good.chat_postMessage(channel="C1", text="x")
        raise AssertionError("expected a 503")
    except SlackApiError as exc:
        assert exc.response.status_code == 503
    assert good.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [200, 503, 200]
