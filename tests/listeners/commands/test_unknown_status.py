"""A status ftbot does not know is text: the card shows it, polling goes on, the job ends normally.
`pausing` and `paused` (OpenAI's reference lists both; its schema and the openai package neither)
are resumable. The sandbox reports the status (its control route over HTTP), the real openai client
reads it, the worker polls and posts to the Slack stand-in, commands arrive as signed requests."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import wait_for

ODD = "waiting_for_capacity"


def _hold(sandbox, job_id: str, status: str | None) -> dict:  # noqa: ANN001
    body = json.dumps({"status": status}).encode() if status else None
    req = urllib.request.Request(
        f"{sandbox.base}/_sandbox/jobs/{job_id}/status", data=body, method="POST" if status else "DELETE", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def _card(slack) -> dict:  # noqa: ANN001
    return wait_for(lambda: slack.channel_messages("C0001"))[0]


def _gets(sandbox) -> int:  # noqa: ANN001
    return sandbox.state.requests.get("get_job", 0) + sandbox.state.requests.get("list_jobs", 0)


def test_an_unknown_status_is_shown_as_text_polling_goes_on_and_the_job_ends(make_chat, sandbox, slack, sqlite_url) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 3600  # held in validation until the status is set
    chat = make_chat(sqlite_url, worker=True)
    job_id = chat.start(extra="epochs=2 batch=4")
    assert _hold(sandbox, job_id, ODD)["status"] == ODD
    sandbox.state.timing.validating_seconds = 0.05
    card = wait_for(lambda: ODD.replace("_", " ") in _card(slack)["text"] and _card(slack), timeout=20)
    assert f"Fine-tuning {job_id}: waiting for capacity" == card["text"]
    assert ":grey_question: waiting for capacity" in json.dumps(card["blocks"])
    assert "job_cancel" in json.dumps(card["blocks"]) and "job_resume" not in json.dumps(card["blocks"])
    # The verbs answer in words, nothing crashes; the poller keeps asking.
    assert "waiting for capacity" in json.dumps(chat.ask(f"status {job_id}"))
    assert "is waiting for capacity: only a paused job can be resumed" in chat.ask(f"resume {job_id}")["text"]
    seen = _gets(sandbox)
    wait_for(lambda: _gets(sandbox) >= seen + 3, timeout=20)
    # Let go: the job goes on from where it stood and ends as any job does, with its alert.
    _hold(sandbox, job_id, None)
    alert = wait_for(lambda: [m for m in slack.channel_messages("C0001")[1:] if not m.get("thread_ts") and "succeeded" in m.get("text", "")], timeout=30)
    assert len(alert) == 1 and job_id in alert[0]["text"]
    wait_for(lambda: "succeeded" in _card(slack)["text"])
    assert sandbox.state.get_job(job_id)["trained_tokens"]


@pytest.mark.parametrize("status", ["paused", "pausing"])
def test_resume_works_on_a_paused_job_however_it_reads(make_chat, sandbox, slack, sqlite_url, status: str) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 3600
    chat = make_chat(sqlite_url, worker=True)
    job_id = chat.start(extra="epochs=2 batch=4")
    _hold(sandbox, job_id, status)
    sandbox.state.timing.validating_seconds = 0.05
    card = wait_for(lambda: status in _card(slack)["text"] and _card(slack), timeout=20)
    assert "job_resume" in json.dumps(card["blocks"])  # the card offers it
    assert "Resuming" in chat.ask(f"resume {job_id}")["text"]
    assert sandbox.state.get_job(job_id)["status"] not in {"paused", "pausing"}
    wait_for(lambda: "succeeded" in _card(slack)["text"], timeout=30)


def test_the_card_button_resumes_a_pausing_job(make_chat, sandbox, slack, sqlite_url) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 3600
    chat = make_chat(sqlite_url)
    job_id = chat.start(extra="epochs=2 batch=4")
    _hold(sandbox, job_id, "pausing")
    n = len(slack.responses())
    assert chat.click("job_resume", job_id).status == 200
    assert "Resuming" in wait_for(lambda: slack.responses()[n:])[0]["text"]
    assert sandbox.state.get_job(job_id)["status"] not in {"paused", "pausing"}
