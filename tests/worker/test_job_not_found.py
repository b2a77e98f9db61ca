"""A job the provider answers 404 for (deleted there, or another project's) is closed with a clear
final state, told once on its card and in the channel, and no longer polled."""

from __future__ import annotations

import json
import urllib.request

from sqlalchemy import select

from bot.outbox.sender import Sender
from bot.worker.poller import Poller
from storage.models import Job
from tests.worker.test_job_notifications import CH, _drive, _start


def _forget_at_provider(sandbox, job_id: str) -> None:  # noqa: ANN001
    req = urllib.request.Request(f"{sandbox.base}/_sandbox/jobs/{job_id}", method="DELETE")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def test_job_gone_at_the_provider_is_closed_once(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.validating_seconds = 60  # stays early in its life until it vanishes
    svc = make_services(db_url)
    job_id = _start(svc).job.id
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    poller.cycle()
    sender.send_pending()
    assert len([m for m in slack.channel_messages(CH) if not m.get("thread_ts")]) == 1  # the card
    _forget_at_provider(sandbox, job_id)
    assert job_id not in sandbox.state.jobs

    def alerted() -> bool:
        return len([m for m in slack.channel_messages(CH) if not m.get("thread_ts")]) == 2

    _drive(svc, poller, sender, alerted, timeout=20)
    card, alert = [m for m in slack.channel_messages(CH) if not m.get("thread_ts")]
    card_blocks = json.dumps(card["blocks"])
    assert "not found" in card["text"] and ":ghost:" in card_blocks and "answered 404" in card_blocks
    assert '"action_id": "job_cancel"' not in card_blocks  # nothing left to steer
    alert_blocks = json.dumps(alert["blocks"])
    assert job_id in alert_blocks and "no longer found at the provider" in alert_blocks
    with svc.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        assert (row.status, row.is_final, row.lease_owner, row.poll_failures) == ("not_found", True, None, 0)
        assert row.error["code"] == "not_found" and row.finished_at is not None
    # Closed for good: later cycles ask the provider nothing and post nothing.
    sandbox.state.requests.clear()
    n = len(slack.calls())
    for _ in range(3):
        assert poller.cycle().claimed == 0
        sender.send_pending()
    assert sandbox.state.requests == {} and len(slack.calls()) == n


def test_a_failing_job_list_does_not_close_anything(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    # A 404 for every request (a wrong base URL, say) must not be read as "every job is gone".
    svc = make_services(db_url)
    job_id = _start(svc).job.id
    sandbox.state.faults.rate, sandbox.state.faults.kinds = 1.0, ("404",)
    poller = Poller(svc, "w1")
    stats = poller.cycle()
    assert stats.failed == 1
    with svc.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        assert not row.is_final and row.status != "not_found" and row.poll_failures == 1
