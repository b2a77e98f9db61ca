"""POST /webhooks/openai end to end: the sandbox signs and sends OpenAI's job webhooks to a running
ftbot, whose worker polls the job at once (poll interval 60 s), so the ending reaches Slack in seconds."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from sqlalchemy import func, select

from bot.provider import JobSpec
from bot.sandbox.webhooks import job_event_body, new_secret, signed_headers
from bot.worker.runner import Worker
from storage.models import Job, WebhookDelivery
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"
NOTIFY = "C0NOTIFY"
# The bound (final alert within 2 s of the webhook) with a margin for a loaded test machine.
BOUND = 2.5


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw or b"{}")
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")}


def _sandbox_ctl(sandbox, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:  # noqa: ANN001
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{sandbox.base}/_sandbox/{path}", data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _deliveries(sandbox) -> list[dict[str, Any]]:  # noqa: ANN001
    return _sandbox_ctl(sandbox, "webhooks", method="GET")["deliveries"]


def _final_alerts(slack, channel: str, job_id: str) -> list[Any]:  # noqa: ANN001
    return [c for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel and str(c.args.get("text", "")).startswith(f"Fine-tuning {job_id} ")]


def _start(bot, sandbox, slack) -> str:  # noqa: ANN001
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    reply = bot.slack.command(f"start {fid} epochs=2 batch=4")
    assert reply.status == 200
    answer = wait_for(lambda: [r for r in slack.responses() if "Started" in r.get("text", "")])[0]
    return answer["text"].split("`")[1]


def _rows(bot) -> list[WebhookDelivery]:  # noqa: ANN001
    with bot.services.db.session() as s:
        return list(s.scalars(select(WebhookDelivery)))


def test_signed_webhook_brings_the_final_alert_within_two_seconds_and_a_replay_changes_nothing(db_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    secret = new_secret()
    # Long enough a queue that the job certainly ends after the worker's first (and, at 60 s, only) cycle.
    sandbox.state.timing.queued_seconds = 1.0
    bot = start_bot(db_url, worker=True, poll_interval=60, openai_webhook_secret=secret)
    _sandbox_ctl(sandbox, "webhooks", {"url": f"{bot.url}/webhooks/openai", "secret": secret})
    job_id = _start(bot, sandbox, slack)

    delivery = wait_for(lambda: [d for d in _deliveries(sandbox) if d["job_id"] == job_id], timeout=15)[0]
    assert delivery["type"] == "fine_tuning.job.succeeded" and delivery["status"] == 200
    # Answered at once: the work happens in the worker, not in the request.
    assert delivery["answered_at"] - delivery["sent_at"] < 1.0
    remaining = delivery["sent_at"] + BOUND - time.time()
    alert = wait_for(lambda: _final_alerts(slack, "C0001", job_id), timeout=max(0.05, remaining))[0]
    assert alert.at - delivery["sent_at"] < BOUND
    assert "ft:" in alert.args["text"]  # the fine-tuned model's name is in the alert
    with bot.services.db.session() as s:
        job = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        assert job.is_final and job.status == "succeeded"
    # (the scheduled sender may post before the check records its outcome)
    wait_for(lambda: [(r.webhook_id, r.outcome) for r in _rows(bot)] == [(delivery["webhook_id"], "polled")])

    # OpenAI delivers the same webhook-id again (a retry): 200, nothing recorded, nothing posted.
    wait_for(lambda: slack.calls("files.completeUploadExternal"))  # the chart is the last thing the job posts
    calls = len(slack.calls())
    polls = sum(sandbox.state.requests.values())
    _sandbox_ctl(sandbox, f"webhooks/{delivery['webhook_id']}/replay")
    sent = wait_for(lambda: [d for d in _deliveries(sandbox) if d["webhook_id"] == delivery["webhook_id"]][1:])
    assert sent[0]["status"] == 200
    assert len(_rows(bot)) == 1
    bot.services.extras["worker"].react_to_webhooks()  # a check right now finds nothing to do
    assert len(_final_alerts(slack, "C0001", job_id)) == 1 and len(slack.calls()) == calls
    assert sum(sandbox.state.requests.values()) == polls


def test_webhook_for_a_job_ftbot_does_not_know_is_announced_like_discovery(db_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    secret = new_secret()
    bot = start_bot(db_url, worker=True, poll_interval=60, openai_webhook_secret=secret, notify_channel=NOTIFY)
    # The worker's first cycle (discovery included) has read the job list before the job exists.
    wait_for(lambda: sandbox.state.requests.get("list_jobs", 0) >= 1)
    _sandbox_ctl(sandbox, "webhooks", {"url": f"{bot.url}/webhooks/openai", "secret": secret})
    f = bot.services.provider.upload_file(chat_jsonl(), "train.jsonl")
    outside = bot.services.provider.create_job(JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1}))

    delivery = wait_for(lambda: [d for d in _deliveries(sandbox) if d["job_id"] == outside.id], timeout=15)[0]
    assert delivery["status"] == 200
    remaining = delivery["sent_at"] + BOUND - time.time()
    alert = wait_for(lambda: _final_alerts(slack, NOTIFY, outside.id), timeout=max(0.05, remaining))[0]
    assert alert.at - delivery["sent_at"] < BOUND
    top = [m for m in slack.channel_messages(NOTIFY) if not m.get("thread_ts")]
    assert outside.id in top[0]["text"] and "started outside Slack" in json.dumps(top[0]["blocks"])
    assert sandbox.state.requests.get("list_jobs", 0) == 1  # found by the webhook, not by a list read
    wait_for(lambda: [r.outcome for r in _rows(bot)] == ["polled"])


def test_failed_and_cancelled_jobs_arrive_by_webhook_too(sqlite_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    secret = new_secret()
    sandbox.state.timing.queued_seconds = 30  # the job waits in the queue until it is cancelled
    bot = start_bot(sqlite_url, worker=True, poll_interval=60, openai_webhook_secret=secret)
    _sandbox_ctl(sandbox, "webhooks", {"url": f"{bot.url}/webhooks/openai", "secret": secret})
    job_id = _start(bot, sandbox, slack)
    bad = sandbox.state.add_file("bad.jsonl", b'{"messages": []}\n' * 12, "fine-tune")["id"]
    assert bot.slack.command(f"start {bad}").status == 200
    failed_id = wait_for(lambda: [r for r in slack.responses() if "Started" in r.get("text", "") and job_id not in r["text"]])[0]["text"].split("`")[1]
    sandbox.state.cancel_job(job_id)  # cancelled at the provider, not through ftbot
    for jid, etype in ((job_id, "fine_tuning.job.cancelled"), (failed_id, "fine_tuning.job.failed")):
        delivery = wait_for(lambda jid=jid: [d for d in _deliveries(sandbox) if d["job_id"] == jid], timeout=15)[0]
        assert delivery["type"] == etype
        remaining = delivery["sent_at"] + BOUND - time.time()
        wait_for(lambda jid=jid: _final_alerts(slack, "C0001", jid), timeout=max(0.05, remaining))
    with bot.services.db.session() as s:
        assert dict(s.execute(select(Job.provider_job_id, Job.status)).all()) == {job_id: "cancelled", failed_id: "failed"}


# ---- refused and ignored requests: nothing happens ----------------------------------------------


def _quiet_bot(start_bot, db_url, sandbox, secret: str, **kw: Any):  # noqa: ANN001, ANN202
    """A bot whose worker is driven by hand, with one running job it knows, so that "nothing
    happened" can be checked without waiting: no row, no change to the job, nothing to poll."""
    sandbox.state.timing.queued_seconds = 60
    bot = start_bot(db_url, poll_interval=60, openai_webhook_secret=secret, **kw)
    return bot


