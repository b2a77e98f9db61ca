"""Many jobs ending in one channel together: one digest message in the channel instead of one alert
per job (Slack takes about one post a second per channel, so 30 alerts would take half a minute).

Before each send, the end-of-job alerts waiting in a channel (none of them can be in Slack already:
never attempted, or refused with a 429 that did nothing; due or still held) are gathered when there
are at least two and one is due: each alert becomes a reply in its own
job's card thread (the job keeps its full alert and its card edit), and one digest message listing
them all is queued for the channel, in the same transaction. The conversions are conditional updates,
so of two senders gathering at once each alert goes to exactly one digest; a lone alert is left alone.
Alerts pile up while a channel is paced, so a burst becomes a few digests at most.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.outbox.queue import enqueue
from bot.outbox.renderers import RENDER
from storage.models import OutboxMessage
from storage.types import utcnow

MIN_JOBS = 2
MAX_JOBS = 40  # per digest: every job keeps a line within Slack's limits
# While endings keep arriving in a channel (a poll cycle writes its jobs in batches), its waiting
# alerts are held until none came for QUIET, at most MAX_WAIT after the first: one digest, not one
# per batch. A lone ending is never held.
QUIET = timedelta(seconds=1)
MAX_WAIT = timedelta(seconds=5)
# bot/jobs/notify.py keys a job's end-of-job alert `s<subscription>:final` (`:final:<n>` on a
# re-subscription); other channel alerts (training health) are not endings.
FINAL_KEY = "s%:final%"
# The digest (and each edit of it) is drawn when sent by the renderer of this name
# (bot/jobs/renderers.py), from the jobs' ids and the headlines below: the outbox gathers, the jobs
# feature says what a job's line is.
DIGEST_RENDERER = "endings_digest"
JOBS = "digest_of"  # payload key of a digest post (and its edits): the ids of its jobs, in order
HEADLINE = "digest_line"  # payload key of an alert's evaluation edit: the job's headline for a digest


class _TooFew(Exception):
    pass


def gather_endings(db: Any, channels: list[str] | None = None, *, now: datetime | None = None) -> int:
    """Queue a digest for each channel with several waiting end-of-job alerts. The number of alerts
    gathered. `now`: the sender's clock for this pass, the one it then picks due messages by, so an
    alert held here until a moment that passes before the pick is not sent alone."""
    now = now or utcnow()
    o = OutboxMessage
    free = [o.delivered_at.is_(None), o.gave_up_at.is_(None), o.attempts == 0, o.kind == "alert", or_(o.claimed_until.is_(None), o.claimed_until < now)]
    # Alerts not due yet are read too: those held for the quiet window, or waiting out a 429's
    # Retry-After (Slack did nothing with them), are the very ones a later ending must join.
    q = select(o.id, o.channel_id, o.created_at, o.next_attempt_at).where(*free, o.uncertain_since.is_(None), o.job_id.is_not(None), o.idempotency_key.like(FINAL_KEY))
    if channels is not None:
        q = q.where(o.channel_id.in_(channels))
    with db.session() as s:
        rows = s.execute(q.order_by(o.id)).all()
    by_channel: dict[str, list[tuple[int, datetime, datetime]]] = {}
    for mid, channel, created, due in rows:
        by_channel.setdefault(channel, []).append((mid, created, due))
    gathered = 0
    for channel, found in by_channel.items():
        if len(found) < MIN_JOBS or all(due > now for _, _, due in found):
            continue  # a lone alert goes as it is; a channel none of whose alerts is due is decided when one is
        ids = [mid for mid, _, _ in found]
        newest, oldest = max(c for _, c, _ in found), min(c for _, c, _ in found)
        if now - newest < QUIET and now - oldest < MAX_WAIT:
            with db.session() as s:  # more may be on their way: wait for them (none of these is sent meanwhile; a later Retry-After stands)
                s.execute(update(o).where(o.id.in_(ids), *free, o.next_attempt_at < newest + QUIET).values(next_attempt_at=newest + QUIET))
            continue
        for chunk in _chunks(ids, MAX_JOBS):
            try:
                gathered += _digest(db, channel, chunk, free)
            except _TooFew:
                continue  # another sender took some of them first
    return gathered


def _digest(db: Any, channel: str, ids: list[int], free: list[Any]) -> int:
    with db.session() as s:
        taken = [mid for mid in ids if s.execute(update(OutboxMessage).where(OutboxMessage.id == mid, *free).values(kind="reply")).rowcount]
        if len(taken) < MIN_JOBS:
            raise _TooFew  # rolls the conversions back: a lone alert stays an alert
        rows = list(s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(taken)).order_by(OutboxMessage.id)))
        key = "digest:" + hashlib.sha256(f"{channel}:{','.join(map(str, taken))}".encode()).hexdigest()[:32]
        for m in rows:
            m.payload = {**(m.payload or {}), "in_digest": key}
        # Drawn when sent: an evaluation that finished before then has its headline in the post already.
        s.add(OutboxMessage(idempotency_key=key, kind="post", channel_id=channel, team_id=rows[0].team_id, payload=_drawn_later([m.job_id for m in rows])))
    return len(taken)


def add_headline(s: Session, alert_id: int) -> None:
    """A job's evaluation headline has just been queued (an edit of its final alert keyed
    `<alert key>:eval`, carrying HEADLINE). If that alert went into a digest, the digest's line for the
    job shows it too: the digest post itself while it is unsent (it is drawn when sent), else one
    edit of it, drawn when sent as well, so a waiting edit shows every headline queued by then. The
    digest row is locked meanwhile, so of two evaluations finishing at once the later one sees the
    earlier one's edit waiting (or queues a second when the first is already on its way)."""
    o = OutboxMessage
    alert = s.scalars(select(o).where(o.id == alert_id).with_for_update().execution_options(populate_existing=True)).first()
    key = (alert.payload or {}).get("in_digest") if alert is not None else None
    if not key:
        return
    post = s.scalars(select(o).where(o.idempotency_key == key).with_for_update().execution_options(populate_existing=True)).first()
    if post is None or post.gave_up_at is not None or not (post.payload or {}).get(JOBS):
        return  # a digest queued before digests knew their jobs: its alerts' edits still show the headline
    job_ids = [int(j) for j in post.payload[JOBS]]
    now = utcnow()
    unsent = [o.delivered_at.is_(None), o.gave_up_at.is_(None), o.attempts == 0, o.uncertain_since.is_(None), or_(o.claimed_until.is_(None), o.claimed_until < now)]
    # An unsent post is drawn when sent (one written with its message drawn is turned into one that is).
    if s.execute(update(o).where(o.id == post.id, *unsent).values(payload=_drawn_later(job_ids))).rowcount:
        return
    edit = {"edit_of": key, **_drawn_later(job_ids)}
    waiting = s.scalar(select(o.id).where(o.channel_id == post.channel_id, o.kind == "edit", o.idempotency_key.startswith(f"{key}:eval:"), *unsent))
    if waiting is not None and s.execute(update(o).where(o.id == waiting, *unsent).values(payload=edit)).rowcount:
        return
    members = [m for m in s.scalars(select(o).where(o.job_id.in_(job_ids), o.idempotency_key.like(FINAL_KEY)).order_by(o.id)) if (m.payload or {}).get("in_digest") == key]
    shown = sum(1 for line in _headlines(s, members).values() if line)
    enqueue(s, f"{key}:eval:{shown}", kind="edit", channel=post.channel_id, team_id=post.team_id, payload=edit)


