"""What an evaluation says in Slack, queued in the outbox in the caller's transaction: the progress
message and its edits, the report with its CSV, and for a job's automatic evaluation the headline
added to the job's final alert. Keys are derived from the run, so nothing is said twice."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.events import EvaluationFinished, announce
from bot.jobs.view import view_of
from bot.messages.eval_report import headline_line, progress_message, report_message, with_headline
from bot.messages.job_card import final_alert
from bot.outbox import digest
from bot.outbox.queue import enqueue
from storage.models import EvalRun, Job, OutboxMessage, Subscription

FILE_KIND = "eval_csv"
# Request-key prefixes of runs whose report another feature writes (a migration's parity report),
# registered at start-up by bot/wiring.py: their end is announced and nothing more is said here.
_REPORTED_ELSEWHERE: set[str] = set()


def report_elsewhere(prefix: str) -> None:
    _REPORTED_ELSEWHERE.add(prefix)


def progress_key(request_key: str) -> str:
    return f"eval:{request_key}:progress"[:255]


def _progress(run: EvalRun, done: int, state: str = "running") -> dict:
    return progress_message(
        run_id=run.id, model=run.model, baseline=run.baseline, done=done, total=run.examples, source_note=run.source_note,
        estimate_usd=(run.estimate or {}).get("usd"), state=state, by=run.cancel_requested_by, error=(run.summary or {}).get("error") or run.error,
    )


def queue_progress_post(session: Session, run: EvalRun) -> None:
    if run.progress_key and run.channel_id:
        enqueue(session, run.progress_key, kind="post", channel=run.channel_id, team_id=run.team_id, payload=_progress(run, 0))


def queue_progress_edit(session: Session, run: EvalRun, done: int, state: str = "running") -> None:
    """An edit of the progress message. An edit still waiting unsent is rewritten rather than a
    second one queued (the conditional update loses to a sender that claimed it first)."""
    if not run.progress_key or not run.channel_id:
        return
    payload = {"edit_of": run.progress_key, **_progress(run, done, state)}
    waiting = session.scalar(
        select(OutboxMessage.id).where(
            OutboxMessage.channel_id == run.channel_id, OutboxMessage.kind == "edit", OutboxMessage.idempotency_key.startswith(f"{run.progress_key}:edit:"),
            OutboxMessage.delivered_at.is_(None), OutboxMessage.attempts == 0, OutboxMessage.claimed_by.is_(None),
        )
    )
    if state == "running" and waiting is not None:
        if session.execute(update(OutboxMessage).where(OutboxMessage.id == waiting, OutboxMessage.attempts == 0, OutboxMessage.claimed_by.is_(None)).values(payload=payload)).rowcount:
            return
    enqueue(session, f"{run.progress_key}:edit:{state}:{done}", kind="edit", channel=run.channel_id, team_id=run.team_id, payload=payload)


def queue_end(session: Session, run: EvalRun, status: str) -> None:
    """In the transaction that ends the run: the progress message's last state, the report and its
    CSV, and the headline on the job's final alert; and the end announced (EvaluationFinished). A
    run whose report another feature writes (a migration's parity report) is only announced."""
    announce(session, EvaluationFinished(run.id, run.request_key, status))
    if any(run.request_key.startswith(p) for p in _REPORTED_ELSEWHERE):
        return
    summary = run.summary or {}
    done = int(summary.get("scored", 0)) if status != "cancelled" else int(run.progress_shown or 0)
    queue_progress_edit(session, run, summary.get("examples", run.examples) if status == "done" else done, status)
    if status == "cancelled":
        return
    report = report_message(model=run.model, baseline=run.baseline, summary=summary, scores=list(run.scores), source_note=run.source_note, judge=run.judge)
    key = f"eval:{run.request_key}:report"[:250]
    sub = session.get(Subscription, run.subscription_id) if run.subscription_id else None
    if sub is not None and sub.ended_at is None:
        enqueue(session, key, kind="reply", channel=sub.channel_id, sub=sub, payload=report)
        enqueue(session, f"{key}:csv", kind=FILE_KIND, channel=sub.channel_id, sub=sub, payload={"run_id": run.id})
        _add_headline(session, run, sub, summary)
    elif run.channel_id:
        enqueue(session, key, kind="post", channel=run.channel_id, team_id=run.team_id, payload=report)
        enqueue(session, f"{key}:csv", kind=FILE_KIND, channel=run.channel_id, team_id=run.team_id, payload={"run_id": run.id, "thread_of": key})


def _add_headline(session: Session, run: EvalRun, sub: Subscription, summary: dict) -> None:
    alert_key = f"s{sub.id}:final"
    posted = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == alert_key))
    if posted is None:
        return  # no final alert to edit (the subscription started after the job ended)
    job = session.get(Job, run.job_id) if run.job_id else None
    if job is None:
        return
    line = headline_line(summary.get("headline"), int(summary.get("scored", 0)), int(summary.get("examples", 0)))
    # The alert as it was posted (with its "stops serving" note, if any), not rebuilt without it.
    alert = posted.payload if (posted.payload or {}).get("blocks") else final_alert(view_of(job))
    if enqueue(session, f"{alert_key}:eval", kind="edit", channel=sub.channel_id, sub=sub, payload={"edit_of": alert_key, **with_headline(alert, line), digest.HEADLINE: line}):
        digest.add_headline(session, posted.id)  # an alert folded into a digest: the digest's line too


def queue_report_again(session: Session, run: EvalRun, channel: str, key: str) -> None:
    """A stored report posted again (the same evaluation asked again), with its CSV."""
    report = report_message(model=run.model, baseline=run.baseline, summary=run.summary or {}, scores=list(run.scores), source_note=run.source_note, judge=run.judge)
    key = f"eval:{key}"[:240]
    enqueue(session, key, kind="post", channel=channel, team_id=run.team_id, payload=report)
    enqueue(session, f"{key}:csv", kind=FILE_KIND, channel=channel, team_id=run.team_id, payload={"run_id": run.id, "thread_of": key})
