"""An evaluation under faults, over signed Slack requests with the real openai client against the
sandbox: one prompt refused by a content filter (as Azure OpenAI answers it: 400 `content_filter`)
is counted with the provider's reason and every other example is scored; a run fails as a whole
only when a model answered nothing, and then it names that model; a malformed example is left out
with its line before anything is asked. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import httpx

from storage.models import EvalRun
from tests.conftest import wait_for
from tests.evals.conftest import BASE, train
from tests.evals.crafted import dataset, jsonl

CHANNEL = "C0001"


def _ask(bot, slack, text: str) -> dict:  # noqa: ANN001
    before = len(slack.responses())
    assert bot.slack.command(text, user="U0001", channel=CHANNEL).status == 200
    return wait_for(lambda: slack.responses()[before:] and slack.responses()[before], timeout=20)


def _report(slack, after: int) -> dict:  # noqa: ANN001
    return wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL)[after:] if m["text"].startswith("Evaluation of ") and " vs " in m["text"] and m.get("blocks")), None), timeout=40)


def _run(bot, n: int) -> EvalRun:  # noqa: ANN001
    with bot.services.db.session() as s:
        run = s.query(EvalRun).filter(EvalRun.examples == n).one()
        s.expunge(run)
        return run


def test_a_refused_example_is_counted_and_the_others_scored(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    sandbox.state.memory.noise = 0.0
    # The first example (asked first, alone: nothing has been answered yet) is refused for both models.
    httpx.post(f"{sandbox.base}/_sandbox/refusals", json={"chat": {"contains": "capital of country 0?"}}).raise_for_status()
    bot = start_bot(db_url, worker=True)
    after = len(slack.channel_messages(CHANNEL))
    assert "Evaluating 10 examples" in _ask(bot, slack, f"eval {model} data={fid} n=10")["text"]
    report = _report(slack, after)
    run = _run(bot, 10)
    assert run.status == "done", run.summary
    s = run.summary
    assert s["scored"] == 9 and s["comparisons"]["exact"]["n"] == 9 and s["comparisons"]["exact"]["model"] == 1.0
    assert (s["slots"]["model"]["refused"], s["slots"]["baseline"]["refused"]) == (1, 1)
    assert (s["slots"]["model"]["failed"], s["slots"]["baseline"]["failed"]) == (0, 0)
    assert sandbox.state.refusals.refused == {"content_filter": 2}
    body = json.dumps(report["blocks"])
    assert "9 of 10 examples scored, refused by the provider: model 1, baseline 1" in body and "content management policy" in body and "content_filter" in body
    # The CSV names the refused example's line and the provider's words, for each model.
    csv_msg = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m.get("files") and m.get("thread_ts") == report["ts"]), None), timeout=20)
    table = list(csv.DictReader(io.StringIO(slack.uploaded_file(csv_msg["files"][0]["id"]).decode())))
    refused = [r for r in table if r["model_error"]]
    assert len(refused) == 1 and refused[0]["line"] == "1"
    for col in ("model_error", "baseline_error"):
        assert refused[0][col].startswith("refused: content_filter: OpenAI refused: The response was filtered due to the prompt triggering Azure OpenAI's content management policy")
    assert all(not r["baseline_error"] and r["model_answer"] == r["reference"] for r in table if r is not refused[0])


def test_a_run_fails_only_when_a_model_answered_nothing_and_names_that_model(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    # Every prompt refused for the baseline only: the fine-tuned model answers them all.
    httpx.post(f"{sandbox.base}/_sandbox/refusals", json={"chat": {"contains": "", "model": BASE}}).raise_for_status()
    bot = start_bot(db_url, worker=True)
    after = len(slack.channel_messages(CHANNEL))
    _ask(bot, slack, f"eval {model} data={fid} n=6")
    report = _report(slack, after)
    run = _run(bot, 6)
    assert run.status == "failed"
    error = run.summary["error"]
    assert error.startswith(f"{BASE} answered none of the 6 examples") and "content management policy" in error and model not in error, error
    assert run.summary["slots"]["model"]["answered"] == 6
    assert "answered none of the 6 examples" in json.dumps(report["blocks"])


def test_a_malformed_example_is_left_out_with_its_line_before_anything_is_asked(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, _fid = train(sandbox, rows)
    bad = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": 42}]}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": 3}]},
    ]
    # A raw provider file (uploaded anyway): lines 2 and 4 are malformed.
    content = jsonl([rows[0], bad[0], rows[1], bad[1], rows[2], rows[3]])
    data = sandbox.state.add_file("raw.jsonl", content, "fine-tune")["id"]
    bot = start_bot(db_url, worker=True)
    after = len(slack.channel_messages(CHANNEL))
    answer = _ask(bot, slack, f"eval {model} data={data} n=6")
    assert "Evaluating 4 examples (2 left out: see the report)" in answer["text"], answer
    report = _report(slack, after)
    run = _run(bot, 4)
    assert run.status == "done" and run.summary["scored"] == 4
    body = json.dumps(report["blocks"])
    assert "2 malformed" in body and "line 2 (the answer's content part 1 has a text that is not a string)" in body
    assert "line 4 (tool_calls is a number, not a list)" in body
    # Nothing malformed was sent: each model was asked the four good prompts only.
    assert sum(sandbox.state.memory.asked.values()) == 8
