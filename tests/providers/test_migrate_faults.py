"""`/ft keep` and `/ft migrate` when something breaks midway, over signed Slack requests with the
real clients against the sandboxes, on SQLite and PostgreSQL:

- the web process running `/ft keep` is SIGKILLed (a deploy): the parity report compares only the
  prompts with a saved answer and says so; `/ft keep` asked again asks exactly the prompts that
  have no answer;
- the target refuses the job's creation (402 insufficient balance, as Together answers it), after
  a budget approval too: the migration fails with the provider's words and `/ft migrate` starts again;
- `/ft migrate cancel MODEL` in each state that is not final.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import select

from bot.sandbox.learned import prompt_key
from bot.sandbox.state import Faults
from bot.slack_standin.requests import SlackRequester
from storage.models import EvalRun, KeptAnswer
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, date_env, wait_for
from tests.providers.conftest import CHANNEL, TOGETHER_KEY, TOGETHER_PROJECT
from tests.providers.test_migrate import LLAMA_8B, _answers, _click, _made_at_openai, _migration, _preview_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _web_process(team, kits, slack) -> tuple[subprocess.Popen, SlackRequester]:  # noqa: ANN001
    """`ftbot serve --no-worker` in its own process, on the team's database and sandboxes."""
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test-key-123456", "OPENAI_BASE_URL": kits["openai"].sandbox.url,
        "TOGETHER_API_KEY": TOGETHER_KEY, "TOGETHER_BASE_URL": kits["together"].sandbox.url, "TOGETHER_PROJECT_ID": TOGETHER_PROJECT,
        "DATABASE_URL": team.bot.services.settings.database_url, "PORT": str(port), "FTBOT_DEFAULT_PROVIDER": "openai",
    }
    env.update(date_env())  # the test's date, the code under test (PYTHONPATH) and, when shifted, the moved wall clock
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "serve", "--no-worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(lambda: healthy() or proc.poll() is not None, timeout=60, interval=0.1)
    assert proc.poll() is None
    return proc, SlackRequester(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")


def _kept(team, model: str) -> list[KeptAnswer]:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        rows = list(s.scalars(select(KeptAnswer).where(KeptAnswer.model == model).order_by(KeptAnswer.line)))
        s.expunge_all()
        return rows


def test_a_keep_killed_midway_leaves_no_answer_counted_that_was_never_saved(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    for kit in ("openai", "together"):
        kits[kit].sandbox.state.memory.noise = 0.0  # both models give their trained answer: they agree everywhere
    team = launch(db_url, ["openai", "together"])
    _job, model, _train, _valid = _made_at_openai(team, kits)
    openai_sb = kits["openai"].sandbox

    # `/ft keep` in a web process of its own, killed (SIGKILL) while it asks: some answers saved,
    # the prompt in flight claimed and never answered.
    proc, requester = _web_process(team, kits, slack)
    try:
        openai_sb.state.faults = Faults(latency=0.3, path_contains="/chat/completions")
        assert requester.command(f"keep {model} n=6", channel=CHANNEL).status == 200
        wait_for(lambda: sum(r.claimed_until is None for r in _kept(team, model)) >= 3 and any(r.claimed_until is not None for r in _kept(team, model)), timeout=60, interval=0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        openai_sb.state.faults = Faults()
    rows = _kept(team, model)
    saved = {prompt_key(r.prompt["messages"]) for r in rows if r.claimed_until is None}
    claimed = [r for r in rows if r.claimed_until is not None]
    assert 3 <= len(saved) < 6 and len(claimed) == 1  # the fault happened: one prompt claimed, no answer

    # The migration's parity report compares only the prompts with a saved answer, and says how many.
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    assert "started" in _click(team, "migration_confirm", mid)["text"]
    wait_for(lambda: _migration(team, mid).state == "done", timeout=90)
    with team.bot.services.db.session() as s:
        run = s.scalar(select(EvalRun).where(EvalRun.request_key == f"migration:{mid}"))
        summary, note, examples = run.summary, run.source_note, run.examples
    n = len(saved)
    assert examples == n and summary["parity"]["n"] == n and summary["parity"]["exact"] == n, summary["parity"]
    assert summary["parity"]["headline"].startswith(f"the Together AI model agrees with the old one on {n} of {n} (100 %)")
    assert "1 prompt a `/ft keep` started but never saved an answer for is left out" in note
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if "Parity report" in json.dumps(m.get("blocks"))), None), timeout=30)
    assert f"on {n} of {n} (100 %)" in json.dumps(report["blocks"]) and "never saved an answer" in json.dumps(report["blocks"])

    # `/ft keep` asked again asks exactly the prompts without an answer (the claimed one included)
    # and counts only what was saved.
    asked_before = {k: v for k, v in openai_sb.state.memory.asked.items() if k[0] == model}
    answer = team.ask(f"keep {model} n=6")
    assert f"Saved {6 - n} new answers" in answer["text"] and f"({n} were saved already): 6 kept" in answer["text"], answer
    asked = {k[1]: v for k, v in openai_sb.state.memory.asked.items() if k[0] == model}
    assert len(asked) == 6
    for key in saved:
        assert asked[key] == asked_before[(model, key)] == 1  # saved before the kill: never asked again
    newly = {k: v - asked_before.get((model, k), 0) for k, v in asked.items()}
    assert sorted(newly.values()) == sorted([0] * n + [1] * (6 - n))
    rows = _kept(team, model)
    assert len(rows) == 6 and all(r.claimed_until is None and r.claimed_by is None and r.answer for r in rows)


