"""The cost gate: a start over FTBOT_JOB_BUDGET_USD waits for approvals, then the job starts once."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy import select

from bot.approvals import actions
from bot.approvals.requests import needs_job_approval, request_job_approval
from bot.provider.base import JobSpec
from storage.models import Job, Subscription
from tests.approvals.conftest import APPROVAL_CHANNEL, buttons
from tests.conftest import wait_for
from tests.helpers import chat_jsonl


@pytest.fixture(autouse=True)
def _default_starter():
    actions.set_job_starter(None)
    yield
    actions.set_job_starter(None)


def _hold_back(team, estimate: float | None, note: str | None = None, key: str = "trigger-1"):  # noqa: ANN001, ANN202
    fid = team.sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    spec = asdict(JobSpec(model="gpt-4o-mini-2024-07-18", training_file=fid, hyperparameters={"n_epochs": 2}))
    services = team.bot.services
    assert needs_job_approval(services, estimate)
    return fid, request_job_approval(services, team_id="T0001", user="U0001", channel="C0001", spec=spec, estimate_usd=estimate, estimate_note=note, request_key=key)


def test_job_over_budget_waits_for_approvals_then_starts_once(db_url, make_team, sandbox, slack) -> None:  # noqa: ANN001
    team = make_team(db_url, job_budget_usd=5.0, approvals_required=2, approval_channel=APPROVAL_CHANNEL)
    fid, opened = _hold_back(team, 12.5)
    again = request_job_approval(team.bot.services, team_id="T0001", user="U0001", channel="C0001", spec={"training_file": fid}, estimate_usd=12.5, request_key="trigger-1")
    assert not again.created and again.view.id == opened.view.id  # the same delivery opens one request
    rid = opened.view.id
    msg = team.wait_message(rid, "$12.50", channel=APPROVAL_CHANNEL)
    assert "$5.00" in str(msg["blocks"]) and buttons(msg) == ["approval_approve", "approval_reject"]
    assert sandbox.state.jobs == {}  # held back

    team.click(rid, "U0002", channel=APPROVAL_CHANNEL)
    assert sandbox.state.jobs == {}
    team.click(rid, "U0003", channel=APPROVAL_CHANNEL)
    msg = team.wait_message(rid, "Started job", channel=APPROVAL_CHANNEL)
    assert len(sandbox.state.jobs) == 1
    job_id = next(iter(sandbox.state.jobs))
    assert job_id in str(msg["blocks"]) and buttons(msg) == []
    card = wait_for(lambda: slack.channel_messages("C0001"))[0]  # the card in the requesting channel
    assert job_id in card["text"]
    with team.bot.services.db.session() as s:
        job = s.scalar(select(Job))
        assert (job.provider_job_id, job.started_by, job.idempotency_key) == (job_id, "U0001", f"approval-{rid}")
        assert s.scalar(select(Subscription.channel_id)) == "C0001"

    # Running the action again (as after an unknown outcome) finds the job: still one.
    from bot.approvals.execution import snapshot

    assert actions.EXECUTORS["job_budget"].run(team.bot.services, snapshot(team.bot.services, rid))["job"] == job_id
    assert len(sandbox.state.jobs) == 1


def test_rejected_job_is_never_started(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, job_budget_usd=5.0)
    _, opened = _hold_back(team, 50.0)
    team.click(opened.view.id, "U0002", reject=True)
    team.wait_message(opened.view.id, "Rejected")
    assert sandbox.state.jobs == {}


def test_unknown_estimate_says_so_and_still_needs_approval(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    calls: list[int] = []
    actions.set_job_starter(lambda services, req: calls.append(req.id) or {"job": "ftjob-fake"})
    team = make_team(sqlite_url, job_budget_usd=5.0, approvals_required=1)
    _, opened = _hold_back(team, None, "no price known for gpt-4o-mini-2024-07-18")
    msg = team.wait_message(opened.view.id, "unknown")
    assert "no price known" in str(msg["blocks"])
    assert calls == []
    team.click(opened.view.id, "U0002")
    team.wait_message(opened.view.id, "ftjob-fake")
    assert calls == [opened.view.id]


def test_no_budget_no_gate() -> None:
    from types import SimpleNamespace

    from bot.settings import Settings

    free = SimpleNamespace(settings=Settings())
    assert not needs_job_approval(free, 1000.0) and not needs_job_approval(free, None)
    gated = SimpleNamespace(settings=Settings(job_budget_usd=10.0))
    assert not needs_job_approval(gated, 9.99) and needs_job_approval(gated, 10.01) and needs_job_approval(gated, None)
