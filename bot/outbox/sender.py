"""Deliver the outbox to Slack: in order per subscription, with retries and backoff, never twice,
and never dropped without a reason a person can act on.

Exactly once, even if the process dies between Slack's answer and our record of it: each attempt is
recorded in the database *before* the call (`uncertain_since`), and a message whose earlier attempt
may have gone through is first looked for in the channel from that moment on (every post carries its
idempotency key as message metadata; a chart is known by its file name) before it is sent again. If
the channel cannot be read (a public channel the bot posts to without being a member), it is posted
again: a possible duplicate is better than a lost message.

What Slack's refusals mean here:
- transient (5xx, a dropped connection, anything unknown): retried with backoff, for about a day;
  then given up at error level.
- rate limited (429): Slack did nothing; the message is rescheduled after its Retry-After (no sleep,
  no claim held, not counted as a failure) and only what was limited waits: that channel's posts or
  that method (pacing.py). Calls are paced to Slack's published limits so a burst meets few 429s.
- the channel is gone (archived, deleted, the bot removed): that channel's queue stops at once, its
  subscriptions end, and the job's origin channel (or the notify channel) is told once.
- the token is refused (revoked, inactive, missing scope): sending pauses for everyone, nothing is
  discarded; auth.test is probed until the token works again.
- this message cannot be sent (too long, invalid blocks): it is given up with its error.
Given-up messages and a pause are logged at error level and reported by /healthz.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.outbox.block_fallback import FallbackClient, Memory
from bot.outbox.claims import ClaimKeeper, held
from bot.outbox.digest import gather_endings
from bot.outbox.notices import channel_ended_notice
from bot.outbox.pacing import POST, Pacer
from bot.outbox.renderers import File, NotReady, Renderer, Row, renderer_for
from bot.services import Services
from bot.slack_client import make_web_client
from storage.models import DeliveryPause, Job, OutboxMessage, Subscription
from storage.types import utcnow

log = logging.getLogger(__name__)

METADATA_TYPE = "ftbot_message"
PAUSE_SCOPE = "slack"
# About a day of retries: backoff doubles from 0.5 s to 5 minutes, then every 5 minutes.
MAX_TRANSIENT_ATTEMPTS = 300
MAX_BACKOFF = 300.0
# Slack's clock and ours may differ; the read-back looks this much earlier than the first attempt.
RECOVERY_MARGIN = timedelta(minutes=10)
RECOVERY_PAGE = 200
PER_THREAD = 100  # messages of one thread per send cycle
READBACK = "_readback_cursor"  # payload key: where an undecided read-back goes on

# The token or the app is refused: no message can go out until a person fixes it. (auth.test, the
# probe that ends a pause, fails for these too; a missing scope is not here: auth.test needs none.)
ACCOUNT_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "team_access_not_granted", "not_allowed_token_type", "org_login_required"}
)
# The channel cannot be posted to any more.
CHANNEL_ERRORS = frozenset({"channel_not_found", "is_archived", "not_in_channel", "restricted_action"})
# This message cannot be sent as it is; others can.
MESSAGE_ERRORS = frozenset(
    {"missing_scope", "no_permission", "ekm_access_denied", "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "message_not_found", "cant_update_message", "edit_window_closed", "invalid_arguments", "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large", "too_many_attachments"}
)
# A read-back the bot is not allowed to do: post instead of guessing.
UNREADABLE = frozenset({"not_in_channel", "missing_scope", "channel_not_found", "thread_not_found"})


@dataclass
class SendStats:
    delivered: int = 0
    failed: int = 0
    recovered: int = 0  # found already posted after an interrupted attempt
    deferred: int = 0  # rescheduled to keep to Slack's rate limits (paced, or a 429's Retry-After)
    gave_up: int = 0
    paused: bool = False


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
    uncertain_since: datetime | None  # before this attempt: an earlier attempt may have posted
    readback: str | None = None  # where an undecided read-back goes on (a history cursor)


def slack_error(exc: BaseException) -> tuple[str, bool]:
    """(error code, whether Slack answered). An answer means the call did nothing when it failed;
    no answer, or a 5xx, leaves it unknown whether the message went out."""
    if isinstance(exc, SlackApiError):
        resp = exc.response
        status = getattr(resp, "status_code", 200)
        if status >= 500:
            return f"http {status}", False
        data = resp.data if isinstance(resp.data, dict) else {}
        return str(data.get("error") or f"http {status}"), True
    return type(exc).__name__, False


def delivery_health(db: Any) -> dict[str, Any]:
    """What /healthz reports about delivery: a pause, and the count of given-up messages."""
    with db.session() as s:
        pause = s.get(DeliveryPause, PAUSE_SCOPE)
        gave_up = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.gave_up_at.is_not(None)))
        waiting = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None)))
        return {
            "sending": "paused" if pause is not None else "ok",
            "paused_reason": pause.reason if pause is not None else None,
            "paused_since": pause.since.isoformat() if pause is not None else None,
            "given_up": int(gave_up or 0),
            "waiting": int(waiting or 0),
        }


class Sender:
    def __init__(
        self,
        services: Services,
        worker_id: str,
        *,
        claim_seconds: float = 60.0,
        threads: int = 8,
        client: WebClient | None = None,
        probe_seconds: float = 30.0,
        max_attempts: int = MAX_TRANSIENT_ATTEMPTS,
    ) -> None:
        self.s = services
        self.me = worker_id
        self.claim = timedelta(seconds=claim_seconds)
        # No retries inside the client at all: a 429 is rescheduled (Retry-After) instead of slept on
        # while holding a thread and a claim, and an unsure failure is read back before a new post.
        # Posts and edits whose newer blocks Slack refuses go again with classic ones (block_fallback).
        self.client = FallbackClient(client or make_web_client(services.settings.slack_bot_token, services.settings.slack_api_url, retry_unsure=False, retry_rate_limited=False), Memory(services.db))
        self.keeper = ClaimKeeper(services.db, worker_id, self.claim)
        self.pacer = Pacer(enabled=services.settings.slack_pacing)
        self.threads = threads
        self.probe_seconds = probe_seconds
        self.max_attempts = max_attempts
        self._last_probe = float("-inf")
        self._halt = threading.Event()  # the token was refused during this cycle: stop every group

    # ---- selection --------------------------------------------------------------------------

    def pending_groups(self, limit: int = 1000, subscription_ids: list[int] | None = None, channels: list[str] | None = None, *, now: datetime | None = None) -> list[list[int]]:
        """Due message ids grouped by thread (subscription, or channel for messages without one),
        oldest first. Only threads whose oldest undelivered message is due are read, so any number of
        messages waiting out a backoff never hides a due one. Three plain queries rather than one
        correlated query: their plans stay good whatever the planner's statistics say.

        `subscription_ids` / `channels` narrow it to some job threads / to the messages outside any
        job thread in some channels (approval requests and their edits)."""
        now = now or utcnow()
        o = OutboxMessage
        pending = [o.delivered_at.is_(None), o.gave_up_at.is_(None)]
        due = [*pending, o.next_attempt_at <= now, or_(o.claimed_until.is_(None), o.claimed_until < now)]
        cols = (o.id, o.subscription_id, o.channel_id)
        with self.s.db.session() as s:
            # 1. each thread's oldest undelivered message (one row per thread, aggregated in the database)
            q = select(func.min(o.id)).where(*pending, o.subscription_id.is_not(None)).group_by(o.subscription_id)
            if subscription_ids is not None:
                q = q.where(o.subscription_id.in_(subscription_ids))
            heads = list(s.scalars(q)) if channels is None else []
            if subscription_ids is None:
                loose = select(func.min(o.id)).where(*pending, o.subscription_id.is_(None))
                if channels is not None:
                    loose = loose.where(o.channel_id.in_(channels))
                heads += s.scalars(loose.group_by(o.channel_id))
            # 2. the threads whose oldest message is due
            subs: set[int] = set()
            due_channels: set[str] = set()
            for chunk in _chunks(heads):
                for _, sub_id, channel in s.execute(select(*cols).where(o.id.in_(chunk), *due)):
                    (subs.add(sub_id) if sub_id is not None else due_channels.add(channel))
            # 3. their due messages, oldest first, a few per thread so one long backlog does not fill the cycle
            rows: list[Any] = []
            for chunk in _chunks(sorted(subs)):
                rows += _first_per_thread(s, select(*cols).where(*due, o.subscription_id.in_(chunk)), o.subscription_id, PER_THREAD, limit)
            for chunk in _chunks(sorted(due_channels)):
                rows += _first_per_thread(s, select(*cols).where(*due, o.subscription_id.is_(None), o.channel_id.in_(chunk)), o.channel_id, PER_THREAD, limit)
        groups: dict[Any, list[int]] = {}
        for mid, sub_id, channel in sorted(rows, key=lambda r: r[0])[:limit]:
            groups.setdefault(sub_id if sub_id is not None else ("channel", channel), []).append(mid)
        # Channel-level messages (digests, approval requests) first: they take a channel's first
        # posting slots, ahead of the thread replies of the same burst.
        return [g for k, g in groups.items() if isinstance(k, tuple)] + [g for k, g in groups.items() if not isinstance(k, tuple)]

    def send_pending(self, limit: int = 1000, subscription_ids: list[int] | None = None, channels: list[str] | None = None, defer_kinds: frozenset[str] = frozenset()) -> SendStats:
        """`defer_kinds`: each thread stops before its first message of these kinds (charts take
        ~150 ms of CPU each to draw; the alerts of many jobs ending at once go first)."""
        stats = SendStats()
        if self.paused():
            stats.paused = True
            return stats
        self._halt.clear()
        # One clock for gathering and picking: alerts the digest holds until a moment between the
        # two would otherwise be picked as due and posted alone.
        now = utcnow()
        if subscription_ids is None:
            try:
                gather_endings(self.s.db, channels, now=now)  # many endings in a channel: one digest post
            except Exception:  # noqa: BLE001 - the alerts then go one by one
                log.exception("gathering job endings into a digest failed")
        groups = self.pending_groups(limit, subscription_ids, channels, now=now)
        if defer_kinds and groups:
            groups = self._cut_at(groups, defer_kinds)
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
            stats.gave_up += r.gave_up
            stats.deferred += r.deferred
        stats.paused = self._halt.is_set()
        return stats

    def _cut_at(self, groups: list[list[int]], kinds: frozenset[str]) -> list[list[int]]:
        deferred: set[int] = set()
        with self.s.db.session() as s:
            for chunk in _chunks([m for g in groups for m in g]):
                deferred.update(s.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(chunk), OutboxMessage.kind.in_(list(kinds)))))
        cut = []
        for g in groups:
            head = []
            for mid in g:
                if mid in deferred:
                    break
                head.append(mid)
            if head:
                cut.append(head)
        return cut

    def _send_group(self, ids: list[int]) -> SendStats:
        stats = SendStats()
        for mid in ids:
            if self._halt.is_set():
                break
            outcome = self._send_one(mid)
            if outcome == "gave_up":
                stats.gave_up += 1
                continue  # it no longer holds the thread back
            if outcome == "failed":
                stats.failed += 1
                break  # keep the thread's order: later messages wait for this one
            if outcome == "deferred":
                stats.deferred += 1
                break
            if outcome in {"skipped", "paused", "channel_ended"}:
                break
            stats.delivered += 1
            if outcome == "recovered":
                stats.recovered += 1
        return stats

    # ---- the account-wide pause -------------------------------------------------------------

    def paused(self) -> bool:
        """Whether sending is paused; while it is, probe auth.test now and then and resume when it works."""
        with self.s.db.session() as s:
            pause = s.get(DeliveryPause, PAUSE_SCOPE)
            if pause is None:
                return False
            reason, since = pause.reason, pause.since
        if time.monotonic() - self._last_probe < self.probe_seconds:
            return True
        self._last_probe = time.monotonic()
        try:
            self.client.auth_test()
        except Exception as exc:  # noqa: BLE001 - any failure keeps the pause
            error, _ = slack_error(exc)
            log.error("Slack sending is still PAUSED (since %s, %s): auth.test answered %s; nothing is discarded", since.isoformat(), reason, error)
            return True
        with self.s.db.session() as s:
            s.execute(delete(DeliveryPause).where(DeliveryPause.scope == PAUSE_SCOPE))
        log.warning("Slack accepts the bot token again (auth.test ok): sending resumed after a pause for %s since %s", reason, since.isoformat())
        return False

    def _pause(self, error: str) -> None:
        self._halt.set()
        self._last_probe = time.monotonic()
        try:
            with self.s.db.session() as s:
                if s.get(DeliveryPause, PAUSE_SCOPE) is not None:
                    return
                s.add(DeliveryPause(scope=PAUSE_SCOPE, reason=error[:64], since=utcnow()))
        except IntegrityError:
            return  # another thread or process paused first and said so
        log.error(
            "SLACK SENDING PAUSED: Slack refused the bot token (%s). Every message is kept; check SLACK_BOT_TOKEN and the app's scopes. "
            "Sending resumes by itself once auth.test succeeds (probed every %.0fs).",
            error,
            self.probe_seconds,
        )

    # ---- one message ------------------------------------------------------------------------

    def _claim(self, mid: int) -> Claim | None:
        now = utcnow()
        with self.s.db.session() as s:
            taken = s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == mid,
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.gave_up_at.is_(None),
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .values(claimed_by=self.me, claimed_until=now + self.claim, attempts=OutboxMessage.attempts + 1)
            ).rowcount
            if not taken:
                return None
            m = s.get(OutboxMessage, mid, populate_existing=True)
            prior = m.uncertain_since
            # From here on this attempt may post: if we die before recording the answer, the next one looks first.
            m.uncertain_since = prior or now
            card_ts = None
            if m.subscription_id is not None:
                sub = s.get(Subscription, m.subscription_id)
                card_ts = sub.card_ts if sub is not None else None
            payload = dict(m.payload or {})
            readback = payload.pop(READBACK, None) if prior is not None else None
            return Claim(m.id, m.idempotency_key, m.kind, m.channel_id, payload, m.attempts, m.subscription_id, m.job_id, card_ts, prior, readback)

    def _send_one(self, mid: int) -> str:
        c = self._claim(mid)
        if c is None:
            return "skipped"
        self.keeper.hold(c.id, c.attempts)
        try:
            return self._attempt(c)
        finally:
            self.keeper.drop(c.id)

    def _attempt(self, c: Claim) -> str:
        found = None
        try:
            if (c.kind in {"card_update", "reply"} or (self._is_file(c) and c.subscription_id is not None)) and c.card_ts is None:
                card_error = self._card_given_up(c)
                if card_error:
                    self._give_up(c, f"card_not_posted ({card_error})", answered=True)
                    return "gave_up"
                raise _Wait("the job card is not posted yet")
            if c.kind == "edit":
                c.card_ts = self._edited_ts(c)
            # An edit is harmless to repeat; anything else that may have gone out is looked for first.
            reads = c.uncertain_since is not None and c.kind not in {"card_update", "edit"}
            if reads:
                self._paced(c, "conversations.replies" if self._thread_of(c) else "conversations.history")
            # Both slots before the read, so a read is followed by its post, not by another read later.
            self._paced(c, self._method_of(c))
            found = self._already_posted(c) if reads else None
            if reads and not found:
                c.uncertain_since = None  # looked: not there; a refusal of the post below leaves nothing to look for
            ts = found or self._deliver(c)
        except _TargetGivenUp as exc:
            # Waiting would hold every later message of its channel for ever.
            self._give_up(c, f"edit_target_not_posted ({exc})", answered=True)
            return "gave_up"
        except (_Wait, NotReady) as exc:
            self._retry(c, str(exc), answered=True, delay=2.0, counted=False)
            return "failed"
        except _Undecided:
            self._retry(c, "read-back continues on the next page", answered=True, delay=0.0, counted=False, quiet=True)
            return "deferred"
        except _Paced as exc:
            # Not sent: rescheduled for its slot, the claim let go; its thread waits, others go on.
            self._retry(c, f"paced ({exc.method})", answered=True, delay=exc.seconds, counted=False, quiet=True)
            return "deferred"
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            return self._failed(c, exc)
        if not self._record_success(c, ts):
            return "skipped"
        return "recovered" if found else "delivered"

    def _failed(self, c: Claim, exc: Exception) -> str:
        error, answered = slack_error(exc)
        if answered and error in ACCOUNT_ERRORS:
            self._retry(c, error, answered=True, delay=0.0, counted=False)
            self._pause(error)
            return "paused"
        if answered and error == "not_in_channel" and self._is_file(c):
            # chat:write.public covers messages but not files: only the file cannot go.
            self._give_up(c, "not_in_channel (files need the bot in the channel: invite it)", answered=True)
            return "gave_up"
        if answered and error in CHANNEL_ERRORS:
            self._fall_back(c, error)
            self._end_channel(c, error)
            return "channel_ended"
        if answered and error in MESSAGE_ERRORS:
            self._give_up(c, error, answered=True)
            return "gave_up"
        if isinstance(exc, SlackApiError) and exc.response.status_code == 429:
            # Slack did nothing. Wait as told, by rescheduling (no thread and no claim held), and hold
            # only what was limited: this channel's posts, or that method; not counted as a failure.
            try:
                delay = float(exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after") or 1)
            except (TypeError, ValueError):
                delay = 1.0
            method = str(getattr(exc.response, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1] or self._method_of(c)
            self.pacer.hold(method, c.channel, delay)
            self._retry(c, f"ratelimited ({method}, Retry-After {delay:g}s)", answered=True, delay=delay, counted=False, quiet=True)
            log.info("slack %s answered 429 for %s in %s: retry in %gs", method, c.key, c.channel, delay)
            return "deferred"
        delay = None
        if c.attempts >= self.max_attempts:
            self._give_up(c, f"{error} (still failing after {c.attempts} attempts)", answered=answered)
            return "gave_up"
        self._retry(c, error, answered=answered, delay=delay, counted=True)
        return "failed"

    def _method_of(self, c: Claim) -> str:
        if c.kind in {"card_update", "edit"}:
            return "chat.update"
        if self._is_file(c):
            return "files.getUploadURLExternal"
        return POST

    def _paced(self, c: Claim, method: str) -> None:
        urgent = method == POST and c.kind in {"card", "alert", "post"} and not self._thread_of(c)
        wait = self.pacer.slot(method, c.channel, c.id, urgent=urgent)
        if wait > 0:
            raise _Paced(method, wait)

    def _metadata(self, c: Claim) -> dict[str, Any]:
        return {"event_type": METADATA_TYPE, "event_payload": {"key": c.key}}

    def _thread_of(self, c: Claim) -> str | None:
        if c.kind == "reply" or (self._is_file(c) and c.subscription_id is not None):
            return c.card_ts
        if c.payload.get("thread_of"):
            # In the thread of another message of the outbox (payload["thread_of"] is its key).
            return self._posted_ts(c.payload["thread_of"])
        return c.payload.get("thread_ts")

    def _deliver(self, c: Claim) -> str:
        if c.kind == "card":
            msg = self._drawn(c, required=True)
            resp = self.client.chat_postMessage(channel=c.channel, text=msg["text"], blocks=msg["blocks"], metadata=self._metadata(c), unfurl_links=False)
            return resp["ts"]
        if c.kind == "card_update":
            msg = self._drawn(c, required=True)
            self.client.chat_update(channel=c.channel, ts=c.card_ts, text=msg["text"], blocks=msg["blocks"])
            return c.card_ts or ""
        if c.kind == "edit":
            # An edit of a message this outbox posted (payload["edit_of"] is its key): drawn when
            # queued, or now by the renderer it names (a digest showing the headlines queued by now).
            msg = self._drawn(c) or c.payload
            self.client.chat_update(channel=c.channel, ts=c.card_ts, text=msg.get("text", ""), blocks=msg.get("blocks"))
            return c.card_ts or ""
        if self._is_file(c):
            f = self._drawn(c, required=True)
            assert isinstance(f, File)
            resp = self.client.files_upload_v2(channel=c.channel, thread_ts=self._thread_of(c), content=f.content, filename=f.filename, title=f.title)
            files = resp.get("files") or [resp.get("file") or {}]
            return str(files[0].get("id", ""))
        if c.kind in {"reply", "alert", "post"}:
            msg = self._drawn(c) or c.payload
            resp = self.client.chat_postMessage(
                channel=c.channel, text=msg.get("text", ""), blocks=msg.get("blocks"), thread_ts=self._thread_of(c), metadata=self._metadata(c), unfurl_links=False
            )
            return resp["ts"]
        raise ValueError(f"unknown outbox kind {c.kind!r}")

    # ---- drawing at send time: a late message shows the latest state --------------------------

    def _renderer(self, c: Claim, *, required: bool = False) -> Renderer | None:
        return renderer_for(c.kind, c.payload, required=required)

    def _is_file(self, c: Claim) -> bool:
        r = self._renderer(c)
        return r is not None and r.file_name is not None

    def _row(self, c: Claim) -> Row:
        return Row(self.s.db, c.key, c.kind, c.job_id, c.subscription_id, c.payload)

    def _drawn(self, c: Claim, *, required: bool = False) -> Any:
        """The message (or File) the row's renderer draws now; None when the payload is the message."""
        r = self._renderer(c, required=required)
        return r.render(self._row(c)) if r is not None else None

    def _file_name(self, c: Claim) -> str | None:
        r = self._renderer(c)
        return r.file_name(self._row(c)) if r is not None and r.file_name is not None else None

    # ---- after an interrupted attempt -------------------------------------------------------

    def _already_posted(self, c: Claim) -> str | None:
        """Is the message in Slack already? Its ts (a chart: its file id) if so, None to post it.

        One history call per attempt: Slack may allow an app one a minute (outside the Marketplace),
        15 messages a page. Only messages posted since the first uncertain attempt are read (Slack's
        `oldest`); if they fill more than a page and ours is not on it, the attempt ends undecided
        and the next one reads on from where this one stopped (the cursor is kept with the message),
        so a busy channel costs a call a page and never a second post. A 429 here reschedules the
        message like any 429. A channel the bot may post to but not read cannot tell: the message is
        posted again, since a duplicate is better than a lost message."""
        assert c.uncertain_since is not None
        oldest = f"{(c.uncertain_since - RECOVERY_MARGIN).timestamp():.6f}"
        thread = self._thread_of(c)
        name = self._file_name(c)
        try:
            if thread:
                resp = self.client.conversations_replies(channel=c.channel, ts=thread, oldest=oldest, include_all_metadata=True, limit=RECOVERY_PAGE, cursor=c.readback)
            else:
                resp = self.client.conversations_history(channel=c.channel, oldest=oldest, include_all_metadata=True, limit=RECOVERY_PAGE, cursor=c.readback)
        except SlackApiError as exc:
            error, answered = slack_error(exc)
            if not (answered and error in UNREADABLE):
                raise
            log.warning("cannot read back %s in %s (%s) after an interrupted attempt: posting it again, a duplicate is possible", c.key, c.channel, error)
            c.readback = None
            return None
        for m in resp.get("messages") or []:
            if name is not None:
                if any(f.get("name") == name for f in m.get("files") or []):
                    return str(next(f for f in m["files"] if f.get("name") == name).get("id"))
                continue
            md = m.get("metadata") or {}
            if md.get("event_type") == METADATA_TYPE and (md.get("event_payload") or {}).get("key") == c.key:
                return m["ts"]
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if resp.get("has_more") and cursor:
            c.readback = cursor
            raise _Undecided(cursor)
        c.readback = None
        return None

    # ---- the messages an attempt depends on ------------------------------------------------

    def _edited_ts(self, c: Claim) -> str:
        return self._posted_ts(c.payload.get("edit_of"))

    def _posted_ts(self, key: str | None) -> str:
        with self.s.db.session() as s:
            target = s.execute(
                select(OutboxMessage.delivered_ts, OutboxMessage.gave_up_at, OutboxMessage.last_error).where(OutboxMessage.idempotency_key == key)
            ).first()
        if target is not None and target.gave_up_at is not None and not target.delivered_ts:
            raise _TargetGivenUp(target.last_error or "given up")
        if target is None or not target.delivered_ts:
            raise _Wait("the message to edit is not posted yet")
        return target.delivered_ts

    def _card_given_up(self, c: Claim) -> str | None:
        """The error of the subscription's latest card if it was given up (nothing can go in its thread)."""
        with self.s.db.session() as s:
            card = s.execute(
                select(OutboxMessage.gave_up_at, OutboxMessage.last_error)
                .where(OutboxMessage.subscription_id == c.subscription_id, OutboxMessage.kind == "card")
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            ).first()
            return (card.last_error or "given up") if card is not None and card.gave_up_at is not None else None

    # ---- bookkeeping ------------------------------------------------------------------------

    def _take_back(self, s: Any, c: Claim) -> OutboxMessage | None:
        """End our claim, if we still hold it: the row, locked for this transaction, or None when the
        claim was lost (another sender took the message: what it records stands, not ours)."""
        if not s.execute(update(OutboxMessage).where(*held(self.me, c.id, c.attempts)).values(claimed_by=None, claimed_until=None)).rowcount:
            log.warning("slack %s %s: the claim was lost during the attempt; another sender's record stands", c.kind, c.key)
            return None
        return s.get(OutboxMessage, c.id, populate_existing=True)

    def _record_success(self, c: Claim, ts: str) -> bool:
        now = utcnow()
        with self.s.db.session() as s:
            m = self._take_back(s, c)
            if m is None:
                return False
            m.delivered_at = now
            m.delivered_ts = ts
            m.last_error = None
            if c.kind == "card" and c.subscription_id is not None:
                sub = s.get(Subscription, c.subscription_id)
                if sub is not None:
                    sub.card_ts = ts
        return True

    def _release(self, s: Any, c: Claim, error: str, *, answered: bool) -> OutboxMessage | None:
        m = self._take_back(s, c)
        if m is None:
            return None
        m.last_error = error[:500]
        if answered:
            m.uncertain_since = c.uncertain_since  # Slack answered: this attempt posted nothing
        kept = (m.payload or {}).get(READBACK)
        # The read-back's place is worth keeping only while the same uncertainty is being resolved.
        readback = c.readback if m.uncertain_since is not None and m.uncertain_since == c.uncertain_since else None
        if kept != readback:
            m.payload = {**{k: v for k, v in (m.payload or {}).items() if k != READBACK}, **({READBACK: readback} if readback else {})}
        return m

    def _retry(self, c: Claim, error: str, *, answered: bool, delay: float | None, counted: bool, quiet: bool = False) -> None:
        if delay is None:
            delay = min(MAX_BACKOFF, 0.5 * 2 ** min(c.attempts, 10))
        with self.s.db.session() as s:
            m = self._release(s, c, error, answered=answered)
            if m is None:
                return
            m.next_attempt_at = utcnow() + timedelta(seconds=delay)
            if not counted:
                m.attempts = max(0, m.attempts - 1)
        if counted and not quiet:
            log.warning("slack %s for %s failed (%s), attempt %d; retry in %.1fs", c.kind, c.key, error, c.attempts, delay)

    def _give_up(self, c: Claim, error: str, *, answered: bool) -> None:
        with self.s.db.session() as s:
            m = self._release(s, c, error, answered=answered)
            if m is None:
                return
            m.gave_up_at = utcnow()
        log.error("GAVE UP on slack %s %s in %s: %s (counted in /healthz as given_up)", c.kind, c.key, c.channel, error)

    def _fall_back(self, c: Claim, error: str) -> None:
        """A message that names another place to go (a dataset report: the uploader's DM) goes there."""
        fallback = c.payload.get("fallback_channel")
        if not fallback or fallback == c.channel:
            return
        payload = {k: v for k, v in c.payload.items() if k not in {"fallback_channel", "thread_ts", READBACK}}
        with self.s.db.session() as s:
            team = s.scalar(select(OutboxMessage.team_id).where(OutboxMessage.id == c.id))
            s.add(OutboxMessage(idempotency_key=f"{c.key}:fallback"[:255], kind=c.kind, channel_id=fallback, team_id=team, payload=payload))
        log.warning("slack %s %s refused in %s (%s): sent to %s instead", c.kind, c.key, c.channel, error, fallback)

    def _end_channel(self, c: Claim, error: str) -> None:
        """The channel cannot be posted to: stop its whole queue now, end its subscriptions, say so once."""
        now = utcnow()
        with self.s.db.session() as s:
            if self._release(s, c, error, answered=True) is None:
                return
            dropped = s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.channel_id == c.channel, OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None))
                .values(gave_up_at=now, last_error=f"channel {error}")
            ).rowcount
            ended: list[Subscription] = []
            for sub in s.scalars(select(Subscription).where(Subscription.channel_id == c.channel, Subscription.ended_at.is_(None)).order_by(Subscription.id)):
                # Conditional, so that of two senders meeting the same dead channel one tells.
                if s.execute(update(Subscription).where(Subscription.id == sub.id, Subscription.ended_at.is_(None)).values(ended_at=now, ended_reason=error[:64])).rowcount:
                    ended.append(sub)
            targets: dict[str, list[str]] = {}
            team = None
            for sub in ended:
                job = s.get(Job, sub.job_id)
                if job is None:
                    continue
                team = team or job.team_id
                for target in (job.origin_channel, self.s.settings.notify_channel):
                    if target and target != c.channel:
                        targets.setdefault(target, []).append(job.provider_job_id)
                        break
            for target, jobs in targets.items():
                digest = hashlib.sha256(f"{c.channel}:{target}:{','.join(str(x.id) for x in ended)}:{now.isoformat()}".encode()).hexdigest()[:16]
                s.add(OutboxMessage(idempotency_key=f"ended:{c.channel}:{digest}", kind="post", channel_id=target, team_id=team, payload=channel_ended_notice(c.channel, error, jobs, dropped)))
        log.error(
            "GAVE UP on channel %s (%s): %d queued messages dropped, %d subscriptions ended; told %s",
            c.channel,
            error,
            dropped,
            len(ended),
            ", ".join(targets) or "nobody (no origin or notify channel)",
        )


def _first_per_thread(s: Any, q: Any, thread: Any, per_thread: int, limit: int) -> list[Any]:
    ranked = q.add_columns(func.row_number().over(partition_by=thread, order_by=OutboxMessage.id).label("n")).subquery()
    return [r[:3] for r in s.execute(select(ranked).where(ranked.c.n <= per_thread).order_by(ranked.c.id).limit(limit))]


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Wait(Exception):
    """Not deliverable yet (its card is not posted); try again shortly."""


class _Undecided(Exception):
    """The read-back's page did not settle it; the next attempt reads on from its cursor."""


class _Paced(Exception):
    """Not yet: Slack's rate limit for this call (pacing, or a 429's Retry-After) says wait."""

    def __init__(self, method: str, seconds: float) -> None:
        super().__init__(method)
        self.method, self.seconds = method, seconds


class _TargetGivenUp(Exception):
    """The message an edit would change was given up: the edit never can go."""
