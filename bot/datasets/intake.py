"""A dataset arriving from Slack, whichever way it came: claimed once, downloaded, checked, uploaded
(when clean, or when the user insists), registered, and answered in the conversation it came from."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from bot.datasets.download import (
    DOWNLOAD_DEADLINE,
    SLACK_MAX_BYTES,
    DownloadError,
    download,
    file_info,
    token_origins,
)
from bot.datasets.gemini_report import gemini_report
from bot.datasets.models import default_model_for
from bot.datasets.register import Registered, register
from bot.datasets.validate import MAX_LINE_BYTES, validate_file
from bot.messages.dataset_report import ReportContext, dataset_report, intake_problem
from bot.outbox.deliver import deliver_now
from bot.outbox.queue import enqueue
from bot.provider.base import ProviderError
from bot.retirements.sunset import training_closed, where_to_train
from bot.retirements.table import table_for
from bot.services import Services
from storage.models import DatasetIntake
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    team_id: str
    slack_file_id: str
    user_id: str
    channel_id: str | None  # where to answer; None: a DM to the user
    thread_ts: str | None = None
    force: bool = False  # "upload anyway" on a file with errors
    model: str | None = None  # None: the default base model of the provider it goes to
    explicit: bool = False  # the user asked for this file (modal, button): say so if it is not .jsonl
    provider: str | None = None  # where it goes (None: FTBOT_DEFAULT_PROVIDER)

    @property
    def kind(self) -> str:
        # One intake per file and provider: the same file may go to two providers.
        base = "force" if self.force else "validate"
        return base if self.provider is None else f"{base[0]}@{self.provider}"[:16]


@dataclass
class Limits:
    """Parameters so tests can stay small: what Slack allows, the download's deadline, and the validator's line cap."""

    max_bytes: int = SLACK_MAX_BYTES
    deadline: float = DOWNLOAD_DEADLINE
    max_line_bytes: int = MAX_LINE_BYTES


LIMITS = Limits()
# Longer than a 1 GB download and check take: a claim this old and unfinished belongs to a dead process.
STALE_CLAIM = timedelta(minutes=30)


def _claim(services: Services, a: Arrival) -> bool:
    """True when this delivery handles the file: the first one, or one that finds an earlier claim left
    unfinished for longer than any intake takes (its process died mid-download)."""
    try:
        with services.db.session() as s:
            s.add(DatasetIntake(team_id=a.team_id, slack_file_id=a.slack_file_id, kind=a.kind, user_id=a.user_id, channel_id=a.channel_id))
        return True
    except IntegrityError:
        pass
    now = utcnow()
    with services.db.session() as s:
        taken = s.execute(
            update(DatasetIntake)
            .where(
                DatasetIntake.team_id == a.team_id,
                DatasetIntake.slack_file_id == a.slack_file_id,
                DatasetIntake.kind == a.kind,
                DatasetIntake.finished_at.is_(None),
                DatasetIntake.created_at < now - STALE_CLAIM,
            )
            .values(created_at=now, user_id=a.user_id, channel_id=a.channel_id)
        ).rowcount
    if taken:
        log.warning("dataset intake of %s was left unfinished; taking it over", a.slack_file_id)
    return bool(taken)


def refuse_once(services: Services, a: Arrival) -> bool:
    """True the first time a file is refused to its sharer (both of Slack's events, retries: once)."""
    try:
        with services.db.session() as s:
            s.add(DatasetIntake(team_id=a.team_id, slack_file_id=a.slack_file_id, kind="denied", user_id=a.user_id, channel_id=a.channel_id, finished_at=utcnow()))
        return True
    except IntegrityError:
        return False


def _finish(services: Services, a: Arrival) -> None:
    with services.db.session() as s:
        s.execute(
            update(DatasetIntake)
            .where(DatasetIntake.team_id == a.team_id, DatasetIntake.slack_file_id == a.slack_file_id, DatasetIntake.kind == a.kind)
            .values(finished_at=utcnow())
        )


def _release(services: Services, a: Arrival) -> None:
    with services.db.session() as s:
        s.execute(
            delete(DatasetIntake).where(
                DatasetIntake.team_id == a.team_id, DatasetIntake.slack_file_id == a.slack_file_id, DatasetIntake.kind == a.kind
            )
        )


def _post(services: Services, a: Arrival, message: dict) -> None:
    """Through the outbox, so a Slack outage delays the answer instead of losing it. A channel the bot
    cannot post in (the modal was opened in a private channel it is not in) falls back to a DM."""
    channel = a.channel_id or a.user_id
    payload = {**message, "thread_ts": a.thread_ts}
    if channel != a.user_id:
        payload["fallback_channel"] = a.user_id
    with services.db.session() as s:
        enqueue(s, f"dataset:{uuid.uuid4().hex}", kind="post", channel=channel, payload=payload, team_id=a.team_id)
    deliver_now(services, channels=[channel])


def take_in(services: Services, a: Arrival, limits: Limits | None = None) -> str:
    """Returns what happened ("ignored", "duplicate", "rejected", "uploaded", "reused", "failed") for logs and tests."""
    limits = limits or LIMITS
    try:
        info = file_info(services.slack, a.slack_file_id)
    except DownloadError as exc:
        _post(services, a, intake_problem(a.user_id, a.slack_file_id, str(exc)))
        return "failed"
    if not info.name.lower().endswith(".jsonl"):
        if a.explicit:
            _post(services, a, intake_problem(a.user_id, info.name, "Fine-tuning takes `.jsonl` files only."))
        return "ignored"
    if not _claim(services, a):
        return "duplicate"
    try:
        outcome = _process(services, a, info, limits)
        _finish(services, a)  # a released claim (to let a retry in) has no row left to finish
        return outcome
    except Exception:
        # Let a new share of the file (or a new press) try again; the user hears about it.
        _release(services, a)
        log.exception("dataset intake failed for %s", a.slack_file_id)
        _post(services, a, intake_problem(a.user_id, info.name, "Something went wrong while checking it; share the file again to retry."))
        return "failed"


def _process(services: Services, a: Arrival, info, limits: Limits) -> str:  # noqa: ANN001
    try:
        origins = token_origins(services.settings.slack_api_url)
        dl = download(services.settings.slack_bot_token or "", info, origins=origins, max_bytes=limits.max_bytes, deadline=limits.deadline)
    except DownloadError as exc:
        _release(services, a)
        _post(services, a, intake_problem(a.user_id, info.name, str(exc)))
        return "rejected"
    try:
        provider = a.provider or services.default_provider
        model = a.model or default_model_for(provider)
        if provider == "vertex":  # Gemini's format and limits: what the upload will convert and check
            report = gemini_report(dl.path, model=model, price_per_mtok=services.settings.vertex_price_per_mtok)
        else:
            report = validate_file(
                dl.path,
                model=model,
                max_line_bytes=limits.max_line_bytes,
                price_overrides=dict(services.settings.price_table),
                retirements=table_for(services.settings.retirements_file),
                provider=provider,
            )
        ctx = ReportContext(name=info.name, user_id=a.user_id, slack_file_id=info.id, model=model, channel_id=a.channel_id, thread_ts=a.thread_ts, provider=a.provider)
        closed = training_closed(services, provider, model)
        if closed is not None and closed.training_ends is not None:
            other = where_to_train(services, besides=provider)
            ctx.training_ended = (closed.training_ends, closed.training_source)
            ctx.train_instead = (other.provider, other.label, other.model) if other else None
        if not report.ok and not a.force:
            _post(services, a, dataset_report(report, ctx))
            return "rejected"
        try:
            reg: Registered = register(
                services, team_id=a.team_id, name=info.name, path=dl.path, size=dl.bytes, sha256=dl.sha256, report=report, user_id=a.user_id, provider=a.provider
            )
        except ProviderError as exc:
            _release(services, a)
            _post(services, a, intake_problem(a.user_id, info.name, f"The provider did not take it: {exc}. Share it again to retry."))
            return "failed"
        ctx.provider_file_id, ctx.reused = reg.provider_file_id, reg.reused
        _post(services, a, dataset_report(report, ctx))
        return "reused" if reg.reused else "uploaded"
    finally:
        dl.remove()