def _refuse_next_creation(kits, status: int, message: str) -> None:  # noqa: ANN001
    httpx.post(f"{kits['together'].sandbox.url}/_sandbox/refusals", json={"create_job": {"status": status, "message": message}}).raise_for_status()


NO_BALANCE = "Insufficient balance: add credits to your account to start a fine-tuning job."


def test_a_target_refusing_the_start_fails_the_migration_with_its_words_and_it_can_start_again(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "together"], job_budget_usd=0.01, approvals_required=1, price_table=((LLAMA_8B, 1000.0),))
    _job, model, _train, _valid = _made_at_openai(team, kits)

    # Held for its budget, approved, and the target has no balance: failed with Together's words.
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    before = len(slack.responses())
    team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
    wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
    req = team.last_request()
    _refuse_next_creation(kits, 402, NO_BALANCE)
    team.click_approve(req.id, "U0002")
    wait_for(lambda: _migration(team, mid).state == "failed", timeout=30)
    failed = _migration(team, mid)
    assert NO_BALANCE in failed.error and "Together AI" in failed.error and failed.active_key is None, failed.error
    assert kits["together"].jobs() == {} and kits["together"].sandbox.state.refusals.refused == {"create_job": 1}
    listing = json.dumps(team.ask("migrations"))
    assert f"#{mid}" in listing and "*failed*" in listing and "Insufficient balance" in listing

    # `/ft migrate` starts again (not "being migrated already"); a direct start refused the same way
    # (no budget this time) fails the same way, and the third time it starts.
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=None)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    assert "blocks" in preview, preview
    mid2 = _preview_id(preview)
    _refuse_next_creation(kits, 400, "Training is closed for this base model: no new fine-tuning jobs are accepted.")
    refused = _click(team, "migration_confirm", mid2)
    assert "Training is closed for this base model" in refused["text"], refused
    assert _migration(team, mid2).state == "failed" and "Training is closed" in _migration(team, mid2).error
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid3 = _preview_id(preview)
    assert "started" in _click(team, "migration_confirm", mid3)["text"]
    wait_for(lambda: _migration(team, mid3).state in ("training", "evaluating", "done"), timeout=30)
    assert len(kits["together"].jobs()) == 1


