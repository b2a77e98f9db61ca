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
    assert good.chat_postMessage(channel="C1", text="x")["ts"] == slack.channel_messages("C1")[-1]["ts"]
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


def _error(call) -> str:  # noqa: ANN001
    try:
        call()
    except SlackApiError as exc:
        return exc.response["error"]
    raise AssertionError("Slack accepted what it refuses")


def test_block_kit_and_text_limits_are_refused(slack) -> None:  # noqa: ANN001
    c = WebClient(token=BOT_TOKEN, base_url=slack.api_url)

    def section(text: str) -> dict:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    def button(text: str) -> dict:
        return {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": "a"}

    too_much = {
        "51 blocks": [section("x")] * 51,
        "a 3,001-char section": [section("x" * 3001)],
        "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        "a 2,001-char field": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        "a 151-char header": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        "a 76-char button": [{"type": "actions", "elements": [button("b" * 76)]}],
        "a 76-char accessory button": [{**section("x"), "accessory": button("b" * 76)}],
    }
    for what, blocks in too_much.items():
        assert _error(lambda b=blocks: c.chat_postMessage(channel="C1", text="t", blocks=b)) == "invalid_blocks", what
        assert _error(lambda b=blocks: c.chat_update(channel="C1", ts="1.0", text="t", blocks=b)) == "invalid_blocks", what
    at_limits = [section("x" * 3000), {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10}, {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}]
    at_limits += [{"type": "actions", "elements": [button("b" * 75)]}] + [section("x")] * 46
    assert c.chat_postMessage(channel="C1", text="t" * 40_000, blocks=at_limits)["ok"]
    assert _error(lambda: c.chat_postMessage(channel="C1", text="t" * 40_001)) == "msg_too_long"
    assert [m["text"] for m in slack.channel_messages("C1")] == ["t" * 40_000]
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": [section("x")]}
    assert _error(lambda: c.views_open(trigger_id="1.2", view=modal)) == "invalid_blocks"
    assert _error(lambda: c.views_push(trigger_id="1.2", view=modal)) == "invalid_blocks"
    assert _error(lambda: c.views_update(view_id="V1", view=modal)) == "invalid_blocks"
    assert _error(lambda: c.views_publish(user_id="U1", view={"type": "home", "blocks": [section("x")] * 101})) == "invalid_blocks"
    assert c.views_open(trigger_id="1.2", view={**modal, "title": {"type": "plain_text", "text": "t" * 24}})["ok"]


def test_channels_archived_deleted_or_without_the_bot(slack) -> None:  # noqa: ANN001
    c = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    # A public channel the bot is not in: postable (chat:write.public), not readable, no files.
    slack.set_channel("C0PUB", member=False)
    ts = c.chat_postMessage(channel="C0PUB", text="hi")["ts"]
    assert _error(lambda: c.conversations_history(channel="C0PUB")) == "not_in_channel"
    assert _error(lambda: c.conversations_replies(channel="C0PUB", ts=ts)) == "not_in_channel"
    assert _error(lambda: c.files_upload_v2(channel="C0PUB", content=b"png", filename="x.png")) == "not_in_channel"
    # A private channel the bot was removed from is invisible.
    slack.set_channel("G0PRIV", member=False)
    assert _error(lambda: c.chat_postMessage(channel="G0PRIV", text="hi")) == "channel_not_found"
    slack.set_channel("C0ARCH", archived=True)
    assert _error(lambda: c.chat_postMessage(channel="C0ARCH", text="hi")) == "is_archived"
    assert _error(lambda: c.files_upload_v2(channel="C0ARCH", content=b"png", filename="x.png")) == "is_archived"
    assert c.conversations_info(channel="C0ARCH")["channel"]["is_archived"] is True
    slack.set_channel("C0GONE", deleted=True)
    assert _error(lambda: c.chat_postMessage(channel="C0GONE", text="hi")) == "channel_not_found"
    assert _error(lambda: c.conversations_history(channel="C0GONE")) == "channel_not_found"
    assert _error(lambda: c.chat_postMessage(channel="#general", text="hi")) == "channel_not_found"
    assert [m["text"] for m in slack.channel_messages("C0PUB")] == ["hi"]
    slack.refuse_token("token_revoked")
    assert _error(lambda: c.auth_test()) == "token_revoked"
    slack.refuse_token(None)
    assert c.auth_test()["user_id"] == "UBOT"


def test_history_pages_by_cursor_and_is_bounded_by_oldest(slack) -> None:  # noqa: ANN001
    c = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
    stamps = [slack.post_as_user("C0BUSY", f"m{i}") for i in range(250)]
    first = c.conversations_history(channel="C0BUSY", limit=100)
    assert [m["text"] for m in first["messages"]] == [f"m{i}" for i in range(249, 149, -1)] and first["has_more"]
    seen = [m["text"] for page in c.conversations_history(channel="C0BUSY", limit=100) for m in page["messages"]]
    assert seen == [f"m{i}" for i in range(249, -1, -1)]
    recent = c.conversations_history(channel="C0BUSY", oldest=stamps[239], limit=100)
    assert [m["text"] for m in recent["messages"]] == [f"m{i}" for i in range(249, 239, -1)] and not recent["has_more"]
