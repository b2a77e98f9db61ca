"""With webhooks on, queued and validating jobs are polled at FTBOT_IDLE_POLL_INTERVAL, running ones
at the poll interval; a status change seen in the (shared) job-list read wakes an idle job at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.jobs.lifecycle import start_job
from bot.provider import JobSpec
from bot.provider.openai_adapter import OpenAIProvider
from bot.sandbox.webhooks import new_secret
from bot.services import Services, build_services
from bot.settings import SettingsError, load_settings
from bot.worker.poller import Poller
from storage.models import Job
from storage.types import utcnow
from tests.conftest import make_settings
from tests.helpers import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def services(sandbox, slack) -> Iterator:  # noqa: ANN001
    made: list[Services] = []

    def _make(db_url: str, **overrides) -> Services:  # noqa: ANN003
        settings = make_settings(db_url, sandbox, slack, **overrides)
        svc = build_services(settings, provider=OpenAIProvider(api_key="sk-test", base_url=sandbox.url, max_retries=0, timeout=5))
        made.append(svc)
        return svc

    yield _make
    for svc in made:
        svc.close()


def _start(svc: Services, key: str) -> str:
    f = svc.provider.upload_file(chat_jsonl(), "train.jsonl")
    return start_job(svc, JobSpec(model=MODEL, training_file=f.id), team_id="T0001", user="U0001", channel="C0001", idempotency_key=key).job.id


def _next_polls(svc: Services) -> dict[str, tuple[str, float]]:
    now = utcnow()
    with svc.db.session() as s:
        return {j.provider_job_id: (j.status, (j.next_poll_at - now).total_seconds()) for j in s.scalars(select(Job))}


def _run(sandbox, job_id: str) -> None:  # noqa: ANN001
    """The job's hour in the queue is over: it runs (a step takes a minute, so none is done yet)."""
    with sandbox.state.lock:
        job = sandbox.state._job(job_id)
        job.phase_started = job.active - 3601


def _due_now(svc: Services) -> None:
    with svc.db.session() as s:
        for j in s.scalars(select(Job)):
            j.next_poll_at = utcnow() - timedelta(seconds=1)


@pytest.mark.parametrize("webhooks", [True, False], ids=["webhooks-on", "webhooks-off"])
def test_idle_jobs_wait_the_idle_interval_only_with_webhooks(db_url, services, sandbox, webhooks: bool) -> None:  # noqa: ANN001
    extra = {"openai_webhook_secret": new_secret()} if webhooks else {}
    svc = services(db_url, poll_interval=5, idle_poll_interval=120, **extra)
    sandbox.state.timing.validating_seconds = 0.0
    sandbox.state.timing.queued_seconds = 3600
    sandbox.state.timing.step_seconds = 60
    queued = _start(svc, "k-queued")
    running = _start(svc, "k-running")
    _run(sandbox, running)
    _due_now(svc)
    Poller(svc, "w1", team_id="T0001").cycle()
    polls = _next_polls(svc)
    assert polls[running][0] == "running" and 3 < polls[running][1] <= 5
    assert polls[queued][0] == "queued"
    if webhooks:
        assert 115 < polls[queued][1] <= 120
    else:
        assert 3 < polls[queued][1] <= 5


def test_a_status_change_in_the_job_list_wakes_an_idle_job(db_url, services, sandbox) -> None:  # noqa: ANN001
    svc = services(db_url, poll_interval=5, idle_poll_interval=120, openai_webhook_secret=new_secret())
    sandbox.state.timing.validating_seconds = 0.0
    sandbox.state.timing.queued_seconds = 3600
    sandbox.state.timing.step_seconds = 60
    idle = _start(svc, "k-idle")
    busy = _start(svc, "k-busy")
    _run(sandbox, busy)
    _due_now(svc)
    poller = Poller(svc, "w1", team_id="T0001")
    poller.cycle()
    assert _next_polls(svc)[idle][1] > 100
    # The idle job leaves the queue; the next cycle polls only the busy one, whose list read shows it.
    _run(sandbox, idle)
    with svc.db.session() as s:
        s.get(Job, s.scalar(select(Job.id).where(Job.provider_job_id == busy))).next_poll_at = utcnow()
    poller.cycle()
    status, wait = _next_polls(svc)[idle]
    assert status == "queued" and wait <= 0  # due now: the next cycle reads its new events
    poller.cycle()
    status, wait = _next_polls(svc)[idle]
    assert status == "running" and 3 < wait <= 5


def test_webhook_settings() -> None:
    secret = new_secret()
    s = load_settings({"OPENAI_WEBHOOK_SECRET": secret, "FTBOT_IDLE_POLL_INTERVAL": "600"}, dotenv_path=None)
    assert s.openai_webhook_secret == secret and s.webhooks_enabled and s.idle_poll_interval == 600
    assert secret not in repr(s)
    plain = load_settings({}, dotenv_path=None)
    assert not plain.webhooks_enabled and plain.idle_poll_interval == 300
    for bad, message in (("sk-abc", "must start with 'whsec_'"), ("whsec_not base64!", "whsec_ followed by base64")):
        with pytest.raises(SettingsError, match=message) as err:
            load_settings({"OPENAI_WEBHOOK_SECRET": bad}, dotenv_path=None)
        assert bad not in str(err.value)
    with pytest.raises(SettingsError, match="FTBOT_IDLE_POLL_INTERVAL"):
        load_settings({"FTBOT_IDLE_POLL_INTERVAL": "soon"}, dotenv_path=None)


def test_the_secret_is_redacted_in_logs() -> None:
    from bot.logs import redact

    secret = new_secret()
    assert secret not in redact(f"verifying with {secret} failed")