def test_migrate_cancel_works_in_every_state_that_is_not_final(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "together"], job_budget_usd=0.01, approvals_required=1, price_table=((LLAMA_8B, 1000.0),))
    _job, model, _train, _valid = _made_at_openai(team, kits)

    def cancel() -> dict[str, Any]:
        return team.ask(f"migrate cancel {model}")

    # Nothing to cancel.
    assert "No migration of" in cancel()["text"]
    # ready
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    assert f"Migration #{mid} is cancelled" in cancel()["text"]
    assert _migration(team, mid).state == "cancelled" and _migration(team, mid).active_key is None

    # starting, held for its budget approval: the request is closed too, so no approval starts it.
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    before = len(slack.responses())
    team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
    wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
    req = team.last_request()
    assert f"Migration #{mid} is cancelled" in cancel()["text"]
    assert _migration(team, mid).state == "cancelled" and team.last_request().status == "rejected"
    approve = team.click_approve(req.id, "U0002")
    assert "votes no longer change it" in approve["text"] and kits["together"].jobs() == {}

    # training: the target job is cancelled at the provider too.
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=None)
    kits["together"].slow(step_seconds=5.0)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    assert "started" in _click(team, "migration_confirm", mid)["text"]
    assert _migration(team, mid).state == "training"
    job_id = _migration(team, mid).target_job_id
    said = cancel()["text"]
    assert f"Migration #{mid} is cancelled" in said and job_id in said, said
    assert _migration(team, mid).state == "cancelled"
    wait_for(lambda: kits["together"].status_of(job_id) in ("cancelling", "cancelled"), timeout=20)

    # evaluating, its parity report held for the budget gate: the report is stopped and its request closed.
    kits["together"].slow(step_seconds=0.01)
    kits["openai"].sandbox.state.memory.noise = 0.0
    kept = team.ask(f"keep {model} n=4")
    assert "Saved 4 new answers" in kept["text"], kept
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=1e-9)  # anything is over it
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    before = len(slack.responses())
    team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
    wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
    team.click_approve(team.last_request().id, "U0002")
    wait_for(lambda: _migration(team, mid).state == "evaluating" and team.last_request().kind == "eval_budget", timeout=60)
    parity_req = team.last_request()
    assert parity_req.status == "pending" and parity_req.request_key == f"migration:{mid}"
    said = cancel()["text"]
    assert f"Migration #{mid} is cancelled" in said and "parity report is stopped" in said, said
    assert _migration(team, mid).state == "cancelled" and team.last_request().status == "rejected"
    with team.bot.services.db.session() as s:
        assert s.scalar(select(EvalRun.status).where(EvalRun.request_key == f"migration:{mid}")) == "cancelled"
    # Final states answer plainly; the model may be migrated again.
    assert "No migration of" in cancel()["text"]
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    assert "blocks" in preview, preview


def test_the_parity_report_goes_through_the_budget_gate_with_a_priced_estimate(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from storage.models import ApprovalRequest

    kits["openai"].sandbox.state.memory.noise = 0.0
    kits["together"].sandbox.state.memory.noise = 0.0
    team = launch(sqlite_url, ["openai", "together"], approvals_required=1)
    _job, model, _train, _valid = _made_at_openai(team, kits)
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=1e-9)  # anything is over it
    _looking, preview, kept = _answers(team, f"migrate {model} keep=4", 3)
    assert "Saved 4 new answers" in kept["text"], kept
    mid = _preview_id(preview)
    before = len(slack.responses())
    team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
    wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
    team.click_approve(team.last_request().id, "U0002")
    # The new job succeeds; its parity report waits for its own approval before the new model is asked.
    wait_for(lambda: team.last_request().kind == "eval_budget", timeout=60)
    req = team.last_request()
    assert req.request_key == f"migration:{mid}" and _migration(team, mid).state == "evaluating"
    target = _migration(team, mid).target_model
    assert not any(m == target for (m, _k) in kits["together"].sandbox.state.memory.asked)
    with team.bot.services.db.session() as s:
        run = s.scalar(select(EvalRun).where(EvalRun.request_key == f"migration:{mid}"))
        est = run.estimate
        detail = s.get(ApprovalRequest, req.id).detail
    # The new model priced at its base's price, the old one's saved answers free; every price says where it comes from.
    parts = {p["role"]: p for p in est["parts"]}
    assert parts["model"]["usd"] > 0 and parts["model"]["note"] == "the shipped price table" and parts["baseline"]["usd"] == 0.0
    assert est["usd"] == parts["model"]["usd"] and "together.ai/pricing" in est["source"] and detail["estimate_usd"] == est["usd"]
    team.click_approve(req.id, "U0002")
    wait_for(lambda: _migration(team, mid).state == "done", timeout=60)
    with team.bot.services.db.session() as s:
        summary = s.scalar(select(EvalRun.summary).where(EvalRun.request_key == f"migration:{mid}"))
    assert summary["parity"]["headline"].startswith("the Together AI model agrees with the old one on 4 of 4 (100 %)")
    assert "together.ai/pricing" in summary["price_source"]


