"""The endings digest: one channel message for many jobs that ended together, pure, within Slack's
limits however many jobs, escaped, and taken by the Slack stand-in through the real WebClient."""

from __future__ import annotations

import json

from slack_sdk import WebClient

from bot.jobs.view import JobView
from bot.messages.digest import endings_digest
from tests.conftest import BOT_TOKEN


def _job(i: int, status: str = "succeeded", **kw) -> JobView:  # noqa: ANN003
    base = dict(id=f"ftjob-{i:04d}", status=status, base_model="gpt-4o-mini-2024-07-18", fine_tuned_model=f"ft:gpt-4o-mini:acme::{i}", started_by=f"U{i % 3:04d}")
    base.update(kw)
    return JobView(**base)


def test_a_line_per_job_the_counts_and_who_started_them() -> None:
    jobs = [_job(1), _job(2), _job(3, "failed", error_message="bad <!channel> & file"), _job(4, "cancelled"), _job(5, "weird_new_status")]
    msg = endings_digest(jobs)
    body = json.dumps(msg["blocks"])
    assert "5 fine-tuning jobs ended" in msg["blocks"][0]["text"]["text"]
    assert "2 succeeded, 1 cancelled, 1 failed, 1 weird new status" in msg["text"]
    for i in range(1, 6):
        assert f"ftjob-{i:04d}" in body and f"ftjob-{i:04d}" in msg["text"]
    assert "ft:gpt-4o-mini:acme::1" in body and "weird_new_status" in body
    assert "&lt;!channel&gt; &amp; file" in body and "<!channel>" not in body  # provider text escaped
    assert msg["blocks"][-1]["elements"][0]["text"] == "Started by <@U0001> <@U0002> <@U0000>"


def test_within_slack_s_limits_however_many_jobs(slack) -> None:  # noqa: ANN001
    jobs = [_job(i, "failed", error_message="x" * 5000, started_by=f"U{i:05d}") for i in range(1000)]
    msg = endings_digest(jobs)
    assert len(msg["blocks"]) <= 50 and len(msg["text"]) <= 3000
    assert all(len(b["text"]["text"]) <= 3000 for b in msg["blocks"] if b["type"] == "section")
    shown = sum(b["text"]["text"].count("ftjob-") for b in msg["blocks"][1:] if b["type"] == "section")
    assert 100 < shown < 1000 and f"and {1000 - shown} more" in json.dumps(msg["blocks"])
    # The stand-in refuses what Slack refuses: it takes this one.
    WebClient(token=BOT_TOKEN, base_url=slack.api_url).chat_postMessage(channel="C0DIGEST", text=msg["text"], blocks=msg["blocks"])
    assert slack.channel_messages("C0DIGEST")[0]["blocks"] == msg["blocks"]


def test_evaluation_headlines_under_their_jobs_lines_escaped_and_within_limits(slack) -> None:  # noqa: ANN001
    from bot.messages.eval_report import headline_line

    jobs = [_job(i, "failed", error_message="x" * 5000, started_by=f"U{i:05d}") for i in range(40)]
    heads = {j.id: headline_line("<!channel> & " + "y" * 5000, 12, 12) for j in jobs}
    msg = endings_digest(jobs, heads)
    assert len(msg["blocks"]) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in msg["blocks"] if b["type"] == "section")
    lines = "\n".join(b["text"]["text"] for b in msg["blocks"] if b["type"] == "section").split("\n")
    first = next(i for i, line in enumerate(lines) if "ftjob-0000" in line)
    assert lines[first + 1].startswith(":bar_chart: Evaluation vs base: *&lt;!channel&gt; &amp; yyy") and "<!channel>" not in json.dumps(msg)
    two = endings_digest(jobs[:2], {jobs[1].id: "h"})["blocks"][1]["text"]["text"].split("\n")
    assert len(two) == 3 and "ftjob-0000" in two[0] and "ftjob-0001" in two[1] and two[2] == "h"  # only where one was given
    WebClient(token=BOT_TOKEN, base_url=slack.api_url).chat_postMessage(channel="C0DIGEST", text=msg["text"], blocks=msg["blocks"])
    assert slack.channel_messages("C0DIGEST")[0]["blocks"] == msg["blocks"]
