"""Deliver the outbox to Slack: in order per subscription, with retries and backoff, never twice.

Exactly once, even if the process dies between Slack's answer and our record of it: each attempt is
counted in the database *before* the call, and a message whose earlier attempt may have gone through
is first looked for in the channel (every post carries its idempotency key as message metadata;
a chart is known by its file name) before it is sent again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import or_, select, update

from bot.charts.loss_chart import Point, loss_chart_png
from bot.jobs.view import view_of
from bot.messages.job_card import job_card
from bot.services import Services
from bot.slack_client import make_web_client
from storage.models import Checkpoint, Job, MetricPoint, OutboxMessage, Subscription
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
METADATA_TYPE = "ftbot_message"
# Errors that no retry will fix: the message is parked with its error for people to see.
PERMANENT = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive", "token_revoked", "msg_too_long", "invalid_blocks", "no_text", "message_not_found", "cant_update_message", "missing_scope", "restricted_action"}
)


@dataclass
class SendStats:
    delivered: int = 0
    failed: int = 0
    recovered: int = 0  # found already posted after an interrupted attempt


@dataclass
class Claim:
    id: int
    key: str
    kind: str
    channel: str
    payload: dict[str, Any]
    attempts: int
    subscription_id: int | None
    job_id: int | None
    card_ts: str | None


def chart_filename(job_provider_id: str) -> str:
    return f"loss-{job_provider_id}.png"


class Sender:
    def __init__(self, services: Services, worker_id: str, *, claim_seconds: float = 60.0, threads: int = 8, client: WebClient | None = None) -> None:
        self.s = services
        self.me = worker_id
        self.claim = timedelta(seconds=claim_seconds)
        self.client = client or make_web_client(services.settings.slack_bot_token, services.settings.slack_api_url, retry_unsure=False)
        self.threads = threads

    # ---- selection --------------------------------------------------------------------------

    def pending_groups(self, limit: int = 1000, subscription_ids: list[int] | None = None, channels: list[str] | None = None) -> list[list[int]]:
        """Due message ids grouped by subscription, each group cut at the first one that must wait."""
        now = utcnow()
        with self.s.db.session() as s:
            q = select(OutboxMessage.id, OutboxMessage.subscription_id, OutboxMessage.channel_id, OutboxMessage.next_attempt_at, OutboxMessage.claimed_until).where(
                OutboxMessage.delivered_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS
            )
            if subscription_ids is not None:
                q = q.where(OutboxMessage.subscription_id.in_(subscription_ids))
            if channels is not None:
                # Messages outside any job thread (approval requests and their edits), by channel.
                q = q.where(OutboxMessage.subscription_id.is_(None), OutboxMessage.channel_id.in_(channels))
            rows = s.execute(q.order_by(OutboxMessage.id).limit(limit)).all()
        groups: dict[Any, list[int]] = defaultdict(list)
        blocked: set[Any] = set()
        for mid, sub_id, channel, due, claimed_until in rows:
            key = sub_id if sub_id is not None else ("channel", channel)
            if key in blocked:
                continue
            if due > now or (claimed_until is not None and claimed_until > now):
                blocked.add(key)  # an earlier message waits: later ones of the same thread wait too
                continue
            groups[key].append(mid)
        return list(groups.values())

    def send_pending(self, limit: int = 1000, subscription_ids: list[int] | None = None, channels: list[str] | None = None) -> SendStats:
        groups = self.pending_groups(limit, subscription_ids, channels)
        stats = SendStats()
        if not groups:
            return stats
        if len(groups) == 1 or self.threads <= 1:
            results = [self._send_group(g) for g in groups]
        else:
            with ThreadPoolExecutor(max_workers=min(self.threads, len(groups)), thread_name_prefix="send") as pool:
                results = list(pool.map(self._send_group, groups))
        for r in results:
            stats.delivered += r.delivered
            stats.failed += r.failed
            stats.recovered += r.recovered
        return stats

    def _send_group(self, ids: list[int]) -> SendStats:
        stats = SendStats()
        for mid in ids:
            outcome = self._send_one(mid)
            if outcome == "failed":
                stats.failed += 1
                break  # keep the thread's order: later messages wait for this one
            if outcome == "skipped":
                break
            stats.delivered += 1
            if outcome == "recovered":
                stats.recovered += 1
        return stats

    # ---- one message ------------------------------------------------------------------------

    def _claim(self, mid: int) -> Claim | None:
        now = utcnow()
        with self.s.db.session() as s:
            taken = s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == mid,
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.attempts < MAX_ATTEMPTS,
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .values(claimed_by=self.me, claimed_until=now + self.claim, attempts=OutboxMessage.attempts + 1)
            ).rowcount
            if not taken:
                return None
            m = s.get(OutboxMessage, mid, populate_existing=True)
            card_ts = None
            if m.subscription_id is not None:
                sub = s.get(Subscription, m.subscription_id)
                card_ts = sub.card_ts if sub is not None else None
            return Claim(m.id, m.idempotency_key, m.kind, m.channel_id, dict(m.payload or {}), m.attempts, m.subscription_id, m.job_id, card_ts)

    def _send_one(self, mid: int) -> str:
        c = self._claim(mid)
        if c is None:
            return "skipped"
        try:
            if c.kind in {"card_update", "reply", "chart"} and c.card_ts is None:
                raise _Wait("the job card is not posted yet")
            if c.kind == "edit":
                c.card_ts = self._edited_ts(c)
            found = self._already_posted(c) if c.attempts > 1 else None
            ts = found or self._deliver(c)
        except _Wait as exc:
            self._record_failure(c, exc, delay=2.0)
            return "failed"
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried later
            self._record_failure(c, exc)
            return "failed"
        self._record_success(c, ts)
        return "recovered" if found else "delivered"

    def _metadata(self, c: Claim) -> dict[str, Any]:
        return {"event_type": METADATA_TYPE, "event_payload": {"key": c.key}}

    def _deliver(self, c: Claim) -> str:
        if c.kind == "card":
            msg = self._render_card(c)
            resp = self.client.chat_postMessage(channel=c.channel, text=msg["text"], blocks=msg["blocks"], metadata=self._metadata(c), unfurl_links=False)
            return resp["ts"]
        if c.kind == "card_update":
            msg = self._render_card(c)
            self.client.chat_update(channel=c.channel, ts=c.card_ts, text=msg["text"], blocks=msg["blocks"])
            return c.card_ts or ""
        if c.kind == "edit":
            # An edit of a message this outbox posted (payload["edit_of"] is its key): drawn when queued.
            self.client.chat_update(channel=c.channel, ts=c.card_ts, text=c.payload.get("text", ""), blocks=c.payload.get("blocks"))
            return c.card_ts or ""
        if c.kind in {"reply", "alert", "post"}:
            thread = c.card_ts if c.kind == "reply" else c.payload.get("thread_ts")
            resp = self.client.chat_postMessage(
                channel=c.channel, text=c.payload.get("text", ""), blocks=c.payload.get("blocks"), thread_ts=thread, metadata=self._metadata(c), unfurl_links=False
            )
            return resp["ts"]
        if c.kind == "chart":
            provider_id, png = self._render_chart(c)
            resp = self.client.files_upload_v2(
                channel=c.channel, thread_ts=c.card_ts, content=png, filename=chart_filename(provider_id), title=f"Loss chart for {provider_id}"
            )
            files = resp.get("files") or [resp.get("file") or {}]
            return str(files[0].get("id", ""))
        raise ValueError(f"unknown outbox kind {c.kind!r}")

    def _already_posted(self, c: Claim) -> str | None:
        """After an interrupted attempt: is the message in Slack already? Its ts if so."""
        if c.kind in {"card_update", "edit"}:
            return None  # an edit is harmless to repeat
        if c.kind == "chart":
            name = self._chart_name(c)
            msgs = self.client.conversations_replies(channel=c.channel, ts=c.card_ts, limit=1000)["messages"]
            for m in msgs:
                for f in m.get("files") or []:
                    if f.get("name") == name:
                        return str(f.get("id"))
            return None
        if c.kind == "reply":
            msgs = self.client.conversations_replies(channel=c.channel, ts=c.card_ts, include_all_metadata=True, limit=1000)["messages"]
        else:
            msgs = self.client.conversations_history(channel=c.channel, include_all_metadata=True, limit=200)["messages"]
        for m in msgs:
            md = m.get("metadata") or {}
            if md.get("event_type") == METADATA_TYPE and (md.get("event_payload") or {}).get("key") == c.key:
                return m["ts"]
        return None

    # ---- rendering at send time: a late message shows the latest state ----------------------

    def _render_card(self, c: Claim) -> dict[str, Any]:
        with self.s.db.session() as s:
            job = s.get(Job, c.job_id)
            if job is None:
                raise _Wait("job row missing")
            return job_card(view_of(job), utcnow())

    def _edited_ts(self, c: Claim) -> str:
        with self.s.db.session() as s:
            ts = s.scalar(select(OutboxMessage.delivered_ts).where(OutboxMessage.idempotency_key == c.payload.get("edit_of")))
        if not ts:
            raise _Wait("the message to edit is not posted yet")
        return ts

    def _chart_name(self, c: Claim) -> str:
        with self.s.db.session() as s:
            job = s.get(Job, c.job_id)
            return chart_filename(job.provider_job_id if job else "job")

    def _render_chart(self, c: Claim) -> tuple[str, bytes]:
        with self.s.db.session() as s:
            job = s.get(Job, c.job_id)
            if job is None:
                raise _Wait("job row missing")
            points = [
                Point(p.step, p.train_loss, p.valid_loss, p.train_accuracy, p.valid_accuracy)
                for p in s.scalars(select(MetricPoint).where(MetricPoint.job_id == job.id).order_by(MetricPoint.step))
            ]
            ckpts = list(s.scalars(select(Checkpoint.step_number).where(Checkpoint.job_id == job.id)))
            provider_id, status = job.provider_job_id, job.status
        return provider_id, loss_chart_png(points, title=f"{provider_id} ({status})", checkpoints=ckpts)

    # ---- bookkeeping ------------------------------------------------------------------------

    def _record_success(self, c: Claim, ts: str) -> None:
        now = utcnow()
        with self.s.db.session() as s:
            m = s.get(OutboxMessage, c.id)
            m.delivered_at = now
            m.delivered_ts = ts
            m.claimed_by = None
            m.claimed_until = None
            m.last_error = None
            if c.kind == "card" and c.subscription_id is not None:
                sub = s.get(Subscription, c.subscription_id)
                if sub is not None:
                    sub.card_ts = ts

    def _record_failure(self, c: Claim, exc: Exception, delay: float | None = None) -> None:
        error = type(exc).__name__
        permanent = False
        if isinstance(exc, SlackApiError):
            resp = exc.response
            error = str(resp.get("error") or f"http {resp.status_code}")
            permanent = error in PERMANENT
            if resp.status_code == 429:
                try:
                    delay = float(resp.headers.get("Retry-After") or resp.headers.get("retry-after") or 1)
                except (TypeError, ValueError):
                    delay = 1.0
        elif isinstance(exc, _Wait):
            error = str(exc)
        if delay is None:
            delay = min(300.0, 0.5 * 2 ** min(c.attempts, 10))
        with self.s.db.session() as s:
            m = s.get(OutboxMessage, c.id)
            m.claimed_by = None
            m.claimed_until = None
            m.next_attempt_at = utcnow() + timedelta(seconds=delay)
            m.last_error = error[:500]
            if permanent or (isinstance(exc, _Wait) and c.attempts >= MAX_ATTEMPTS):
                m.attempts = MAX_ATTEMPTS
        log.warning("slack %s for %s failed (%s), attempt %d%s", c.kind, c.key, error, c.attempts, "; giving up" if permanent else f"; retry in {delay:.1f}s")


class _Wait(Exception):
    """Not deliverable yet (its card is not posted); try again shortly."""
