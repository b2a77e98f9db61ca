"""A worker SIGKILLed in the middle of an evaluation: another worker resumes from the store. Every
answer stored before the kill is never asked again (counted at the sandbox); only requests in
flight at the kill, whose answers died with the process, are asked once more. On both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from sqlalchemy import select

from bot.sandbox.learned import prompt_key
from bot.sandbox.state import Faults
from storage.models import EvalAnswer, EvalExample, EvalRun
from tests.conftest import BOT_TOKEN, date_env, wait_for
from tests.evals.conftest import train
from tests.evals.crafted import dataset

CHANNEL = "C0001"
CONCURRENCY = 2


def _spawn(db_url: str, sandbox, slack) -> subprocess.Popen:  # noqa: ANN001
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": sandbox.url, "DATABASE_URL": db_url, "FTBOT_POLL_INTERVAL": "0.2",
        "FTBOT_EVAL_CONCURRENCY": str(CONCURRENCY), **date_env(),
    }
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stored(db) -> dict[tuple[str, str], str]:  # noqa: ANN001
    """(model, prompt key) -> status of its answer row."""
    with db.session() as s:
        run = s.scalars(select(EvalRun)).one()
        names = {"model": run.model, "baseline": run.baseline}
        rows = s.execute(select(EvalAnswer.slot, EvalAnswer.status, EvalExample.prompt).join(EvalExample, EvalExample.id == EvalAnswer.example_id)).all()
        return {(names[slot], prompt_key(prompt["messages"])): status for slot, status, prompt in rows}


def test_a_killed_worker_resumes_without_asking_stored_answers_again(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset(30, 0, 0)
    _, model, fid = train(sandbox, rows)
    bot = start_bot(db_url)  # the web process only: workers are the subprocesses below
    before = len(slack.responses())
    assert bot.slack.command(f"eval {model} data={fid} n=30", channel=CHANNEL).status == 200
    assert "Evaluating 30 examples" in wait_for(lambda: slack.responses()[before:] and slack.responses()[before], timeout=20)["text"]
    sandbox.state.faults = Faults(latency=0.1)
    db = bot.services.db
    worker = _spawn(bot.services.settings.database_url, sandbox, slack)
    try:
        wait_for(lambda: sum(v == "done" for v in _stored(db).values()) >= 16, timeout=60, interval=0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    done_before = {k for k, v in _stored(db).items() if v == "done"}
    asked_at_kill = dict(sandbox.state.memory.asked)
    assert 16 <= len(done_before) < 60
    worker = _spawn(bot.services.settings.database_url, sandbox, slack)
    try:
        wait_for(lambda: any(m["text"].startswith("Evaluation of ") and " vs " in m["text"] for m in slack.channel_messages(CHANNEL)), timeout=90, interval=0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    sandbox.state.faults = Faults()
    asked = sandbox.state.memory.asked
    assert all(asked[k] == 1 for k in done_before)  # stored before the kill: never asked again
    assert set(_stored(db).values()) == {"done"} and len(asked) == 60
    # Only what was in flight when the process died (at most the concurrency) was asked twice.
    twice = [k for k, n in asked.items() if n > 1]
    # (The sandbox counts a request after its simulated latency: one in flight may be counted after the kill.)
    assert len(twice) <= CONCURRENCY and not set(twice) & done_before, (twice, len(asked_at_kill))
    with db.session() as s:
        run = s.scalars(select(EvalRun)).one()
        assert run.status == "done" and run.summary["scored"] == 30
