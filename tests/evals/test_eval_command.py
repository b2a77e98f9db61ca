"""`/ft eval` over signed requests, the real openai client against the sandbox and the real
slack_sdk against the Slack stand-in, on SQLite and PostgreSQL: the report's figures checked
against the crafted dataset, the progress message edited in place, the CSV in the report's thread,
Cancel, the same request answered from the store, and bad input answered clearly."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.sandbox.state import Faults
from storage.models import EvalRun
from tests.conftest import wait_for
from tests.evals.conftest import BASE, expected, train
from tests.evals.crafted import dataset, jsonl

CHANNEL = "C0001"


def _ask(bot, slack, text: str, user: str = "U0001") -> dict:  # noqa: ANN001
    before = len(slack.responses())
    reply = bot.slack.command(text, user=user, channel=CHANNEL)
    assert reply.status == 200, reply.text
    return wait_for(lambda: slack.responses()[before:] and slack.responses()[before], timeout=20)


def _report(slack, after: int = 0) -> dict:  # noqa: ANN001
    return wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL)[after:] if m["text"].startswith("Evaluation of ") and " vs " in m["text"] and m.get("blocks")), None), timeout=30)


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def test_eval_posts_a_report_with_the_known_figures(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset()
    _, model, fid = train(sandbox, rows)
    sandbox.state.memory.noise = 0.25
    bot = start_bot(db_url, worker=True)
    answer = _ask(bot, slack, f"eval {model} data={fid} n=12")
    assert "Evaluating 12 examples" in answer["text"], answer
    report = _report(slack)
    want = expected(rows, model, BASE, 0.25)
    table = next(b for b in report["blocks"] if b["type"] == "table")
    cells = {r[0]["text"]: [c["text"] for c in r] for r in table["rows"][1:]}
    labels = {"exact": "exact match", "similarity": "ROUGE-L F1", "json": "JSON equal", "tools": "tool calls"}
    for name, w in want.items():
        row = cells[labels[name]]
        assert row[1] == _pct(w["model"]) and row[2] == _pct(w["baseline"]) and row[5] == str(w["n"]), (name, row, w)
        assert f"{labels[name]}: {_pct(w['baseline'])} → {_pct(w['model'])}" in report["text"]
    assert len(table["rows"]) <= 100 and all(len(r) <= 20 for r in table["rows"])
    body = json.dumps(report["blocks"])
    assert "12 of 12 examples scored" in body and "Where the two differ most" in body and "p50" in body and "Total cost: $" in body
    # the progress message, edited in place to its last state, without its Cancel button
    progress = next(m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of") and "done at 12 / 12" in m["text"])
    assert progress.get("edited") and "actions" not in json.dumps(progress["blocks"])
    # every example as CSV in the report's thread
    upload = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m.get("files") and m.get("thread_ts") == report["ts"]), None), timeout=20)
    content = slack.uploaded_file(upload["files"][0]["id"]).decode()
    table_rows = list(csv.DictReader(io.StringIO(content)))
    assert len(table_rows) == 12 and {"prompt", "reference", "model_answer", "baseline_answer", "model_exact", "baseline_exact"} <= set(table_rows[0])
    assert sum(float(r["model_exact"]) for r in table_rows if r["model_exact"]) == pytest.approx(want["exact"]["model"] * want["exact"]["n"])
    asked = sum(sandbox.state.memory.asked.values())
    assert asked == 24
    # the same evaluation asked again: answered from the store, nothing asked
    n_before = len(slack.channel_messages(CHANNEL))
    again = _ask(bot, slack, f"eval {model} data={fid} n=12")
    assert "Answered from the stored evaluation" in again["text"]
    _report(slack, after=n_before)
    assert sum(sandbox.state.memory.asked.values()) == asked


@pytest.mark.parametrize(
    "text, says",
    [
        ("eval", "`eval` needs one model"),
        ("eval {model} n=0", "`n` must be a whole number from 1 to 1,000"),
        ("eval {model} n=abc", "`n` must be a whole number from 1 to 1,000"),
        ("eval {model} n=1001", "`n` must be a whole number from 1 to 1,000"),
        ("eval {model} colour=red", "Unknown option"),
        ("eval {model} score=vibes", "Unknown score"),
        ("eval {model} score=judge", "needs `judge=MODEL`"),
        ("eval ft:gpt-4o-mini-2024-07-18:nobody::x data={fid}", "Unknown model"),
        ("eval {model} data=nosuchdataset", "Unknown dataset"),
        ("eval {model}", "give `data=FILE`"),
        ("eval {model} data={bad}", "has no example to score"),
    ],
)
def test_bad_input_is_answered_clearly(start_bot, slack, sandbox, sqlite_url, text, says) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    bad = sandbox.state.add_file("no_answers.jsonl", jsonl([{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(10)]), "fine-tune")["id"]
    bot = start_bot(sqlite_url, worker=True)
    answer = _ask(bot, slack, text.format(model=model, fid=fid, bad=bad))
    assert says in answer["text"], answer
    with bot.services.db.session() as s:
        assert s.query(EvalRun).count() == 0  # nothing created, nothing asked
    assert sum(sandbox.state.memory.asked.values()) == 0


def test_cancel_stops_the_evaluation(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    rows = dataset(40, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True, eval_concurrency=1)
    sandbox.state.faults = Faults(latency=0.05)
    _ask(bot, slack, f"eval {model} data={fid} n=40")
    progress = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluating ")), None))
    button = next(e for b in progress["blocks"] if b["type"] == "actions" for e in b["elements"])
    wait_for(lambda: sum(sandbox.state.memory.asked.values()) >= 4)
    before = len(slack.responses())
    assert bot.slack.block_action(button["action_id"], button["value"], user="U0002").status == 200
    answer = wait_for(lambda: slack.responses()[before:] and slack.responses()[before])
    assert "Cancelling the evaluation" in answer["text"]
    wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if "Cancelled by <@U0002>" in json.dumps(m.get("blocks"))), None), timeout=20)
    with bot.services.db.session() as s:
        assert s.query(EvalRun).one().status == "cancelled"
    asked = sum(sandbox.state.memory.asked.values())
    assert asked < 80
    sandbox.state.faults = Faults()


def test_a_provider_failing_half_the_requests_is_reported(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    rows = dataset(12, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True)
    sandbox.state.fault_rng.seed(5)
    sandbox.state.faults = Faults(rate=0.5, kinds=("500",), path_contains="/chat/completions")
    _ask(bot, slack, f"eval {model} data={fid} n=12")
    report = _report(slack)
    body = json.dumps(report["blocks"])
    with bot.services.db.session() as s:
        summary = s.query(EvalRun).one().summary
    failed = summary["slots"]["model"]["failed"] + summary["slots"]["baseline"]["failed"]
    assert f"{summary['scored']} of 12 examples scored" in body
    # two attempts each at 50 %: some answers fail for good, most are retried into success
    assert 0 < failed and summary["scored"] < 12 and summary["scored"] + failed >= 12
    assert "failed:" in body and "server error" in body


def test_the_budget_gate_holds_an_expensive_evaluation_until_approved(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(db_url, worker=True, job_budget_usd=0.000001, approvals_required=2)
    answer = _ask(bot, slack, f"eval {model} data={fid} n=10")
    assert "over the budget of $0.00" in answer["text"] and "approval request #" in answer["text"], answer
    request = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if "Run an evaluation over the budget" in json.dumps(m.get("blocks"))), None))
    assert "Estimated cost:* $0.00" in json.dumps(request["blocks"])
    with bot.services.db.session() as s:
        run = s.query(EvalRun).one()
        assert run.status == "held"
    assert sum(sandbox.state.memory.asked.values()) == 0  # nothing asked while held
    request_id = answer["text"].split("approval request #")[1].split(" ")[0]
    for user in ("U0002", "U0003"):
        assert bot.slack.block_action("approval_approve", request_id, user=user).status == 200
    _report(slack)
    with bot.services.db.session() as s:
        assert s.query(EvalRun).one().status == "done"
    assert sum(sandbox.state.memory.asked.values()) == 20


def test_a_judge_that_answers_something_unreadable_is_counted_and_shown(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    # The sandbox's base model echoes the prompt, which names A, B and TIE: no single verdict.
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True)
    answer = _ask(bot, slack, f"eval {model} data={fid} n=10 judge=gpt-4o-2024-08-06")
    assert "Evaluating 10 examples" in answer["text"], answer
    report = _report(slack)
    body = json.dumps(report["blocks"], ensure_ascii=False)
    assert "The judge's answer could not be read for 10 examples (unscored)" in body
    assert "judge `gpt-4o-2024-08-06`: p50" in body  # asked, and its cost counted
    judge_asks = {k: n for k, n in sandbox.state.memory.asked.items() if k[0] == "gpt-4o-2024-08-06"}
    assert len(judge_asks) == 10 and set(judge_asks.values()) == {1}
    with bot.services.db.session() as s:
        summary = s.query(EvalRun).one().summary
    assert summary["comparisons"]["judge"]["n"] == 0 and summary["comparisons"]["exact"]["n"] == 10


def test_only_operators_may_evaluate_or_cancel(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url, operators=("U0BOSS",))
    reply = bot.slack.command("eval ft:gpt-4o-mini-2024-07-18:x::y n=5", user="U0002", channel=CHANNEL)
    assert reply.status == 200 and ":lock: Only operators" in reply.json["text"]
    click = bot.slack.block_action("eval_cancel", "1", user="U0002")
    assert click.status == 200
    with bot.services.db.session() as s:
        assert s.query(EvalRun).count() == 0


def test_progress_is_edited_in_place_as_examples_are_answered(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    rows = dataset(30, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True, eval_concurrency=2)
    sandbox.state.faults = Faults(latency=0.1)
    _ask(bot, slack, f"eval {model} data={fid} n=30")
    _report(slack)
    sandbox.state.faults = Faults()
    progress = next(m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of") and "done at 30 / 30" in m["text"])
    edits = [c.args for c in slack.calls("chat.update") if c.args.get("ts") == progress["ts"]]
    steps = [int(e["text"].split(": ")[-1].split(" / ")[0]) for e in edits if e["text"].startswith("Evaluating ")]
    assert steps and all(0 < k < 30 for k in steps) and steps == sorted(steps)  # k / N while it runs
    assert "done at 30 / 30" in edits[-1]["text"]  # then its last state, once
    assert len(edits) <= 30 // 2 + 2  # throttled: not one edit per answer


def test_a_rejected_evaluation_is_never_run_and_can_be_asked_again(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    rows = dataset(10, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True, job_budget_usd=0.000001)
    answer = _ask(bot, slack, f"eval {model} data={fid} n=10")
    request_id = answer["text"].split("approval request #")[1].split(" ")[0]
    assert "waiting for approvals" in _ask(bot, slack, f"eval {model} data={fid} n=10")["text"]
    before = len(slack.responses())
    assert bot.slack.block_action("approval_reject", request_id, user="U0002").status == 200
    wait_for(lambda: any("Rejected" in json.dumps(m.get("blocks")) for m in slack.channel_messages(CHANNEL)))
    # the voter's own answer first, so it is not taken for the answer to the next request
    wait_for(lambda: any("You rejected" in (r.get("text") or "") for r in slack.responses()[before:]))
    again = _ask(bot, slack, f"eval {model} data={fid} n=10")
    assert "over the budget" in again["text"] and f"#{request_id} " not in again["text"]  # a new request
    with bot.services.db.session() as s:
        assert sorted(r.status for r in s.query(EvalRun)) == ["cancelled", "held"]
    assert sum(sandbox.state.memory.asked.values()) == 0


def test_asked_again_after_a_cancel_it_runs_once_then_answers_from_the_store(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    rows = dataset(20, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(sqlite_url, worker=True, eval_concurrency=1)
    sandbox.state.faults = Faults(latency=0.05)
    _ask(bot, slack, f"eval {model} data={fid} n=20")
    progress = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluating ")), None))
    button = next(e for b in progress["blocks"] if b["type"] == "actions" for e in b["elements"])
    wait_for(lambda: sum(sandbox.state.memory.asked.values()) >= 2)
    assert bot.slack.block_action(button["action_id"], button["value"], user="U0002").status == 200
    wait_for(lambda: _statuses(bot) == ["cancelled"], timeout=20)
    sandbox.state.faults = Faults()
    # asked again: a new run, which ends
    assert "Evaluating 20 examples" in _ask(bot, slack, f"eval {model} data={fid} n=20")["text"]
    wait_for(lambda: _statuses(bot) == ["cancelled", "done"], timeout=40)
    asked = sum(sandbox.state.memory.asked.values())
    # asked a third time: answered from the newest run, nothing run or paid again
    assert "Answered from the stored evaluation" in _ask(bot, slack, f"eval {model} data={fid} n=20")["text"]
    assert _statuses(bot) == ["cancelled", "done"] and sum(sandbox.state.memory.asked.values()) == asked


def _statuses(bot) -> list[str]:  # noqa: ANN001
    with bot.services.db.session() as s:
        return [r.status for r in s.query(EvalRun).order_by(EvalRun.id)]