def _snapshot(bot, sandbox, slack) -> tuple[Any, ...]:  # noqa: ANN001
    with bot.services.db.session() as s:
        jobs = s.execute(select(Job.provider_job_id, Job.status, Job.next_poll_at)).all()
        rows = s.scalar(select(func.count()).select_from(WebhookDelivery))
    return (sorted(jobs), rows, len(slack.calls()), sum(sandbox.state.requests.values()))


def test_forged_missing_stale_and_unknown_webhooks_change_nothing(db_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    secret = new_secret()
    bot = _quiet_bot(start_bot, db_url, sandbox, secret)
    job_id = _start(bot, sandbox, slack)
    wait_for(lambda: slack.calls("chat.postMessage"))
    worker = Worker(bot.services, lease_seconds=5, team_id="T0001")
    try:
        url = f"{bot.url}/webhooks/openai"
        body = job_event_body("fine_tuning.job.succeeded", job_id)
        before = _snapshot(bot, sandbox, slack)
        now = int(time.time())
        refused = {
            "forged": signed_headers(new_secret(), "wh_forged", body),
            "stale": signed_headers(secret, "wh_stale", body, timestamp=now - 400),
            "from the future": signed_headers(secret, "wh_future", body, timestamp=now + 400),
            "no signature": {k: v for k, v in signed_headers(secret, "wh_nosig", body).items() if k != "webhook-signature"},
            "no id": {k: v for k, v in signed_headers(secret, "wh_noid", body).items() if k != "webhook-id"},
            "no timestamp": {k: v for k, v in signed_headers(secret, "wh_nots", body).items() if k != "webhook-timestamp"},
            "body changed": signed_headers(secret, "wh_changed", job_event_body("fine_tuning.job.succeeded", "ftjob-other")),
        }
        for what, headers in refused.items():
            status, answer = _post(url, body, headers)
            assert status == 400, (what, status, answer)
            assert secret not in json.dumps(answer)
        status, _ = _post(url, b"", signed_headers(secret, "wh_empty", b""))
        assert status == 400
        not_json = b"not json"
        assert _post(url, not_json, signed_headers(secret, "wh_notjson", not_json))[0] == 400
        # A genuine event of a type ftbot does not act on: 200, ignored.
        other = json.dumps({"object": "event", "id": "evt_1", "type": "batch.completed", "created_at": now, "data": {"id": "batch_1"}}).encode()
        assert _post(url, other, signed_headers(secret, "wh_batch", other)) == (200, {"ok": True, "ignored": True})
        assert _snapshot(bot, sandbox, slack) == before
        worker.react_to_webhooks()
        assert _snapshot(bot, sandbox, slack) == before
        with bot.services.db.session() as s:
            assert s.scalar(select(Job.status).where(Job.provider_job_id == job_id)) != "succeeded"
    finally:
        worker.stop()


def test_a_genuine_webhook_is_recorded_once_and_polls_only_its_job(db_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    """The same webhook-id twice (OpenAI retries): the second answer is 200 and changes nothing."""
    secret = new_secret()
    bot = _quiet_bot(start_bot, db_url, sandbox, secret)
    job_id = _start(bot, sandbox, slack)
    wait_for(lambda: slack.calls("chat.postMessage"))
    sandbox.state.cancel_job(job_id)
    body = job_event_body("fine_tuning.job.cancelled", job_id)
    url = f"{bot.url}/webhooks/openai"
    assert _post(url, body, signed_headers(secret, "wh_1", body)) == (200, {"ok": True, "duplicate": False})
    assert _post(url, body, signed_headers(secret, "wh_1", body)) == (200, {"ok": True, "duplicate": True})
    assert [(r.webhook_id, r.processed_at) for r in _rows(bot)] == [("wh_1", None)]
    worker = Worker(bot.services, lease_seconds=5, team_id="T0001")
    try:
        sandbox.state.requests.clear()
        worker.react_to_webhooks()
        assert [r.outcome for r in _rows(bot)] == ["polled"]
        # one job-list page, the job's new events, its checkpoints: nothing for other jobs
        assert set(sandbox.state.requests) <= {"list_jobs", "get_job", "list_events", "list_checkpoints"}
        assert len(_final_alerts(slack, "C0001", job_id)) == 1
        calls = len(slack.calls())
        assert _post(url, body, signed_headers(secret, "wh_1", body))[0] == 200
        worker.react_to_webhooks()
        assert len(slack.calls()) == calls and len(_rows(bot)) == 1
    finally:
        worker.stop()


def test_the_route_exists_only_with_a_secret(sqlite_url, start_bot, sandbox) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url)
    body = job_event_body("fine_tuning.job.succeeded", "ftjob-x")
    status, _ = _post(f"{bot.url}/webhooks/openai", body, signed_headers(new_secret(), "wh_x", body))
    assert status == 404
