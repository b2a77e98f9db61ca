"""What training-health watching costs the poller per job and poll.

Long jobs (3,000 steps stored) each get one poll's worth of new metric events (10 steps). Compared:
  folded   - what the poller does: fold the new points into the summary kept on the job row, judge;
  reload   - the naive way: load the job's whole series from the database and judge it.
Measured inside one transaction per 50 jobs, as the poller writes, on SQLite (a file) or PostgreSQL.

    python bench/health.py [--jobs 200] [--steps 3000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import select  # noqa: E402

from bot.jobs.health import MetricSample, assess, summarise  # noqa: E402
from bot.jobs.health_watch import watch_job  # noqa: E402
from bot.settings import Settings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Job, JobEvent, MetricPoint  # noqa: E402

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def _db_url(kind: str, tmp: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/bench.db"
    import uuid

    from sqlalchemy import create_engine, text

    admin = os.environ.get("FTBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace("postgresql://", "postgresql+psycopg://")
    name = f"ftbot_bench_{uuid.uuid4().hex[:8]}"
    eng = create_engine(admin, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return admin.rsplit("/", 1)[0] + "/" + name


def _point(step: int, total: int) -> MetricSample:
    return MetricSample(step, 2.0 * 0.999**step, 2.1 * 0.999**step if step % 10 == 0 else None, None, T0 + timedelta(seconds=step))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()
    url = _db_url(args.db, tempfile.mkdtemp(prefix="ftbot-bench-"))
    upgrade(url)
    db = Database(url)
    settings = Settings()
    total = args.steps + 100
    with db.session() as s:
        for j in range(args.jobs):
            pts = [_point(k, total) for k in range(1, args.steps + 1)]
            job = Job(provider_job_id=f"ftjob-{j}", status="running", base_model="m", total_steps=total, step=args.steps, status_since=T0, latest_metrics={}, hyperparameters={})
            job.health = {"summary": summarise(pts).to_dict()}
            s.add(job)
            s.flush()
            s.add_all(MetricPoint(job_id=job.id, step=p.step, train_loss=p.train_loss, valid_loss=p.valid_loss, created_at=p.created_at) for p in pts)
    results = {}
    for way in ("folded", "reload"):
        per_batch = []
        base = args.steps if way == "folded" else args.steps + 10
        with db.session() as s:
            ids = list(s.scalars(select(Job.id).order_by(Job.id)))
        for i in range(0, len(ids), 50):
            with db.session() as s:
                jobs = list(s.scalars(select(Job).where(Job.id.in_(ids[i : i + 50]))))
                t0 = time.perf_counter()
                for job in jobs:
                    new = [_point(k, total) for k in range(base + 1, base + 11)]
                    if way == "folded":
                        events = [JobEvent(job_id=job.id, provider_event_id=f"e{p.step}", created_at=p.created_at, type="metrics", data={"step": p.step, "train_loss": p.train_loss, "valid_loss": p.valid_loss}) for p in new]
                        watch_job(s, job, events, settings=settings, status_changed=False, became_final=False, now=T0 + timedelta(seconds=base + 11))
                    else:
                        rows = s.execute(select(MetricPoint.step, MetricPoint.train_loss, MetricPoint.valid_loss, MetricPoint.full_valid_loss, MetricPoint.created_at).where(MetricPoint.job_id == job.id).order_by(MetricPoint.step)).all()
                        assess([MetricSample(*r) for r in rows] + new, status="running", total_steps=total, now=T0 + timedelta(seconds=base + 11))
                s.flush()
                per_batch.append((time.perf_counter() - t0) / len(jobs))
                s.rollback()
        results[way] = {"ms_per_job_poll_median": round(statistics.median(per_batch) * 1000, 3), "ms_per_job_poll_max": round(max(per_batch) * 1000, 3)}
    print(json.dumps({
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {args.db}",
        "jobs": args.jobs, "stored_steps_per_job": args.steps, "new_steps_per_poll": 10, **results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
