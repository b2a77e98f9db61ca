"""The bot token goes only to Slack, end to end: files shared with the bot over signed events, whose
file objects (from the Slack stand-in) name addresses that are not Slack's, redirect elsewhere, point at
a local file, link to Google Drive, or trickle forever."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.datasets import intake
from bot.datasets.download import token_origins
from tests.conftest import BOT_TOKEN, wait_for
from tests.listeners.test_dataset_intake import chat_lines, datasets, posts, sandbox_files


class NotSlack:
    """A local web server that is not Slack: it records every request's headers and serves `body`."""

    def __init__(self, body: bytes) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def not_slack() -> Iterator[NotSlack]:
    server = NotSlack(chat_lines(12, "cdn"))
    yield server
    server.close()


@pytest.fixture
def bot(start_bot, sqlite_url):  # noqa: ANN001
    return start_bot(sqlite_url)


def share(bot, file_id: str, channel: str) -> None:  # noqa: ANN001
    assert bot.slack.event({"type": "file_shared", "file_id": file_id, "user_id": "U0001", "channel_id": channel}).status == 200


def everything_said(slack) -> str:  # noqa: ANN001
    return json.dumps([c.args for c in slack.calls() if c.method in {"chat.postMessage", "chat.postEphemeral"}])


def test_a_file_naming_another_server_never_sends_it_the_token(bot, slack, sandbox, not_slack) -> None:  # noqa: ANN001
    f = slack.add_user_file("elsewhere.jsonl", chat_lines(12), url=f"{not_slack.url}/files-pri/x/elsewhere.jsonl")
    share(bot, f["id"], "C0101")
    answer = wait_for(lambda: posts(slack, "C0101"))[0]
    assert "outside its file hosts" in answer["text"] and "127.0.0.1" in answer["text"]
    assert not_slack.seen == []  # not even asked, so it never saw the token
    assert sandbox_files(sandbox) == [] and datasets(bot) == []


def test_a_redirect_to_another_server_does_not_carry_the_token(bot, slack, sandbox, not_slack) -> None:  # noqa: ANN001
    f = slack.add_user_file("cdn.jsonl", b"unused: the stand-in redirects")
    slack.redirect_download(f["id"], f"{not_slack.url}/cdn/cdn.jsonl?sig=abc")
    share(bot, f["id"], "C0102")
    report = wait_for(lambda: posts(slack, "C0102"))[0]
    # Slack's own host had the token (it redirected only because it was authorised) ...
    assert [c.args["with_token"] for c in slack.calls("download")] == [True]
    # ... the other server was asked, without it, and its bytes are what got checked and uploaded.
    [request] = not_slack.seen
    assert request["path"] == "/cdn/cdn.jsonl?sig=abc" and "authorization" not in request
    assert BOT_TOKEN not in json.dumps(not_slack.seen)
    assert "cdn.jsonl" in report["text"] and "clean" in report["text"]
    [uploaded] = sandbox_files(sandbox)
    assert uploaded["content"] == chat_lines(12, "cdn")


def test_a_redirect_back_to_slack_keeps_the_token_there(bot, slack, sandbox) -> None:  # noqa: ANN001
    f = slack.add_user_file("moved.jsonl", b"unused")
    g = slack.add_user_file("moved-real.jsonl", chat_lines(12, "moved"))
    slack.redirect_download(f["id"], f"/files-pri/{g['id']}/moved-real.jsonl")  # relative, same origin
    share(bot, f["id"], "C0103")
    report = wait_for(lambda: posts(slack, "C0103"))[0]
    assert "clean" in report["text"]
    assert [c.args["with_token"] for c in slack.calls("download")] == [True, True]


def test_a_local_file_url_is_refused(bot, slack, sandbox) -> None:  # noqa: ANN001
    f = slack.add_user_file("passwd.jsonl", b"", url="file:///etc/passwd")
    share(bot, f["id"], "C0104")
    answer = wait_for(lambda: posts(slack, "C0104"))[0]
    assert "outside its file hosts" in answer["text"]
    assert "root:" not in everything_said(slack)
    assert sandbox_files(sandbox) == [] and datasets(bot) == []


def test_a_file_kept_in_google_drive_gets_a_clear_answer(bot, slack, sandbox) -> None:  # noqa: ANN001
    f = slack.add_user_file("drive.jsonl", b"", external_type="gdrive")
    share(bot, f["id"], "C0105")
    answer = wait_for(lambda: posts(slack, "C0105"))[0]
    assert "drive.jsonl" in answer["text"] and "Google Drive" in answer["text"] and "share the `.jsonl` file itself" in answer["text"]
    assert slack.calls("download") == [] and sandbox_files(sandbox) == []


def test_the_whole_download_has_a_deadline(bot, slack, sandbox, monkeypatch) -> None:  # noqa: ANN001
    # Each byte arrives well within any per-read timeout; only a deadline on the whole transfer ends it.
    monkeypatch.setattr(intake, "LIMITS", intake.Limits(deadline=1.0))
    slack.trickle_downloads(0.2)
    f = slack.add_user_file("slow.jsonl", chat_lines(12, "slow"))
    share(bot, f["id"], "C0106")
    answer = wait_for(lambda: posts(slack, "C0106"), timeout=15)[0]
    assert "did not finish within 1 s" in answer["text"]
    assert sandbox_files(sandbox) == [] and datasets(bot) == []
    # Nothing was claimed for good: once Slack is fast again, sharing it again works.
    slack.trickle_downloads(None)
    share(bot, f["id"], "C0106")
    wait_for(lambda: posts(slack, "C0106")[1:])
    assert len(sandbox_files(sandbox)) == 1


def test_where_the_token_may_go() -> None:
    assert token_origins("https://slack.com/api/") == {("https", "files.slack.com", 443)}
    assert token_origins("https://slack-gov.com/api/") == {("https", "files.slack.com", 443), ("https", "files.slack-gov.com", 443)}
    # A stand-in (or relay) as SLACK_API_URL: its exact origin, not its host on other ports or schemes.
    assert token_origins("http://127.0.0.1:8123/api/") == {("https", "files.slack.com", 443), ("http", "127.0.0.1", 8123)}
