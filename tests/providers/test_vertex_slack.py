"""Gemini tuning on Vertex AI through Slack: signed `/ft` requests, the real google-genai and
google-cloud-storage clients on the Vertex sandbox (and its Cloud Storage emulator), the real worker
polling it; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from storage.models import Job
from tests.conftest import RunningBot, make_settings, wait_for
from tests.providers.conftest import CHANNEL, Team, run_team, stop_teams
from tests.vertex_sandbox import FLASH, _vertex_server, make_provider, openai_chat, vertex_sandbox  # noqa: F401  (fixtures)


@pytest.fixture
def vertex_team(sandbox, slack, vertex_sandbox) -> Iterator[Callable[..., Team]]:  # noqa: ANN001, F811
    """A bot with Vertex AI its only provider (FTBOT_VERTEX_* set, FTBOT_SANDBOX-style), on the test Vertex sandbox."""
    started: list[RunningBot] = []

    def _launch(db_url: str, *, worker: bool = True, **overrides: Any) -> Team:
        from dataclasses import replace

        settings = make_settings(
            db_url, sandbox, slack, openai_api_key=None, openai_base_url=None,
            vertex_project="ftbot-sandbox", vertex_location="us-central1", vertex_bucket=f"gs://{vertex_sandbox.bucket}/tests",
            **overrides,
        )
        settings = replace(settings, sandbox=True)  # FTBOT_SANDBOX: the sandbox stands in for Google credentials
        settings.check_providers()
        assert settings.enabled_providers == ("vertex",) and settings.provider_default == "vertex"
        provider = make_provider(vertex_sandbox, price_per_mtok=settings.vertex_price_per_mtok)
        return run_team(settings, {"vertex": provider}, slack, started, worker=worker)

    yield _launch
    stop_teams(started)


def _upload(team: Team, n: int = 12) -> str:
    return team.bot.services.providers["vertex"].upload_file(openai_chat(n), "train.jsonl").id


def _started(answer: dict) -> str:
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _card(slack, job_id: str) -> dict | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks")):
            return m
    return None


def _row(team: Team, job_id: str) -> Job | None:
    with team.bot.services.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        s.expunge_all()
        return row


def _alert(slack, job_id: str) -> dict | None:  # noqa: ANN001
    return next((m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and (m.get("metadata") or {}).get("event_payload", {}).get("key", "").endswith(":final") and job_id in m["text"]), None)


def _thread(slack, card: dict) -> list[dict]:  # noqa: ANN001
    return [m for m in slack.channel_messages(CHANNEL) if m.get("thread_ts") == card["ts"]]


def test_start_to_card_checkpoints_alert_and_evaluation_against_the_base(db_url, vertex_team, vertex_sandbox, slack) -> None:  # noqa: ANN001, F811
    world = vertex_sandbox.world
    world.timing.step_seconds = 0.3  # the card is seen running before the end
    team = vertex_team(db_url)
    fid = _upload(team)
    assert fid.startswith(f"gs://{vertex_sandbox.bucket}/tests/datasets/")

    job_id = _started(team.ask(f"start {fid} provider=vertex model={FLASH} epochs=3 adapter=4 lr=1.0 suffix=support-bot"))
    made = world.jobs[job_id]
    # The start options reached Vertex as its hyperparameters, the suffix as a label.
    assert (made.base_model, made.epochs, made.adapter_size, made.lr_multiplier) == (FLASH, 3, "ADAPTER_SIZE_FOUR", 1.0)
    assert made.labels["ftbot_suffix"] == "support-bot" and made.training_uri == fid
    row = _row(team, job_id)
    assert row.provider == "vertex" and row.hyperparameters == {"n_epochs": 3, "adapter_size": 4, "learning_rate_multiplier": 1.0}

    # Running: progress by step as Vertex counts it, and where the loss is instead of an empty field.
    running = wait_for(lambda: (c := _card(slack, job_id)) and "running" in c["text"] and "step " in json.dumps(c["blocks"]) and c, timeout=30)
    blocks = json.dumps(running["blocks"])
    assert "Vertex AI Experiments" in blocks and "Train loss" not in blocks and "job_pause" not in blocks

    card = wait_for(lambda: (c := _card(slack, job_id)) and "succeeded" in c["text"] and c, timeout=30)
    model = _row(team, job_id).fine_tuned_model
    assert model.startswith("projects/123456789012/locations/us-central1/models/")
    blocks = json.dumps(card["blocks"])
    steps = made.total_steps
    assert f"(step {steps}/{steps})" in blocks and "*Epochs*\\n3" in blocks and model in blocks
    tokens = made.billable_tokens * 3
    assert f"*Trained tokens*\\n{tokens:,}" in blocks

    # The final alert: what Vertex reported, the note instead of a loss chart, and no empty chart.
    alert = wait_for(lambda: _alert(slack, job_id), timeout=15)
    text = json.dumps(alert["blocks"])
    assert f"Reported: {steps}/{steps} steps, 3 epochs, {tokens:,} trained tokens" in text, text
    assert "No loss chart: Vertex AI publishes the loss and accuracy in the job's Vertex AI Experiments run" in text
    assert f"/ft try {model} PROMPT" in text
    thread = wait_for(lambda: (t := _thread(slack, card)) and "Tuned model ready" in json.dumps(t) and t, timeout=15)
    said = json.dumps(thread)
    assert f"Dataset processed: 12 examples, {made.billable_tokens:,} billable tokens an epoch" in said
    assert not any(m.get("files") for m in slack.channel_messages(CHANNEL))  # no empty chart uploaded

    # Checkpoints, from the tuned model's.
    listed = team.ask(f"checkpoints {job_id}")
    assert listed["text"] == f"3 checkpoints of `{job_id}`", listed
    shown = json.dumps(listed["blocks"])
    assert "*step 2* \\u00b7 Epoch 1" in shown and f"*step {steps}* \\u00b7 Epoch 3" in shown and made.endpoint_id in shown, shown

    # Evaluation against the base model, through the tuned endpoint and the publisher model.
    answer = team.ask(f"eval {model} n=3")
    assert "Evaluating 3 examples" in answer["text"], answer
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of ") and " vs " in m["text"]), None), timeout=60)
    assert FLASH in report["text"], report
    with team.bot.services.db.session() as s:
        from storage.models import EvalRun

        run = s.query(EvalRun).one()
        assert (run.status, run.model, run.baseline) == ("done", model, FLASH), run.summary


def test_cancel_at_vertex(db_url, vertex_team, vertex_sandbox, slack) -> None:  # noqa: ANN001, F811
    world = vertex_sandbox.world
    world.timing.step_seconds = 5  # still tuning when cancelled
    team = vertex_team(db_url)
    job_id = _started(team.ask(f"start {_upload(team)} provider=vertex epochs=1"))
    assert world.jobs[job_id].base_model == FLASH  # Vertex's default base, not OpenAI's
    wait_for(lambda: _card(slack, job_id), timeout=15)
    answer = team.ask(f"cancel {job_id}")
    assert "ancel" in answer["text"] and "<" not in answer["text"].replace("<#", "").replace("<@", ""), answer
    assert world.jobs[job_id].cancel_at is not None
    alert = wait_for(lambda: _alert(slack, job_id), timeout=30)
    assert "was *cancelled*" in json.dumps(alert["blocks"])
    assert _row(team, job_id).status == "cancelled"
    assert "cannot pause" in team.ask(f"pause {job_id}")["text"]


def test_a_failed_job_brings_vertex_error_into_the_alert(db_url, vertex_team, vertex_sandbox, slack) -> None:  # noqa: ANN001, F811
    world = vertex_sandbox.world
    world.timing.step_seconds = 5
    team = vertex_team(db_url)
    job_id = _started(team.ask(f"start {_upload(team)} provider=vertex epochs=2"))
    world.fail(job_id, "Internal error occurred: the tuning pipeline <crashed> & stopped.")
    alert = wait_for(lambda: _alert(slack, job_id), timeout=30)
    text = json.dumps(alert["blocks"])
    assert "*failed*" in text and "Error: Internal error occurred: the tuning pipeline &lt;crashed&gt; &amp; stopped." in text, text
    row = _row(team, job_id)
    assert row.status == "failed" and row.error["code"] == "13"


def test_start_options_that_do_not_fit_vertex_are_refused_before_anything_is_made(db_url, vertex_team, vertex_sandbox) -> None:  # noqa: ANN001, F811
    team = vertex_team(db_url, worker=False)
    fid = _upload(team)
    assert "`adapter` must be 1, 2, 4, 8 or 16, got `3`" in team.ask(f"start {fid} adapter=3")["text"]
    assert "Vertex AI picks the batch size itself" in team.ask(f"start {fid} batch=8")["text"]
    assert "Together AI option" in team.ask(f"start {fid} lora_r=8")["text"]
    refused = team.ask(f"start {fid} model=gpt-4o-mini-2024-07-18")
    assert "Vertex AI tunes" in refused["text"] and "gemini-3.5-flash" in refused["text"], refused
    assert "`provider` must be one of openai, azure, together, ray, vertex" in team.ask(f"start {fid} provider=gcp")["text"]
    assert vertex_sandbox.world.jobs == {}


def test_the_budget_gate_asks_when_the_cost_is_unknown_and_prices_with_the_set_price(db_url, vertex_team, vertex_sandbox) -> None:  # noqa: ANN001, F811
    team = vertex_team(db_url, worker=False, job_budget_usd=5.0, approvers=("U0002",))
    held = team.ask(f"start {_upload(team)} epochs=2")
    assert "not estimable (Google publishes no per-token Gemini tuning price ftbot can read; FTBOT_VERTEX_PRICE_PER_MTOK sets one)" in held["text"], held
    assert "asked <#C0001> for approval" in held["text"], held
    assert vertex_sandbox.world.jobs == {}
    # With FTBOT_VERTEX_PRICE_PER_MTOK the adapter prices it (tokens x epochs x price): under budget, started.
    priced = vertex_team(db_url, worker=False, job_budget_usd=5.0, vertex_price_per_mtok=3.0)
    job_id = _started(priced.ask(f"start {_upload(priced)} epochs=2"))
    assert job_id in vertex_sandbox.world.jobs


def _upload_form(team: Team, slack, name: str, content: bytes) -> dict:  # noqa: ANN001
    """`/ft upload provider=vertex`, the file chosen in the form; the report posted in the channel."""
    before = len(slack.calls("views.open"))
    team.bot.slack.command("upload provider=vertex", trigger_id="123.456", channel=CHANNEL)
    opened = wait_for(lambda: slack.calls("views.open")[before:])[0].args["view"]
    f = slack.add_user_file(name, content)
    values = {
        "file": {"file": {"type": "file_input", "files": [{"id": f["id"], "name": name}]}},
        "model": {"model": {"type": "static_select", "selected_option": {"value": FLASH}}},
    }
    posted = len([c for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL])
    assert team.bot.slack.view_submission("upload_dataset", values, private_metadata=opened["private_metadata"]).status == 200
    return wait_for(lambda: [c.args for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL][posted:])[0]


def test_the_dataset_report_for_vertex_checks_geminis_format_and_limits(db_url, vertex_team, vertex_sandbox, slack) -> None:  # noqa: ANN001, F811
    from storage.models import Dataset

    team = vertex_team(db_url, worker=False)
    provider = team.bot.services.providers["vertex"]
    content = openai_chat(7, tag="report-clean")
    name = "support-" + "s" * 200 + ".jsonl"  # a long name still makes a file id ftbot can store
    report = _upload_form(team, slack, name, content)
    blocks = json.dumps(report["blocks"])
    assert "clean" in report["text"], report
    assert "OpenAI chat \\u2192 Gemini \\u00b7 7 examples" in blocks, blocks
    assert "o200k_base, not Gemini's tokenizer, approximate" in blocks and "Over the 131,072 limit" in blocks
    assert "unknown: Google publishes no per-token Gemini tuning price ftbot can read (FTBOT_VERTEX_PRICE_PER_MTOK sets one)" in blocks
    with team.bot.services.db.session() as s:
        [row] = s.scalars(select(Dataset)).all()
        assert (row.provider, row.example_count, row.verdict) == ("vertex", 7, "clean")
        fid = row.provider_file_id
    assert fid.startswith(f"gs://{vertex_sandbox.bucket}/tests/datasets/") and f"Uploaded as `{fid}`" in blocks
    assert len(fid) == 128 and fid.endswith("sss.jsonl")
    assert b'"contents"' in provider.file_content(fid)  # converted into the bucket
    # The approximate token count is the check's: the same number the adapter's estimate uses.
    from bot.datasets import gemini_format

    assert f"{_tokens_of(content, gemini_format):,}" in report["text"]

    # What cannot be converted is named by line, and nothing is uploaded.
    lines = content.decode().splitlines()
    lines[1] = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]})
    lines[4] = json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, {"role": "assistant", "content": "a cat"}]})
    bad = ("\n".join(lines) + "\n").encode()
    objects = len(provider.list_files(limit=1000))
    refused = _upload_form(team, slack, "broken.jsonl", bad)
    said = json.dumps(refused["blocks"])
    assert "2 errors" in said and "Not uploaded" in said, said
    assert "tool calls are not converted to Gemini's format \\u2014 line 2" in said, said
    assert "has an image: ftbot converts text only" in said and "\\u2014 line 5" in said, said
    assert len(provider.list_files(limit=1000)) == objects


def _tokens_of(content: bytes, gemini_format) -> int:  # noqa: ANN001
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jsonl"
        path.write_bytes(content)
        return gemini_format.check(path).total_tokens


def test_ftbot_demo_with_vertex_tells_the_whole_story(tmp_path, app_clock) -> None:  # noqa: ANN001
    """`ftbot demo --provider vertex`: datasets checked for Gemini, a tuned Gemini model, the alert with
    what Vertex reported, the evaluation against the base, the model deleted after two approvals."""
    import subprocess
    import sys

    app_clock.set("2026-12-08")
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "demo", "--provider", "vertex", "--out", str(tmp_path / "demo"), "--steps", "12"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-2000:])
    text = out.stdout
    for seen in (
        "Vertex AI sandbox", "`acme-draft.jsonl`: 1 error", "has role 'bot'; Gemini knows user and model", "OpenAI chat → Gemini · 10 examples",
        "o200k_base, not Gemini's tokenizer, approximate", "Uploaded as `gs://ftbot-sandbox-data/demo/datasets/",
        "epochs=3 adapter=4 lr=1.0", "(adapter_size=4, learning_rate_multiplier=1.0, n_epochs=3)", "[job card]", "(step 6/6)",
        "Dataset processed: 10 examples", "Tuned model ready: projects/123456789012/locations/us-central1/models/",
        "Reported: 6/6 steps, 3 epochs", "No loss chart: Vertex AI publishes the loss and accuracy",
        "against `gemini-3.5-flash`", "10 of 10 examples scored.", "*Deleted*", "was deleted",
    ):
        assert seen in text, seen
    assert "[thread: image]" not in text  # no empty chart
    summary = text.split("\nSummary\n")[1]
    for seen in ("provider          Vertex AI sandbox", ": succeeded", "model             projects/123456789012/locations/us-central1/models/", "model deleted     yes", "loss chart        none: Vertex AI"):
        assert seen in summary, seen
