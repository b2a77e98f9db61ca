"""`/ft help` over signed HTTP; request signing enforced; /healthz."""

from __future__ import annotations

import json
import time
import urllib.request
from urllib.parse import urlencode

from tests.conftest import wait_for


def test_help_answers_with_usage(start_bot, slack, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    for text in ("help", "", "HELP"):
        slack.reset()
        reply = bot.slack.command(text)
        assert reply.status == 200
        answer = wait_for(slack.responses)[0]
        assert answer["response_type"] == "ephemeral"
        body = json.dumps(answer["blocks"])
        for verb in ("/ft start FILE", "/ft status JOB_ID", "/ft cancel JOB_ID", "/ft try MODEL [endpoint=NAME] PROMPT", "/ft upload", "/ft delete-model MODEL", "/ft audit"):
            assert verb in body
        # nothing Slack would read as a link or mention
        assert "<" not in body and ">" not in body


def test_help_lists_a_verb_only_while_its_handler_is_registered(start_bot, slack, sqlite_url, monkeypatch) -> None:  # noqa: ANN001
    from bot.listeners.commands import registry

    monkeypatch.delitem(registry.HANDLERS, "audit")
    bot = start_bot(sqlite_url)
    bot.slack.command("help")
    assert "/ft audit" not in json.dumps(wait_for(slack.responses)[0]["blocks"])
    bot.slack.command("audit")
    assert wait_for(lambda: [r for r in slack.responses() if "`/ft audit` is not available yet" in r.get("text", "")])
    answered = []
    monkeypatch.setitem(registry.HANDLERS, "audit", lambda cmd, respond, **_: answered.append(respond(text="audit log")))
    slack.reset()
    bot.slack.command("help")
    assert "/ft audit [N]" in json.dumps(wait_for(slack.responses)[0]["blocks"])
    bot.slack.command("audit")
    wait_for(lambda: [r for r in slack.responses() if r.get("text") == "audit log"])


def test_unknown_verb_says_so(start_bot, slack, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    bot.slack.command("frobnicate <!channel>")
    answer = wait_for(slack.responses)[0]
    assert "I don't know `frobnicate`" in answer["text"] and answer["response_type"] == "ephemeral"


def test_bad_or_stale_signature_gets_401(start_bot, slack, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    body = urlencode(bot.slack.command_form("help")).encode()
    ctype = "application/x-www-form-urlencoded"
    assert bot.slack.post(body, ctype).status == 200
    assert bot.slack.post(body, ctype, signature="v0=" + "0" * 64).status == 401
    assert bot.slack.post(body, ctype, timestamp=int(time.time()) - 600).status == 401  # replayed
    assert bot.slack.post(body, ctype, signature="").status == 401
    forged = bot.slack.__class__(bot.slack.events_url, "another-secret")
    assert forged.command("help").status == 401
    # only the one good request reached the handler: a marker command sent last is answered after
    # anything the refused requests could have caused
    bot.slack.command("frobnicate")
    wait_for(lambda: any("frobnicate" in r.get("text", "") for r in slack.responses()))
    assert len(slack.responses()) == 2


def test_healthz(start_bot, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    with urllib.request.urlopen(f"{bot.url}/healthz") as r:
        assert r.status == 200 and json.loads(r.read()) == {"ok": True, "delivery": {"sending": "ok", "paused_reason": None, "paused_since": None, "given_up": 0, "waiting": 0}, "polling": {"failing": 0, "jobs": []}}
