"""Migration 0012: rows stored before several providers existed belong to OpenAI."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from storage.migrate import upgrade
from tests.conftest import fresh_postgres_db


def _check(url: str) -> None:
    upgrade(url, "0006")
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO approval_requests (team_id, kind, target, detail, requested_by, status, required_approvals, created_at, expires_at)"
                " VALUES ('T1', 'delete_model', 'ft:m', '{}', 'U1', 'pending', 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        c.execute(
            text(
                "INSERT INTO jobs (team_id, provider, provider_job_id, status, is_final, base_model, method, hyperparameters, latest_metrics, created_at, next_poll_at, poll_failures, updated_at)"
                " VALUES ('T1', '', 'ftjob-old', 'running', false, 'gpt-4o-mini', 'supervised', '{}', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(url)
    with eng.connect() as c:
        assert c.execute(text("SELECT provider FROM approval_requests")).scalar() == "openai"
        assert c.execute(text("SELECT provider FROM jobs WHERE provider_job_id = 'ftjob-old'")).scalar() == "openai"
    eng.dispose()


def test_existing_rows_become_openai_on_sqlite(tmp_path) -> None:  # noqa: ANN001
    _check(f"sqlite:///{tmp_path / 'ftbot.db'}")


@pytest.mark.postgres
def test_existing_rows_become_openai_on_postgres() -> None:
    url, drop = fresh_postgres_db()
    try:
        _check(url)
    finally:
        drop()