def test_an_evaluation_through_a_dedicated_endpoint_is_not_priced_per_token_and_the_gate_asks(sqlite_url, launch, kits, slack, tmp_path) -> None:  # noqa: ANN001
    import together

    from storage.models import ApprovalRequest, Job
    from tests.evals.crafted import dataset, jsonl

    sb = kits["together"].sandbox
    client = together.Together(api_key=TOGETHER_KEY, base_url=sb.url, max_retries=0)
    path = tmp_path / "crafted.jsonl"
    path.write_bytes(jsonl(dataset(10, 0, 0)))
    f = client.files.upload(path, purpose="fine-tune", check=False)
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, lora=False)
    wait_for(lambda: client.fine_tuning.retrieve(made.id).status == "completed", timeout=20)
    model = made.output_name
    httpx.post(f"{sb.url}/_sandbox/deployments", json={"model": model, "endpoint": "team/ep-full-1"}).raise_for_status()
    # A budget the per-token price would pass easily ($0.18 per 1M tokens at the base's price).
    team = launch(sqlite_url, ["together"], job_budget_usd=100.0, approvals_required=1)
    with team.bot.services.db.session() as s:
        s.add(Job(team_id="T0001", provider="together", provider_job_id=made.id, status="succeeded", is_final=True, base_model=LLAMA_8B, fine_tuned_model=model, hyperparameters={"training_type": "full"}, training_file=f.id))
    answer = team.ask(f"eval {model} vs={LLAMA_8B} data={f.id} n=10 endpoint=team/ep-full-1")
    assert "estimated at unknown (asked through a dedicated endpoint, which Together AI bills by the minute" in answer["text"], answer
    assert "approval request #" in answer["text"]
    req = team.last_request()
    assert req.kind == "eval_budget" and req.detail["estimate_usd"] is None and "bills by the minute" in req.detail["estimate_note"]
    with team.bot.services.db.session() as s:
        assert s.get(ApprovalRequest, req.id).status == "pending"
    assert not sb.state.memory.asked  # nothing asked before the approval


def test_keep_leaves_a_malformed_example_out_with_its_line(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"])
    _job, model, _train, _valid = _made_at_openai(team, kits)
    lines = [
        {"messages": [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]},
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": [{"type": "text", "text": 7}]}]},
        {"messages": [{"role": "user", "content": "q2"}, {"role": "assistant", "tool_calls": 5}]},
        {"messages": [{"role": "user", "content": "q3"}, {"role": "assistant", "content": "a3"}]},
    ]
    fid = kits["openai"].sandbox.state.add_file("raw.jsonl", "\n".join(json.dumps(x) for x in lines).encode(), "fine-tune")["id"]
    answer = team.ask(f"keep {model} data={fid} n=4")
    text = answer["text"]
    assert "Saved 2 new answers" in text and "2 malformed examples left out, never asked" in text, answer
    assert "line 2 (the answer's content part 1 has a text that is not a string)" in text
    assert "line 3 (tool_calls is a number, not a list)" in text
    assert len(_kept(team, model)) == 2
