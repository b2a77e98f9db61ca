"""A deleted model is noted in the thread of the job card of the job that made it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.mrkdwn import code
from bot.outbox.queue import enqueue
from storage.models import Job, Subscription

if TYPE_CHECKING:
    from bot.approvals.pending import Pending


def note_model_deleted(session: Session, req: Pending) -> None:
    job = session.scalar(select(Job).where(Job.fine_tuned_model == req.target, Job.team_id == req.team_id))
    if job is None:
        return
    who = ", ".join(f"<@{u}>" for u in req.approvers)
    text = f":wastebasket: The model {code(req.target)} made by this job was deleted (asked by <@{req.requested_by}>, approved by {who}; request #{req.id})."
    for sub in session.scalars(select(Subscription).where(Subscription.job_id == job.id)):
        enqueue(session, f"s{sub.id}:model_deleted:{req.id}", kind="reply", channel=sub.channel_id, sub=sub, payload={"text": text})
