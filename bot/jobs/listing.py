"""The team's jobs and models as plain views: a page for `/ft list` and its buttons, the App Home's
list, `/ft models`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.jobs.store import count_jobs, recent_jobs, ts
from bot.jobs.view import JobView, view_of
from bot.messages.answers import ModelView
from bot.provider.base import Model, ProviderError, provider_label
from bot.retirements.live import retirements_for
from bot.services import Services
from storage.models import Job
from storage.types import utcnow

PAGE = 10
HOME_JOBS = 40


@dataclass(frozen=True)
class JobPage:
    jobs: list[JobView]
    offset: int
    total: int
    page: int


def list_page(services: Services, team_id: str, *, offset: int = 0, page: int = PAGE) -> JobPage:
    offset = max(0, offset)
    with services.db.session() as s:
        rows = recent_jobs(s, team_id, offset + page)[offset:]
        total = count_jobs(s, team_id)
        return JobPage([view_of(r) for r in rows], offset, total, page)


def home_jobs(services: Services, team_id: str, n: int = HOME_JOBS) -> list[JobView]:
    with services.db.session() as s:
        return [view_of(j) for j in recent_jobs(s, team_id, n)]


AT_RISK_DAYS = 90


def models_at_risk(services: Services, team_id: str, *, within_days: int = AT_RISK_DAYS) -> list[ModelView]:
    """The team's models (made through ftbot, not deleted) that stop serving within `within_days`,
    soonest first: the App Home's countdown. From stored rows and the cached dates, so opening the
    Home tab costs no provider request beyond the hours-long cache."""
    with services.db.session() as s:
        rows = s.scalars(
            select(Job).where(Job.team_id == team_id, Job.fine_tuned_model.is_not(None), Job.model_deleted_at.is_(None)).order_by(Job.created_at.desc()).limit(200)
        ).all()
        made = [(j.provider, j.fine_tuned_model or "", j.base_model, j.provider_job_id, j.started_by, j.created_at) for j in rows]
    ends = retirements_for(services)
    today = utcnow().date()
    out: dict[str, ModelView] = {}
    for provider, model, base, job_id, by, created in made:
        if model in out:
            continue
        end = ends.end_of(provider, model, base=base)
        days = end.days_left(today)
        if days is not None and days <= within_days:
            out[model] = ModelView(model, created, job_id, by, end.serving_ends, provider if services.several_providers else None, days_left=days, source=end.source)
    return sorted(out.values(), key=lambda v: (v.days_left, v.id))


@dataclass(frozen=True)
class Models:
    views: list[ModelView]
    unavailable: list[str]  # "<provider>: <reason>" for providers that could not be asked


def fine_tuned_models(services: Services, team_id: str) -> list[ModelView]:
    return all_fine_tuned_models(services, team_id).views


def all_fine_tuned_models(services: Services, team_id: str) -> Models:
    """Every enabled provider's fine-tuned models, newest first, with the job that made each;
    another workspace's models are left out. One provider failing is named, the others still listed
    (with a single provider its failure is the answer, as before)."""
    tuned: list[tuple[str, Model]] = []
    unavailable: list[str] = []
    ends = retirements_for(services)
    for name, provider in services.providers.items():
        try:
            listed = provider.list_models()
            ends.live.remember(name, listed)
            tuned += [(name, m) for m in listed if m.is_fine_tuned]
        except ProviderError as exc:
            if not services.several_providers:
                raise
            unavailable.append(f"{provider_label(name)}: {exc.reason}")
    today = utcnow().date()
    several = services.several_providers
    with services.db.session() as s:
        rows = s.scalars(select(Job).where(Job.fine_tuned_model.in_([m.id for _, m in tuned]))) if tuned else []
        by_model = {(j.provider, j.fine_tuned_model): j for j in rows}
        views = []
        for name, m in sorted(tuned, key=lambda pm: pm[1].created, reverse=True):
            job = by_model.get((name, m.id))
            if job is not None and job.team_id not in (None, team_id):
                continue
            end = ends.end_of(name, m.id, base=job.base_model if job else None)
            views.append(
                ModelView(
                    m.id, ts(m.created), job.provider_job_id if job else None, job.started_by if job else None, end.serving_ends, name if several else None,
                    days_left=end.days_left(today), source=end.source,
                )
            )
        return Models(views, unavailable)
