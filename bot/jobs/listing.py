"""The team's jobs and models as plain views: a page for `/ft list` and its buttons, the App Home's
list, `/ft models`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.jobs.store import count_jobs, recent_jobs, ts
from bot.jobs.view import JobView, view_of
from bot.messages.answers import ModelView
from bot.provider.base import Model, ProviderError, provider_label
from bot.retirements.table import base_model_of, table_for
from bot.services import Services
from storage.models import Job

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
    for name, provider in services.providers.items():
        try:
            tuned += [(name, m) for m in provider.list_models() if m.is_fine_tuned]
        except ProviderError as exc:
            if not services.several_providers:
                raise
            unavailable.append(f"{provider_label(name)}: {exc.reason}")
    table = table_for(services.settings.retirements_file)
    several = services.several_providers
    with services.db.session() as s:
        rows = s.scalars(select(Job).where(Job.fine_tuned_model.in_([m.id for _, m in tuned]))) if tuned else []
        by_model = {(j.provider, j.fine_tuned_model): j for j in rows}
        views = []
        for name, m in sorted(tuned, key=lambda pm: pm[1].created, reverse=True):
            job = by_model.get((name, m.id))
            if job is not None and job.team_id not in (None, team_id):
                continue
            ends = table.lookup(name, base_model_of(m.id, known_base=job.base_model if job else None))
            views.append(
                ModelView(m.id, ts(m.created), job.provider_job_id if job else None, job.started_by if job else None, ends.serving_ends if ends else None, name if several else None)
            )
        return Models(views, unavailable)
