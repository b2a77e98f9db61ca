"""The default way an approved `job_budget` request starts its job: the same `start_job` as `/ft start`,
keyed on the request, so a repeated call (after an unknown outcome, or a crash) finds the job instead
of making a second one. The job's starter is the requester and its card goes to the requesting channel."""

from __future__ import annotations

from typing import Any

from bot.approvals.pending import Pending
from bot.jobs.lifecycle import start_job
from bot.outbox.deliver import deliver_now
from bot.provider.base import JobSpec
from bot.services import Services


def start_from_request(services: Services, req: Pending) -> dict[str, Any]:
    """`req.detail["spec"]` is `dataclasses.asdict(JobSpec)` with the files already resolved to provider ids."""
    spec = JobSpec(**req.detail["spec"])
    channel = req.detail.get("channel") or req.channel_id or ""
    started = start_job(services, spec, team_id=req.team_id, user=req.requested_by, channel=channel, idempotency_key=req.idempotency_key, provider=req.provider)
    deliver_now(services, started.subscription_ids)
    return {"job": started.job.id, "channel": channel}
