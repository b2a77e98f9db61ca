"""Item 6 of issue 22: a job creation whose answer is lost makes exactly one provider job, at every
provider and on every start path, over signed Slack requests against the sandboxes.

Two ways to lose the answer, both made by the sandbox's fault control on the create route alone:
- "drop": the sandbox makes the job, then closes the connection without a byte of answer;
- "slow" past the client's timeout: the sandbox makes the job only after ftbot stopped waiting
  (and after its quick looks): the start is recorded as pending, never created again, and the
  worker takes the job up when it shows (stored, watched, its card posted where it was asked)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from storage.models import Job, Migration, PendingStart
from tests.conftest import wait_for
from tests.helpers import chat_jsonl
from tests.providers.conftest import CHANNEL

CREATE = {"openai": "/v1/fine_tuning/jobs", "azure": "/v1/fine_tuning/jobs", "together": "/v1/fine-tunes"}
# The sandboxes' count of create requests: one each time, the lost one (no second create was sent).
CREATES = {"openai": "create_job", "azure": "create_job", "together": "together.create_job"}


def _file(kit) -> str:  # noqa: ANN001
    if kit.name == "together":
        return _upload_together(kit)
    return kit.sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]


def _upload_together(kit) -> str:  # noqa: ANN001
    from bot.provider.together_adapter import TogetherProvider
    from tests.together_sandbox import API_KEY

    return TogetherProvider(API_KEY, kit.sandbox.url, max_retries=0).upload_file(chat_jsonl(12), "train.jsonl").id


def _card(slack, job_id: str) -> dict | None:  # noqa: ANN001
    return next((m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and job_id in (m.get("text") or "")), None)


def _rows(team) -> list[tuple[str, str | None]]:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        return [tuple(r) for r in s.execute(select(Job.provider_job_id, Job.idempotency_key)).all()]


@pytest.mark.parametrize("name", ["openai", "azure", "together"])
def test_a_dropped_connection_after_the_create_makes_one_job(name, sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits[name]
    team = launch(sqlite_url, [name])
    fid = _file(kit)
    kit.fail(kinds=("drop",), path_exact=CREATE[name], method="POST", remaining=1)
    answer = team.ask(f"start {fid}")
    assert "Started" in answer["text"], answer
    job_id = answer["text"].split("`")[1]
    assert list(kit.jobs()) == [job_id]  # the lost answer's job, found by its key: no second one
    assert kit.sandbox.state.faults.remaining == 0  # the connection really was dropped once
    assert kit.sandbox.state.requests.get(CREATES[name]) == 1
    assert _rows(team)[0][0] == job_id and len(_rows(team)) == 1
    wait_for(lambda: _card(slack, job_id), timeout=20)


@pytest.mark.parametrize("name", ["openai", "azure", "together"])
def test_a_create_that_lands_after_the_timeout_is_taken_up_not_made_twice(name, sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits[name]
    team = launch(sqlite_url, [name], provider_timeout=1.0)
    fid = _file(kit)
    # The create hangs 9 s, then is carried out: long after the client's 1 s timeout and the ~5 s
    # of looks that follow it.
    kit.fail(kinds=("slow",), slow_seconds=9.0, path_exact=CREATE[name], method="POST", remaining=1)
    answer = team.ask(f"start {fid}")
    assert "did not confirm the job" in answer["text"] and "keeps looking" in answer["text"] and "Don't start it again" in answer["text"], answer
    # One create sent (the one that timed out): nothing was created a second time meanwhile.
    assert kit.sandbox.state.requests.get(CREATES[name]) == 1 and len(kit.jobs()) <= 1
    with team.bot.services.db.session() as s:
        pending = s.scalars(select(PendingStart)).one()
        assert pending.resolved_at is None and pending.provider == name and pending.channel_id == CHANNEL
    # The slow create lands; the worker finds it by its key, stores it and posts its card.
    job_id = wait_for(lambda: next(iter(kit.jobs()), None), timeout=20)
    wait_for(lambda: _card(slack, job_id), timeout=30)
    assert list(kit.jobs()) == [job_id] and kit.sandbox.state.requests.get(CREATES[name]) == 1
    assert [r[0] for r in _rows(team)] == [job_id]
    with team.bot.services.db.session() as s:
        pending = s.scalars(select(PendingStart)).one()
        assert pending.outcome == "found" and pending.provider_job_id == job_id
    # The job is watched: it trains to the end and its final alert arrives.
    wait_for(lambda: any("succeeded" in (m.get("text") or "") and job_id in (m.get("text") or "") for m in slack.channel_messages(CHANNEL)), timeout=60)


def test_a_start_never_made_is_reported_once_and_frees_a_new_start(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    # The create times out and is never carried out (the sandbox's slow request is lifted before it
    # lands, as a provider that dropped it would): after LOOK_FOR the starter hears nothing was made.
    kit = kits["openai"]
    team = launch(sqlite_url, ["openai"], provider_timeout=1.0)
    fid = _file(kit)
    kit.fail(kinds=("500",), path_exact=CREATE["openai"], method="POST")
    answer = team.ask(f"start {fid}")
    assert "did not confirm the job" in answer["text"], answer
    kit.heal()
    assert kit.jobs() == {}
    from bot.jobs.lost_starts import check_lost_starts
    from bot.jobs.pending_starts import LOOK_FOR
    from storage.types import utcnow

    later = utcnow() + LOOK_FOR + timedelta(minutes=1)
    team.bot.services.extras["worker"].stop()
    resolved = check_lost_starts(team.bot.services, now=later)
    assert [(r.outcome, r.job_id) for r in resolved] == [("not_made", None)]
    assert check_lost_starts(team.bot.services, now=later + timedelta(minutes=5)) == []  # said once
    note = wait_for(lambda: [m for m in slack.channel_messages(CHANNEL) if "never made the job" in (m.get("text") or "")])
    assert len(note) == 1 and "<@U0001>" in note[0]["text"] and fid in note[0]["text"]
    # Starting again (a new request) now makes the job.
    again = team.ask(f"start {fid}")
    assert "Started" in again["text"] and len(kit.jobs()) == 1


def test_the_start_form_with_a_dropped_answer_makes_one_job(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["openai"]
    team = launch(sqlite_url, ["openai"])
    fid = _file(kit)
    kit.fail(kinds=("drop",), path_exact=CREATE["openai"], method="POST", remaining=1)
    form = {
        "file": {"value": {"type": "static_select", "selected_option": {"value": fid}}},
        "model": {"value": {"type": "static_select", "selected_option": {"value": "gpt-4o-mini-2024-07-18"}}},
    }
    reply = team.bot.slack.view_submission("start_job", form, private_metadata=json.dumps({"channel": CHANNEL}))
    assert reply.status == 200
    job_id = wait_for(lambda: next(iter(kit.jobs()), None), timeout=20)
    wait_for(lambda: _card(slack, job_id), timeout=20)
    assert list(kit.jobs()) == [job_id] and kit.sandbox.state.faults.remaining == 0


def test_a_budget_approved_start_whose_answer_is_lost_makes_one_job(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["openai"]
    team = launch(sqlite_url, ["openai"], provider_timeout=1.0, job_budget_usd=0.000001, approvals_required=1)
    fid = _file(kit)
    held = team.ask(f"start {fid}")
    assert "over the job budget" in held["text"] or "budget" in json.dumps(held), held
    req = team.last_request()
    kit.fail(kinds=("slow",), slow_seconds=9.0, path_exact=CREATE["openai"], method="POST", remaining=1)
    team.click_approve(req.id, "U0002")
    job_id = wait_for(lambda: next(iter(kit.jobs()), None), timeout=20)
    wait_for(lambda: _card(slack, job_id), timeout=30)
    assert list(kit.jobs()) == [job_id] and [r[0] for r in _rows(team)] == [job_id]


def test_a_migrations_target_job_whose_answer_is_dropped_is_made_once_and_followed(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from tests.providers.test_migrate import _answers, _made_at_openai, _migration, _preview_id

    team = launch(sqlite_url, ["openai", "together"], provider_timeout=1.0)
    _job, model, _train, _valid = _made_at_openai(team, kits, validation=False)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    kits["together"].fail(kinds=("slow",), slow_seconds=9.0, path_exact=CREATE["together"], method="POST", remaining=1)
    before = len(slack.responses())
    assert team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL).status == 200
    said = wait_for(lambda: [r for r in slack.responses()[before:] if "did not confirm the job" in (r.get("text") or "")], timeout=20)
    assert "keeps looking" in said[0]["text"]
    assert _migration(team, mid).state == "starting"  # not failed: the job may exist
    # A second /ft migrate meanwhile answers with this one rather than starting another.
    before = len(slack.responses())
    assert team.bot.slack.command(f"migrate {model} keep=0", user="U0001", channel=CHANNEL).status == 200
    wait_for(lambda: [r for r in slack.responses()[before:] if f"#{mid}" in json.dumps(r)], timeout=30)
    job_id = wait_for(lambda: next(iter(kits["together"].jobs()), None), timeout=20)
    wait_for(lambda: _migration(team, mid).state in ("training", "evaluating", "done"), timeout=30)
    assert list(kits["together"].jobs()) == [job_id] and _migration(team, mid).target_job_id == job_id
    with team.bot.services.db.session() as s:
        assert s.scalar(select(Migration.job_key).where(Migration.id == mid)) == s.scalar(select(Job.idempotency_key).where(Job.provider_job_id == job_id))
