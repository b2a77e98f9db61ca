"""A job's training metrics for its loss chart."""

from __future__ import annotations

from sqlalchemy import select

from bot.charts.loss_chart import Point
from bot.services import Services
from storage.models import Checkpoint, MetricPoint


def chart_points(services: Services, job_row_id: int, provider_job_id: str, provider: str | None = None) -> tuple[list[Point], list[int], int | None]:
    """Metric points (and total steps) as stored by the poller; for a job not yet polled, from its events."""
    with services.db.session() as s:
        points = [
            Point(p.step, p.train_loss, p.valid_loss, p.train_accuracy, p.valid_accuracy)
            for p in s.scalars(select(MetricPoint).where(MetricPoint.job_id == job_row_id).order_by(MetricPoint.step))
        ]
        ckpts = list(s.scalars(select(Checkpoint.step_number).where(Checkpoint.job_id == job_row_id)))
        total = s.scalar(select(MetricPoint.total_steps).where(MetricPoint.job_id == job_row_id).order_by(MetricPoint.step.desc()).limit(1))
    at = services.provider_for(provider)
    if not points:
        for e in at.new_events(provider_job_id, None):
            d = e.data or {}
            if e.type == "metrics" and isinstance(d.get("step"), int | float):
                points.append(Point(int(d["step"]), d.get("train_loss"), d.get("valid_loss"), d.get("train_mean_token_accuracy"), d.get("valid_mean_token_accuracy")))
                total = d.get("total_steps") or total
    if not ckpts:
        ckpts = [c.step_number for c in at.list_checkpoints(provider_job_id)]
    return points, ckpts, total
