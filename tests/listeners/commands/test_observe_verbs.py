"""`/ft events | checkpoints | metrics | watch | unwatch | models | try | files` end to end."""

from __future__ import annotations

import json

from sqlalchemy import select

from storage.models import Dataset, Subscription
from tests.conftest import wait_for


def _finished_job(chat) -> str:  # noqa: ANN001
    job_id = chat.start()
    wait_for(lambda: chat.sandbox.state.get_job(job_id)["status"] == "succeeded")
    return job_id


def test_events_oldest_first_with_count(chat) -> None:  # noqa: ANN001
    job_id = _finished_job(chat)
    answer = chat.ask(f"events {job_id} 5")
    text = json.dumps(answer["blocks"])
    assert "oldest first (5)" in text and "The job has successfully completed" in text
    assert text.index("New fine-tuned model created") < text.index("The job has successfully completed")
    everything = json.dumps(chat.ask(f"events {job_id[:10]} 200")["blocks"])
    assert "Created fine-tuning job" in everything
    assert "is not a number from 1 to 200" in chat.ask(f"events {job_id} 0")["text"]
    assert "needs a job id" in chat.ask("events")["text"]
    assert "No job matches" in chat.ask("events ftjob-zzzz")["text"]


def test_checkpoints(chat) -> None:  # noqa: ANN001
    job_id = _finished_job(chat)
    text = json.dumps(chat.ask(f"checkpoints {job_id}")["blocks"])
    assert "*step 3*" in text and "*step 6*" in text and ":ckpt-step-6" in text and "train loss" in text
    assert "No job matches" in chat.ask("checkpoints ftjob-zzzz")["text"]


def test_metrics_uploads_a_chart(chat, slack) -> None:  # noqa: ANN001
    job_id = _finished_job(chat)
    chat.ask(f"metrics {job_id}", expect_answer=False)
    done = wait_for(lambda: slack.calls("files.completeUploadExternal"))[0].args
    assert done["channel_id"] == "C0001" and done["files"][0]["title"] == f"Loss chart for {job_id}"
    assert f"Loss chart for `{job_id}`: step 6/6" in done["initial_comment"]
    assert slack.uploaded_file(done["files"][0]["id"]).startswith(b"\x89PNG")
    assert "No job matches" in chat.ask("metrics ftjob-zzzz")["text"]


def test_metrics_before_training_says_so(chat) -> None:  # noqa: ANN001
    chat.sandbox.state.timing.validating_seconds = 30
    job_id = chat.start()
    assert "No training metrics" in chat.ask(f"metrics {job_id}")["text"]


def test_watch_and_unwatch(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    answer = chat.ask(f"watch {job_id} <#C0OTHER|ml-runs>")
    assert "<#C0OTHER> now follows" in answer["text"]
    card = wait_for(lambda: slack.channel_messages("C0OTHER"))[0]
    assert job_id in card["text"]
    assert "already follows" in chat.ask(f"watch {job_id} <#C0OTHER|ml-runs>")["text"]
    assert "not a channel I can use" in chat.ask(f"watch {job_id} #general")["text"]
    assert "No job matches" in chat.ask("watch ftjob-zzzz")["text"]
    assert "no longer follows" in chat.ask(f"unwatch {job_id}", channel="C0OTHER")["text"]
    assert "does not follow" in chat.ask(f"unwatch {job_id}", channel="C0OTHER")["text"]
    with chat.bot.services.db.session() as s:
        assert s.scalars(select(Subscription.channel_id)).all() == ["C0001"]


def test_models_and_try(make_chat, slack, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, worker=True)  # the poller records which job made which model
    job_id = _finished_job(chat)
    model = chat.sandbox.state.get_job(job_id)["fine_tuned_model"]
    wait_for(lambda: [m for m in slack.channel_messages("C0001") if "succeeded" in m.get("text", "") and not m.get("thread_ts")])
    listing = json.dumps(chat.ask("models")["blocks"])
    assert model in listing and job_id in listing and "<@U0001>" in listing
    assert "gpt-4o-mini-2024-07-18`" not in listing  # base models are not listed
    answer = chat.ask(f'try {model} "How do I reset my password?"')
    assert answer["response_type"] == "in_channel"
    assert "You asked: How do I reset my password?" in json.dumps(answer["blocks"])
    assert "needs a model and a prompt" in chat.ask(f"try {model}")["text"]
    assert "OpenAI has no such model" in chat.ask("try ft:gpt-4o-mini:nope:x:y hello")["text"]


def test_files_lists_datasets_and_provider_files(chat) -> None:  # noqa: ANN001
    fid = chat.upload(name="raw.jsonl")
    with chat.bot.services.db.session() as s:
        s.add(Dataset(team_id="T0001", provider_file_id="file-checked", name="support <v2>.jsonl", bytes=2048, sha256="0" * 64, example_count=120, validation={"verdict": "ok"}, uploaded_by="U0001"))
    text = json.dumps(chat.ask("files")["blocks"])
    assert fid in text and "raw.jsonl" in text and "not checked" in text
    assert "support &lt;v2&gt;.jsonl" in text and "120 examples" in text and "2.0 KB" in text
    assert "takes no arguments" in chat.ask("files all")["text"]


def test_dataset_names_work_as_file_arguments(chat, sandbox) -> None:  # noqa: ANN001
    fid = chat.upload()
    with chat.bot.services.db.session() as s:
        s.add(Dataset(team_id="T0001", provider_file_id=fid, name="support.jsonl", bytes=100, sha256="1" * 64, example_count=12, validation={}, uploaded_by="U0001"))
    answer = chat.ask("start support.jsonl epochs=1")
    assert "Started" in answer["text"]
    job = next(iter(sandbox.state.jobs.values()))
    assert job.obj["training_file"] == fid


def test_provider_down_for_observers(chat, sandbox) -> None:  # noqa: ANN001
    job_id = _finished_job(chat)
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("502",)
    for text in (f"events {job_id}", f"checkpoints {job_id}", "models", "files", f"status {job_id}"):
        assert "OpenAI is having trouble" in chat.ask(text)["text"], text


def test_user_text_is_escaped(chat) -> None:  # noqa: ANN001
    answer = chat.ask("status <!channel>")
    assert "<!channel>" not in answer["text"]
    answer = chat.ask("try <!here> <@U0002> hello")
    assert "<!here>" not in json.dumps(answer)


def test_app_home_shows_the_teams_jobs(chat, slack) -> None:  # noqa: ANN001
    job_id = chat.start()
    reply = chat.bot.slack.event({"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"})
    assert reply.status == 200
    published = wait_for(lambda: slack.calls("views.publish"))[0].args
    assert published["user_id"] == "U0001" and published["view"]["type"] == "home"
    assert job_id in json.dumps(published["view"])
