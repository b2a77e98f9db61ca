"""The cost gate: a start over FTBOT_JOB_BUDGET_USD waits for approvals, then the job starts once."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest
from sqlalchemy import select

from bot.approvals import actions
from bot.approvals.requests import needs_job_approval, request_job_approval
from bot.provider.base import JobSpec
from storage.models import ApprovalRequest, Dataset, Job, Subscription
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


def test_slash_start_over_budget_is_held_then_started_once_and_under_budget_starts(db_url, make_team, sandbox, slack) -> None:  # noqa: ANN001
    """Through `/ft start`: the estimate comes from counting the provider file (no checked dataset)."""
    team = make_team(db_url, job_budget_usd=0.01, approvals_required=2, approval_channel=APPROVAL_CHANNEL)
    big = team.sandbox.state.add_file("big.jsonl", chat_jsonl(2000), "fine-tune")["id"]
    answer = team.ask(f"start {big} epochs=3", trigger_id="trig-big")
    assert "over the $0.01 budget" in answer["text"] and "Nothing was started" in answer["text"], answer
    assert sandbox.state.jobs == {}
    with team.bot.services.db.session() as s:
        rid = s.scalar(select(ApprovalRequest.id).where(ApprovalRequest.kind == "job_budget"))
    msg = team.wait_message(rid, "$0.01", channel=APPROVAL_CHANNEL)
    assert buttons(msg) == ["approval_approve", "approval_reject"]
    # The same delivery again opens nothing new, and does not download the file again to count it.
    assert sandbox.state.requests.get("file_content") == 1
    assert "Already waiting for approval" in team.ask(f"start {big} epochs=3", trigger_id="trig-big")["text"]
    assert sandbox.state.requests.get("file_content") == 1
    team.click(rid, "U0002", channel=APPROVAL_CHANNEL)
    team.click(rid, "U0003", channel=APPROVAL_CHANNEL)
    team.wait_message(rid, "Started job", channel=APPROVAL_CHANNEL)
    assert len(sandbox.state.jobs) == 1
    job = next(iter(sandbox.state.jobs.values())).obj
    assert job["training_file"] == big and job["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3

    small = team.sandbox.state.add_file("small.jsonl", chat_jsonl(12), "fine-tune")["id"]
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=5.0)
    answer = team.ask(f"start {small} epochs=1", trigger_id="trig-small")
    assert "Started" in answer["text"] and len(sandbox.state.jobs) == 2


def test_estimate_uses_the_checked_dataset_and_the_price_table(sqlite_url, make_team) -> None:  # noqa: ANN001
    from bot.datasets.estimate import estimate_job_cost

    team = make_team(sqlite_url, job_budget_usd=1.0, price_table=(("gpt-4o-mini", 10.0),))
    services = team.bot.services
    fid = team.sandbox.state.add_file("t.jsonl", chat_jsonl(12), "fine-tune")["id"]
    with services.db.session() as s:
        s.add(Dataset(team_id="T0001", provider_file_id=fid, name="t.jsonl", bytes=1, sha256="0" * 64, example_count=12, validation={"model": "gpt-4o-mini-2024-07-18", "billed_tokens": 800_000, "epochs": 8}))
    est = estimate_job_cost(services, "T0001", JobSpec(model="gpt-4o-mini-2024-07-18", training_file=fid, hyperparameters={"n_epochs": 2}))
    assert est.billed_tokens == 200_000 and est.usd == pytest.approx(2.0) and "FTBOT_PRICE_TABLE" in est.note
    unknown = estimate_job_cost(services, "T0001", JobSpec(model="my-own-base", training_file=fid))
    assert unknown.usd is None and "no training price" in unknown.note
