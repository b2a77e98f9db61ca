"""`/ft events | checkpoints | metrics | watch | unwatch | models | try | files` end to end."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from sqlalchemy import select

from bot.messages.table import table_texts
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
    slack.set_members("C0OTHER", ["U0001"])  # only a member may point a job at a channel
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
    listing = chat.ask("models")
    rows = table_texts(next(b for b in listing["blocks"] if b["type"] == "table"))
    assert rows[0] == ["Model", "Made by job", "Started by", "Serves until"]
    # gpt-4o-mini's shutdown as the sandbox's models list reports it (the live date beats the table)
    row = next(r for r in rows[1:] if r[0] == model)
    assert row[1:3] == [job_id, "<@U0001>"] and row[3].startswith("2027-01-14 (") and "OpenAI API, read" in row[3], row
    assert all(r[0].startswith("ft:") for r in rows[1:])  # base models are not listed
    assert model in listing["text"]
    answer = chat.ask(f'try {model} "How do I reset my password?"')
    assert answer["response_type"] == "in_channel"
    assert "You asked: How do I reset my password?" in json.dumps(answer["blocks"]) and model in answer["text"]
    assert "needs a model and a prompt" in chat.ask(f"try {model}")["text"]
    assert "OpenAI has no such model" in chat.ask("try ft:gpt-4o-mini:nope:x:y hello")["text"]


def test_files_lists_datasets_and_provider_files(chat) -> None:  # noqa: ANN001
    fid = chat.upload(name="raw.jsonl")
    with chat.bot.services.db.session() as s:
        s.add(Dataset(team_id="T0001", provider_file_id="file-checked", name="support <v2>.jsonl", bytes=2048, sha256="0" * 64, example_count=120, validation={"verdict": "ok"}, uploaded_by="U0001"))
    answer = chat.ask("files")
    rows = table_texts(next(b for b in answer["blocks"] if b["type"] == "table"))
    assert rows[0] == ["Name", "File", "Size", "Examples", "Check", "Tokens", "Uploaded by", "When (UTC)"]
    by_file = {r[1]: r for r in rows[1:]}
    assert by_file[fid][0] == "raw.jsonl" and by_file[fid][3:5] == ["?", "not checked"] and by_file[fid][6] == "outside Slack"
    # A name is a raw_text cell: shown as typed, not escaped (nothing in a table cell is parsed).
    assert by_file["file-checked"][0] == "support <v2>.jsonl" and by_file["file-checked"][2:4] == ["2.0 KB", "120"] and by_file["file-checked"][6] == "<@U0001>"
    assert "support &lt;v2&gt;.jsonl" in answer["text"]
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


def _sandbox_chat(sandbox, reply: str | None) -> None:  # noqa: ANN001
    req = urllib.request.Request(f"{sandbox.base}/_sandbox/chat", data=json.dumps({"reply": reply}).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert json.loads(r.read())["reply"] == reply


def _shown(answer: dict) -> list[str]:
    """What the channel shows: the fallback text and every block text."""
    return [answer["text"], *(b["text"]["text"] for b in answer["blocks"])]


def test_user_text_is_escaped(chat) -> None:  # noqa: ANN001
    answer = chat.ask("status <!channel>")
    assert "<!channel>" not in answer["text"] and "&lt;!channel&gt;" in answer["text"]


def test_try_escapes_an_echoing_model_in_text_and_blocks(chat, sandbox) -> None:  # noqa: ANN001
    _sandbox_chat(sandbox, "{prompt}")  # the model repeats the prompt word for word
    # as Slack sends it: what the person typed has &, < and > escaped; real mentions are <…>
    answer = chat.ask("try gpt-4o-mini-2024-07-18 &lt;!channel&gt; tell <!here> and <@U0002|bob> a &amp; b")
    assert answer["response_type"] == "in_channel"
    for shown in _shown(answer):
        assert "<!channel>" not in shown and "<!here>" not in shown and "<@U0002" not in shown
    # the model got what the person typed (un-escaped once), and it is shown escaped once
    assert "&lt;!channel&gt; tell &lt;!here&gt; and &lt;@U0002|bob&gt; a &amp; b" in answer["text"]
    assert answer["text"].count("&lt;!channel&gt;") == 1 and "&amp;amp;" not in answer["text"]
    assert "&lt;!here&gt;" in answer["blocks"][0]["text"]["text"]


def test_try_escapes_hostile_answers_and_cuts_before_escaping(chat, sandbox) -> None:  # noqa: ANN001
    _sandbox_chat(sandbox, "<!channel> wake up <@U0BOSS> <https://evil.example|login> &amp;")
    answer = chat.ask("try gpt-4o-mini-2024-07-18 hello")
    for shown in _shown(answer):
        assert "<!channel>" not in shown and "<@U0BOSS>" not in shown and "<https" not in shown
        assert "&lt;!channel&gt; wake up" in shown and "&amp;amp;" in shown  # the model's literal "&amp;"
    _sandbox_chat(sandbox, "{prompt}")
    prompt = "x" * 190 + "&" * 3000
    answer = chat.ask(f"try gpt-4o-mini-2024-07-18 {prompt.replace('&', '&amp;')}")
    section = answer["blocks"][0]["text"]["text"]
    assert len(section) <= 3000 and len(answer["text"]) <= 3000
    for shown in _shown(answer):
        assert not re.search(r"&(?!amp;|lt;|gt;)", shown), shown[-40:]  # no entity cut in half
        assert shown.endswith("…")


def test_hostile_provider_text_in_status_and_events(chat, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 3600
    job_id = chat.start()
    hostile = "<!channel> see <@U123> &amp; " + "x" * 2850 + "&" * 20 + "<!here>"
    with sandbox.state.lock:
        sim = sandbox.state.jobs[job_id]
        sim.obj["status"], sim.obj["error"] = "failed", {"code": "boom", "message": hostile, "param": None}
        sandbox.state._event(sim, time.time(), "<!channel> wake up! &amp; " + "&" * 700, level="error")
    status = chat.ask(f"status {job_id}")
    events = chat.ask(f"events {job_id}")
    for answer in (status, events):
        shown = [answer["text"]] + [json.dumps(b) for b in answer["blocks"]]
        for text in shown:
            assert "<!channel>" not in text and "<@U123>" not in text and "<!here>" not in text
    card = json.dumps(status["blocks"])
    assert "&lt;!channel&gt; see &lt;@U123&gt; &amp;amp;" in card
    error_block = next(b["text"]["text"] for b in status["blocks"] if b.get("text", {}).get("text", "").startswith(":warning: *Error*"))
    assert len(error_block) <= 3000 and not re.search(r"&(?!amp;|lt;|gt;)", error_block)
    line = next(b["text"]["text"] for b in events["blocks"] if "wake up" in b["text"]["text"])
    assert "&lt;!channel&gt; wake up! &amp;amp;" in line and not re.search(r"&(?!amp;|lt;|gt;)", line)
