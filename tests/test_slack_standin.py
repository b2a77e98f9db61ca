"""The Slack stand-in behaves like Slack where ftbot depends on it."""

from __future__ import annotations

import urllib.request

import pytest
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


def test_views_open_checks_file_inputs(slack) -> None:  # noqa: ANN001
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=slack.state.bot_token, base_url=slack.api_url)

    def view(element: dict, block_type: str = "input") -> dict:
        block = {"type": block_type, "block_id": "f", "label": {"type": "plain_text", "text": "File"}, "element": element}
        return {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": [block]}

    ok = {"type": "file_input", "action_id": "file", "filetypes": ["jsonl"], "max_files": 1}
    assert client.views_open(trigger_id="1.2", view=view(ok))["ok"]
    for bad in ({**ok, "max_files": 11}, {**ok, "filetypes": "jsonl"}, {"type": "file_input"}):
        with pytest.raises(SlackApiError):
            client.views_open(trigger_id="1.2", view=view(bad))
    with pytest.raises(SlackApiError):
        client.views_open(trigger_id="1.2", view=view(ok, block_type="section"))
