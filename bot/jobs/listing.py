"""The team's jobs and models as plain views: a page for `/ft list` and its buttons, the App Home's
list, `/ft models`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from bot.jobs.store import count_jobs, recent_jobs, ts
from bot.jobs.view import JobView, view_of
from bot.messages.answers import ModelView
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


def fine_tuned_models(services: Services, team_id: str) -> list[ModelView]:
    """The provider's fine-tuned models, newest first, with the job that made each; another
    workspace's models are left out."""
    tuned = [m for m in services.provider.list_models() if m.is_fine_tuned]
    table = table_for(services.settings.retirements_file)
    with services.db.session() as s:
        by_model = {j.fine_tuned_model: j for j in s.scalars(select(Job).where(Job.fine_tuned_model.in_([m.id for m in tuned])))}
        views = []
        for m in sorted(tuned, key=lambda m: m.created, reverse=True):
            job = by_model.get(m.id)
            if job is not None and job.team_id not in (None, team_id):
                continue
            ends = table.lookup(job.provider if job else services.provider.name, base_model_of(m.id, known_base=job.base_model if job else None))
            views.append(ModelView(m.id, ts(m.created), job.provider_job_id if job else None, job.started_by if job else None, ends.serving_ends if ends else None))
        return views