def headlines(s: Session, digest_key: str, job_ids: list[int]) -> dict[int, str]:
    """For the digest keyed `digest_key`: job id -> the evaluation headline queued for the job's alert
    in it (see bot/evals/publish.py). What a digest's renderer shows under each job's line."""
    o = OutboxMessage
    if not job_ids:
        return {}
    alerts = [m for m in s.scalars(select(o).where(o.job_id.in_(job_ids), o.idempotency_key.like(FINAL_KEY))) if (m.payload or {}).get("in_digest") == digest_key]
    return _headlines(s, alerts)


def _drawn_later(job_ids: list[int]) -> dict[str, Any]:
    return {RENDER: DIGEST_RENDERER, JOBS: job_ids}


def _headlines(s: Session, alerts: list[OutboxMessage]) -> dict[int, str]:
    """Job id -> the evaluation headline queued for its alert (see bot/evals/publish.py)."""
    by_key = {f"{m.idempotency_key}:eval": m.job_id for m in alerts}
    if not by_key:
        return {}
    edits = s.execute(select(OutboxMessage.idempotency_key, OutboxMessage.payload).where(OutboxMessage.idempotency_key.in_(list(by_key))))
    return {by_key[k]: str(p[HEADLINE]) for k, p in edits if (p or {}).get(HEADLINE)}


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
