"""The team's jobs as plain views: a page for `/ft list` and its buttons, the App Home's list."""

from __future__ import annotations

from dataclasses import dataclass

from bot.jobs.store import count_jobs, recent_jobs
from bot.jobs.view import JobView, view_of
from bot.services import Services

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
