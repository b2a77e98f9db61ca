"""A dataset arriving from Slack, whichever way it came: claimed once, downloaded, checked, uploaded
(when clean, or when the user insists), registered, and answered in the conversation it came from."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.datasets.download import SLACK_MAX_BYTES, DownloadError, download, file_info
from bot.datasets.models import DEFAULT_MODEL
from bot.datasets.register import Registered, register
from bot.datasets.validate import MAX_LINE_BYTES, validate_file
from bot.messages.dataset_report import ReportContext, dataset_report, intake_problem
from bot.provider.base import ProviderError
from bot.services import Services
from storage.models import DatasetIntake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    team_id: str
    slack_file_id: str
    user_id: str
    channel_id: str | None  # where to answer; None: a DM to the user
    thread_ts: str | None = None
    force: bool = False  # "upload anyway" on a file with errors
    model: str = DEFAULT_MODEL
    explicit: bool = False  # the user asked for this file (modal, button): say so if it is not .jsonl
    provider: str | None = None  # where it goes (None: FTBOT_DEFAULT_PROVIDER)

    @property
    def kind(self) -> str:
        # One intake per file and provider: the same file may go to two providers.
        base = "force" if self.force else "validate"
        return base if self.provider is None else f"{base[0]}@{self.provider}"[:16]


@dataclass
class Limits:
    """Parameters so tests can stay small: what Slack allows, and the validator's line cap."""

    max_bytes: int = SLACK_MAX_BYTES
    max_line_bytes: int = MAX_LINE_BYTES


LIMITS = Limits()


def _claim(services: Services, a: Arrival) -> bool:
    try:
        with services.db.session() as s:
            s.add(DatasetIntake(team_id=a.team_id, slack_file_id=a.slack_file_id, kind=a.kind, user_id=a.user_id, channel_id=a.channel_id))
        return True
    except IntegrityError:
        return False


def _release(services: Services, a: Arrival) -> None:
    with services.db.session() as s:
        s.execute(
            delete(DatasetIntake).where(
                DatasetIntake.team_id == a.team_id, DatasetIntake.slack_file_id == a.slack_file_id, DatasetIntake.kind == a.kind
            )
        )


def _post(services: Services, a: Arrival, message: dict) -> None:
    try:
        services.slack.chat_postMessage(channel=a.channel_id or a.user_id, thread_ts=a.thread_ts, **message)
    except SlackApiError as exc:
        if a.channel_id is None or exc.response.get("error") not in ("not_in_channel", "channel_not_found", "is_archived"):
            raise
        # Not a member of the channel the modal was opened in: tell the user directly.
        services.slack.chat_postMessage(channel=a.user_id, **message)


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
        return _process(services, a, info, limits)
    except Exception:
        # Let a new share of the file (or a new press) try again; the user hears about it.
        _release(services, a)
        log.exception("dataset intake failed for %s", a.slack_file_id)
        _post(services, a, intake_problem(a.user_id, info.name, "Something went wrong while checking it; share the file again to retry."))
        return "failed"


def _process(services: Services, a: Arrival, info, limits: Limits) -> str:  # noqa: ANN001
    try:
        dl = download(services.settings.slack_bot_token or "", info, max_bytes=limits.max_bytes)
    except DownloadError as exc:
        _release(services, a)
        _post(services, a, intake_problem(a.user_id, info.name, str(exc)))
        return "rejected"
    try:
        report = validate_file(dl.path, model=a.model, max_line_bytes=limits.max_line_bytes, price_overrides=dict(services.settings.price_table))
        ctx = ReportContext(name=info.name, user_id=a.user_id, slack_file_id=info.id, model=a.model, channel_id=a.channel_id, thread_ts=a.thread_ts, provider=a.provider)
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
