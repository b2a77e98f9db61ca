"""OpenAI and Together AI enabled at once, each on its sandbox through its own SDK, through Slack with
the real worker: a job on each with its own card, `/ft models` and `/ft list` showing both, one
provider answering 500s while the other keeps posting, and Together's cursorless events posted once
across a worker restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.provider.factory import make_one
from bot.worker.runner import Worker
from storage.models import Job
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, thread_lines
from tests.providers.conftest import CHANNEL

LABELS = {"openai": "OpenAI", "together": "Together AI"}


def _file(team, provider: str) -> str:  # noqa: ANN001
    return team.bot.services.providers[provider].upload_file(chat_jsonl(12), "train.jsonl").id


def _started(answer: dict[str, Any]) -> str:
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _card(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks")):
            return m
    return None


def _alert(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "succeeded" in (m.get("text") or "") and "Base model" not in json.dumps(m.get("blocks")):
            return m
    return None



def _row(team, job_id: str) -> Job:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        s.expunge_all()
        return row


def test_a_job_on_openai_and_one_on_together_each_in_its_own_card(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "together"], default="openai")
    openai_job = _started(team.ask(f"start {_file(team, 'openai')} epochs=2 batch=4"))
    together_job = _started(team.ask(f"start {_file(team, 'together')} epochs=2 batch=4 provider=together"))
    assert openai_job in kits["openai"].jobs() and together_job in kits["together"].jobs()
    assert (_row(team, openai_job).provider, _row(team, together_job).provider) == ("openai", "together")

    wait_for(lambda: _alert(slack, openai_job) and _alert(slack, together_job), timeout=30)
    models = {"openai": kits["openai"].model_of(openai_job), "together": kits["together"].model_of(together_job)}
    for job_id, name in ((openai_job, "openai"), (together_job, "together")):
        blocks = json.dumps(wait_for(lambda job_id=job_id, name=name: (c := _card(slack, job_id)) and models[name] in json.dumps(c["blocks"]) and c)["blocks"])
        other = "together" if name == "openai" else "openai"
        assert f"\\u00b7 {LABELS[name]}" in blocks and "step 6/6" in blocks and models[other] not in blocks, blocks
        assert LABELS[name] in json.dumps(_alert(slack, job_id)["blocks"])

    listed = json.dumps(team.ask("models"))
    for job_id, name in ((openai_job, "openai"), (together_job, "together")):
        assert models[name] in listed and job_id in listed
    assert "\\u00b7 Together AI" in listed and "\\u00b7 OpenAI" in listed
    listing = json.dumps(team.ask("list"))
    assert openai_job in listing and together_job in listing and "\\u00b7 Together AI" in listing
    status = team.ask(f"status {together_job}")
    assert together_job in status["text"] and "Together AI" in json.dumps(status["blocks"])
    # Each model is tried at the provider that has it (Together's, a LoRA adapter on a base it serves
    # serverless, answers with no endpoint); `endpoint=` is refused at OpenAI as a Together option.
    assert "You asked: hi" in json.dumps(team.ask(f"try {models['together']} hi"))
    assert "`endpoint=` is a Together AI option" in team.ask(f"try {models['openai']} endpoint=x hi")["text"]
    assert "`endpoint=` is a Together AI option" in team.ask(f"eval {models['openai']} endpoint=x n=2")["text"]
    assert "You asked: hi" in json.dumps(team.ask(f"try {models['openai']} hi"))
    asked = team.ask(f"delete-model {models['together']}")
    assert "request #" in asked["text"], asked
    assert team.last_request().provider == "together"


@pytest.mark.parametrize("failing", ["openai", "together"])
def test_one_provider_answering_500s_while_the_other_keeps_posting(failing: str, sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    healthy = "together" if failing == "openai" else "openai"
    team = launch(sqlite_url, ["openai", "together"], default=healthy)
    kits[failing].slow(step_seconds=1.0)  # still running when its errors start
    kits[healthy].slow(step_seconds=0.3)
    stuck = _started(team.ask(f"start {_file(team, failing)} epochs=2 batch=4 provider={failing}"))
    wait_for(lambda: _card(slack, stuck))
    kits[failing].fail(1.0, ("500",))  # every request to it now answers 500
    moving = _started(team.ask(f"start {_file(team, healthy)} epochs=2 batch=4"))

    wait_for(lambda: _alert(slack, moving), timeout=30)
    assert "step 6/6" in json.dumps(_card(slack, moving)["blocks"])
    row = wait_for(lambda: (r := _row(team, stuck)).poll_failures and r)
    assert not row.is_final and "server error" in (row.last_poll_error or ""), row.last_poll_error
    assert _alert(slack, stuck) is None

    kits[failing].heal()
    wait_for(lambda: _alert(slack, stuck), timeout=30)
    assert _row(team, stuck).poll_failures == 0


def test_together_events_posted_once_across_a_worker_restart(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["together"]
    kit.slow(step_seconds=0.15, queued_seconds=0.2)
    team = launch(db_url, ["openai", "together"], default="together")
    services = team.bot.services
    job_id = _started(team.ask(f"start {_file(team, 'together')} epochs=2 batch=2"))  # 12 steps
    card = wait_for(lambda: _card(slack, job_id))
    # Half-way: some events already in the thread, training under way.
    wait_for(lambda: kit.status_of(job_id) == "running" and len(thread_lines(slack, CHANNEL, card["ts"])) >= 3, timeout=15)
    services.extras.pop("worker").stop()
    before = thread_lines(slack, CHANNEL, card["ts"])
    assert kit.status_of(job_id) == "running", "the job ended before the restart: slow the sandbox down"

    # A new worker with a new adapter: all it knows is what the database says was posted.
    services.providers["together"], _ = make_one("together", services.settings, max_retries=0, timeout=5)
    services.extras["worker"] = Worker(services, lease_seconds=5, send_interval=0.05, team_id="T0001").start()
    wait_for(lambda: _alert(slack, job_id), timeout=30)
    expected = [e.message for e in services.providers["together"].new_events(job_id, None) if e.type != "metrics"]
    lines = wait_for(lambda: (ln := thread_lines(slack, CHANNEL, card["ts"])) and len(ln) >= len(expected) and ln, timeout=10)
    assert lines == expected  # every Together event once, oldest first, none lost at the restart
    assert lines[: len(before)] == before and len(before) < len(lines)
    assert "step 12/12" in json.dumps(_card(slack, job_id)["blocks"])


def test_jobs_started_outside_slack_are_found_at_each_provider(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    """FTBOT_NOTIFY_CHANNEL: each provider's own discovery finds its jobs, and their rows say where they are."""
    from bot.provider import JobSpec

    team = launch(sqlite_url, ["openai", "together"], default="openai", notify_channel=CHANNEL)
    providers = team.bot.services.providers
    outside = {
        "together": providers["together"].create_job(JobSpec(model="meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", training_file=_file(team, "together"))).id,
        "openai": providers["openai"].create_job(JobSpec(model="gpt-4o-mini-2024-07-18", training_file=_file(team, "openai"))).id,
    }
    for name, job_id in outside.items():
        wait_for(lambda job_id=job_id: _card(slack, job_id), timeout=20)
        assert _row(team, job_id).provider == name
    # Started from Slack at Together: one row and one card, whichever of start and discovery stores it first.
    slack_job = _started(team.ask(f"start {_file(team, 'together')} provider=together"))
    wait_for(lambda: _alert(slack, slack_job), timeout=30)
    with team.bot.services.db.session() as s:
        rows = s.scalars(select(Job).where(Job.provider_job_id == slack_job)).all()
        assert [(r.provider, r.started_by) for r in rows] == [("together", "U0001")]
    cards = [m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and slack_job in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks"))]
    assert len(cards) == 1


def test_the_start_form_with_together_enabled(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"], default="openai", worker=False)
    assert team.bot.slack.command("start", trigger_id="1.2").status == 200
    form = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    blocks = {b["block_id"]: b for b in form["blocks"]}
    assert blocks["model"]["optional"] and "initial_option" not in blocks["model"]["element"]  # the provider's default
    offered = [o["value"] for o in blocks["model"]["element"]["options"]]
    assert "gpt-4o-mini-2024-07-18" in offered and "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" in offered
    assert [o["value"] for o in blocks["training"]["element"]["options"]] == ["lora", "full"] and "lora_r" in blocks
    assert "Together AI: the rate itself" in blocks["lr"]["hint"]["text"]

    def submit(view_id: str, **fields: str) -> str:
        values: dict[str, Any] = {}
        for k, v in fields.items():
            kind = "static_select" if k in {"file", "provider", "training", "model"} else "number_input"
            values[k] = {"value": {"type": kind, "selected_option": {"value": v}} if kind == "static_select" else {"type": kind, "value": v}}
        before = len(slack.calls("chat.postEphemeral"))
        reply = team.bot.slack.view_submission("start_job", values, private_metadata=json.dumps({"channel": CHANNEL}), view_id=view_id)
        assert reply.status == 200 and not reply.body.strip(), reply.text
        return wait_for(lambda: slack.calls("chat.postEphemeral")[before:])[0].args["text"]

    at_together = submit("V1", file=_file(team, "together"), provider="together", training="full", lr="0.0001", epochs="1")
    job = kits["together"].jobs()[_started({"text": at_together})]
    assert job["model"] == "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" and job["training_type"] == {"type": "Full"} and job["learning_rate"] == 1e-4
    at_openai = submit("V2", file=_file(team, "openai"), provider="openai", lr="2", epochs="1")
    job = kits["openai"].jobs()[_started({"text": at_openai})]
    assert job["model"] == "gpt-4o-mini-2024-07-18" and job["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 2
    # A Together option sent to OpenAI: refused after the form closed, told in the channel, nothing made.
    refused = submit("V3", file=_file(team, "openai"), provider="openai", lora_r="8")
    assert "`lora_r` is a Together AI option" in refused and len(kits["openai"].jobs()) == 1
