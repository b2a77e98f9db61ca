"""What /healthz says about polling: the open jobs whose polls keep failing (the provider refused, or
storing what it answered failed), each backing off on its own while the others go on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from storage.models import Job

SHOWN = 10


def polling_health(db: Any) -> dict[str, Any]:
    failing = (Job.is_final.is_(False), Job.poll_failures > 0)
    with db.session() as s:
        count = s.scalar(select(func.count()).select_from(Job).where(*failing)) or 0
        rows = s.execute(
            select(Job.provider, Job.provider_job_id, Job.poll_failures, Job.last_poll_error, Job.next_poll_at)
            .where(*failing)
            .order_by(Job.poll_failures.desc(), Job.id)
            .limit(SHOWN)
        ).all()
    return {
        "failing": int(count),
        "jobs": [
            {"provider": p, "job": j, "failures": n, "error": (e or "")[:300], "next_try": t.isoformat() if t else None}
            for p, j, n, e, t in rows
        ],
    }
