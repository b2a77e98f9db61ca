"""Issue 22 item 7: jobs that end together in one channel are one digest post; each job's automatic
evaluation then puts its headline on that job's line of the digest (an edit of the digest, one per
headline at most), as well as on the job's own alert in its thread. Over signed requests, the real
clients and worker, the sandbox and the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from storage.models import OutboxMessage
from tests.conftest import wait_for
from tests.evals.conftest import BASE, expected
from tests.evals.crafted import dataset, jsonl

CHANNEL = "C0DIGEST"


def _start(bot, slack, fid: str) -> str:  # noqa: ANN001
    before = len(slack.responses())
    assert bot.slack.command(f"start {fid} epochs=1", channel=CHANNEL).status == 200
    answer = wait_for(lambda: slack.responses()[before:] and slack.responses()[before], timeout=20)
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _headline(rows, model: str, sandbox) -> str:  # noqa: ANN001
    want = expected(rows, model, BASE, sandbox.state.memory.noise)
    return f"exact match {want['exact']['baseline'] * 100:.0f} % → {want['exact']['model'] * 100:.0f} %"


def test_the_evaluation_headline_reaches_the_digest_line(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset()
    sandbox.state.timing.step_seconds = 3600  # both train until the test lets them finish together
    bot = start_bot(db_url, worker=True, eval_on_completion=True)
    fid = sandbox.state.add_file("crafted.jsonl", jsonl(rows), "fine-tune")["id"]
    jobs = [_start(bot, slack, fid) for _ in range(2)]

    def top() -> list[dict]:
        return [m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts")]

    def settled() -> bool:
        with bot.services.db.session() as s:
            waiting = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None)))
        return waiting == 0 and all(sandbox.state.get_job(j)["status"] == "running" for j in jobs)

    wait_for(settled, timeout=30)
    # Both end now, in one poll; should the poll straddle them, the channel's next post is answered
    # 429 so that neither alert goes out alone before the other is written.
    slack.fail("chat.postMessage", 429, count=1, retry_after=2)
    sandbox.state.timing.step_seconds = 0.0001
    found = wait_for(lambda: next((m for m in top() if "2 fine-tuning jobs ended" in m.get("text", "")), None), timeout=60)
    assert all(j in found["text"] for j in jobs)
    models = {j: sandbox.state.get_job(j)["fine_tuned_model"] for j in jobs}
    heads = {j: _headline(rows, models[j], sandbox) for j in jobs}

    def under_its_line(m: dict, j: str) -> bool:
        lines = "\n".join(b["text"]["text"] for b in m["blocks"] if b["type"] == "section").split("\n")
        at = next((i for i, line in enumerate(lines) if f"`{j}`" in line), None)
        return at is not None and at + 1 < len(lines) and heads[j] in lines[at + 1]

    def both_shown() -> dict | None:
        # per job: both headlines may read the same, so the body holding one is not both shown
        m = next((m for m in top() if m["ts"] == found["ts"]), None)
        return m if m and all(under_its_line(m, j) for j in jobs) else None

    shown = wait_for(both_shown, timeout=90)
    lines = "\n".join(b["text"]["text"] for b in shown["blocks"] if b["type"] == "section")
    for j in jobs:
        # the headline sits on the line under its own job's line
        job_line = next(i for i, line in enumerate(lines.split("\n")) if f"`{j}`" in line)
        assert heads[j] in lines.split("\n")[job_line + 1], lines
        assert "*succeeded*" in lines.split("\n")[job_line] and models[j] in lines.split("\n")[job_line]
    # one edit per headline at most, and the digest is still the only top-level ending
    edits = [c for c in slack.calls("chat.update") if c.args.get("ts") == found["ts"]]
    assert len(edits) <= 2, edits
    assert [m for m in top() if "ended" in m.get("text", "") and "fine-tuning jobs" in m.get("text", "")] == [shown]
    # each job's own alert, in its thread, has the headline too
    replies = [m for m in slack.channel_messages(CHANNEL) if m.get("thread_ts") and "Fine-tuning" in m.get("text", "") and "succeeded" in m.get("text", "")]
    for j in jobs:
        wait_for(lambda j=j: any(j in m["text"] and heads[j] in json.dumps(m.get("blocks"), ensure_ascii=False) for m in [*replies, *slack.channel_messages(CHANNEL)]), timeout=20)
