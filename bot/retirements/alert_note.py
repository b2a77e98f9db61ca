"""A new model whose base stops serving soon says so in its job's final alert (registered with
bot/jobs/alert_notes.py by bot/wiring.py); and a model that just appeared is checked for the 30/7/1
day warnings at once (a subscriber of ModelAppeared, after the poll's commit: it may ask the
provider for its dates, and a failure is covered by the hourly check)."""

from __future__ import annotations

import logging

from bot.events import Context, ModelAppeared
from bot.messages.job_card import ServingNote
from bot.retirements.live import retirements_for
from bot.retirements.warnings import plan_retirement_warnings
from bot.services import Services
from storage.types import utcnow

log = logging.getLogger(__name__)

SOON_DAYS = 30  # a new model whose base stops serving within this many days says so in its alert


def serving_note(services: Services, provider: str, model: str, base: str | None) -> ServingNote | None:
    serving = retirements_for(services).end_of(provider, model, base=base)
    days = serving.days_left(utcnow().date())
    if days is not None and days <= SOON_DAYS and serving.serving_ends is not None:
        return ServingNote(serving.base_model, serving.serving_ends, days, serving.source)
    return None


def cover_new_models(ctx: Context, events: list[ModelAppeared]) -> None:
    """A model that just appeared is warned about now if its end is near, not at the next hourly check."""
    services = ctx.services
    if services is None or not events:
        return  # announced without the services (never by the poller): the hourly check covers it
    plan_retirement_warnings(services.db, retirements_for(services), today=utcnow().date(), notify_channel=services.settings.notify_channel, models=[e.model for e in events])
