"""One contract, every provider: the whole life of a dataset, two jobs and a model through Slack, each
provider on its own sandbox through its real SDK (over HTTP), with the real worker polling.

Parametrised over CONTRACT_PROVIDERS: a provider joins the suite by adding its Kit (conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import Dataset, Job
from tests.conftest import wait_for
from tests.listeners.test_dataset_intake import chat_lines
from tests.providers.conftest import CHANNEL, CONTRACT_PROVIDERS

APPROVERS = ("U0002", "U0003")


def _file_values(fid: str, name: str) -> dict[str, Any]:
    return {
        "file": {"file": {"type": "file_input", "files": [{"id": fid, "name": name}]}},
        "model": {"model": {"type": "static_select", "selected_option": {"value": "gpt-4o-mini-2024-07-18"}}},
    }


def _posts(slack, channel: str = CHANNEL) -> list[dict[str, Any]]:  # noqa: ANN001
    return [c.args for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]


def _card(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    """The job's card as the channel shows it now (edits applied)."""
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Fine-tuning" in m.get("text", "") and m.get("blocks") and "Base model" in json.dumps(m["blocks"]):
            return m
    return None


def _thread(slack, card_ts: str) -> str:  # noqa: ANN001
    return "\n".join(m.get("text") or "" for m in slack.channel_messages(CHANNEL) if m.get("thread_ts") == card_ts and m.get("ts") != card_ts)


def _alert(slack, job_id: str, word: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and word in (m.get("text") or "") and "Base model" not in json.dumps(m.get("blocks")):
            return m
    return None


@pytest.mark.parametrize("provider", CONTRACT_PROVIDERS)
def test_contract_dataset_jobs_alerts_models_and_approvals(provider: str, db_url: str, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits[provider]
    team = launch(db_url, [provider], approvers=APPROVERS, approvals_required=2)
    services = team.bot.services
    assert list(services.providers) == [provider] and services.provider.name == provider

    # ---- upload a dataset: the form, the check, the provider's file, our row -------------------
    reply = team.bot.slack.command("upload", trigger_id="123.456")
    assert reply.status == 200
    opened = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    content = chat_lines(12)
    f = slack.add_user_file("support.jsonl", content)
    team.bot.slack.view_submission("upload_dataset", _file_values(f["id"], "support.jsonl"), private_metadata=opened["private_metadata"])
    report = wait_for(lambda: _posts(slack))[0]
    assert "support.jsonl" in report["text"] and "clean" in report["text"], report["text"]
    [uploaded] = kit.files()
    assert uploaded["filename"] == "support.jsonl"
    with services.db.session() as s:
        [row] = s.scalars(select(Dataset)).all()
        assert (row.provider, row.provider_file_id) == (provider, uploaded["id"])

    # ---- start by name; watch events and metrics reach the card; it ends with an alert and a chart
    started = team.ask("start support epochs=2 batch=4 suffix=ct")
    assert "Started" in started["text"], started
    job_id = started["text"].split("`")[1]
    assert kit.training_file_of(job_id) == uploaded["id"]
    with services.db.session() as s:
        assert s.scalar(select(Job.provider).where(Job.provider_job_id == job_id)) == provider

    alert = wait_for(lambda: _alert(slack, job_id, "succeeded"), timeout=20)
    card = _card(slack, job_id)
    blocks = json.dumps(card["blocks"])
    assert "step 6/6" in blocks and "100%" in blocks, blocks  # progress from the metrics
    assert "\\u00b7 OpenAI" not in blocks and "\\u00b7 Azure OpenAI" not in blocks  # one provider: no labels
    assert "*Train loss*\\n\\u2014" not in blocks and "*Train loss*\\n-" not in blocks  # a number, not a dash
    model = kit.model_of(job_id)
    assert model and model in json.dumps(alert["blocks"])
    thread = wait_for(lambda: kit.done_event in _thread(slack, card["ts"]) and _thread(slack, card["ts"]))
    assert len(thread.splitlines()) >= 3 and "Step 1/6" not in thread  # events in the thread, metrics on the card
    chart = wait_for(lambda: [c.args for c in slack.calls("files.completeUploadExternal") if c.args.get("thread_ts") == card["ts"]])
    assert slack.uploaded_file(chart[0]["files"][0]["id"]).startswith(b"\x89PNG")

    # ---- a second job: pause answered per provider, then cancelled while it validates ----------
    # (queued_seconds is how long a cancel takes to be confirmed where it is not immediate)
    kit.slow(validating_seconds=30, queued_seconds=1.5)
    second = team.ask(f"start {uploaded['id']} epochs=1")
    assert "Started" in second["text"], second
    job2 = second["text"].split("`")[1]
    paused = team.ask(f"pause {job2[:12]}")
    assert kit.pause_refusal in paused["text"], paused  # one without pause says so plainly, whatever the status
    assert kit.status_of(job2) not in {"paused", "cancelled"}
    cancelled = team.ask(f"cancel {job2[:12]}")
    assert "Cancelling" in cancelled["text"], cancelled
    if kit.cancelling:
        # Asked, not yet stopped: the answer and the card say so, without a second Cancel button.
        assert f"it is now {kit.cancelling}" in cancelled["text"], cancelled
        assert kit.status_of(job2) == "cancel_requested"
        shown = wait_for(lambda: (c := _card(slack, job2)) and kit.cancelling in c["text"] and c)
        assert "job_cancel" not in json.dumps(shown["blocks"]) and "job_pause" not in json.dumps(shown["blocks"])
        assert "being cancelled already" in team.ask(f"cancel {job2[:12]}")["text"]
    else:
        assert kit.status_of(job2) == "cancelled"
    wait_for(lambda: _alert(slack, job2, "cancelled"), timeout=20)
    # The card's edit and the alert are queued apart (the card's own thread, the channel): either may land first.
    wait_for(lambda: "cancelled" in _card(slack, job2)["text"], timeout=20)

    # ---- `/ft models` lists the model; deleting it takes two approvals -------------------------
    listed = team.ask("models")
    assert model in json.dumps(listed) and job_id in json.dumps(listed)
    asked = team.ask(f"delete-model {model} replaced")
    assert "request #" in asked["text"], asked
    req = team.last_request()
    assert (req.kind, req.target, req.provider) == ("delete_model", model, provider)
    assert "counted (1 of 2)" in team.click_approve(req.id, "U0002")["text"]
    assert kit.has_model(model)
    team.click_approve(req.id, "U0003")
    wait_for(lambda: team.last_request().status == "done")
    assert not kit.has_model(model)
