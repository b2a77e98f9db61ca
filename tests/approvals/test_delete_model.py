"""`/ft delete-model` through approvals, over signed HTTP requests to the running app."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from storage.models import ApprovalVote, AuditLog
from storage.types import utcnow
from tests.approvals.conftest import APPROVAL_CHANNEL, add_model, buttons, deletes
from tests.conftest import wait_for

APPROVERS = ("U0002", "U0003", "U0004")


def test_two_of_three_approvers_delete_the_model_once(db_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(db_url, approvers=APPROVERS, approvals_required=2)
    model = add_model(sandbox)
    answer = team.ask(f"delete-model {model} it's an old support model")
    assert "request #" in answer["text"] and "2 approvals" in answer["text"], answer
    req = team.request()
    msg = team.wait_message(req.id, "0 of 2")
    assert buttons(msg) == ["approval_approve", "approval_reject"]
    assert "<@U0001>" in str(msg["blocks"]) and "it's an old support model" in str(msg["blocks"])

    first = team.click(req.id, "U0002")
    assert "counted (1 of 2)" in first["text"]
    team.wait_message(req.id, "1 of 2")
    assert model in {m for m in sandbox.state.models}
    last = team.click(req.id, "U0003")
    assert "counted (2 of 2)" in last["text"]
    msg = team.wait_message(req.id, "Deleted")
    assert buttons(msg) == [] and "<@U0002>" in str(msg["blocks"]) and "<@U0003>" in str(msg["blocks"])
    assert model not in sandbox.state.models and deletes(sandbox) == 1
    assert team.request().status == "done"

    late = team.click(req.id, "U0004")  # after the final state clicks change nothing
    assert "is done" in late["text"] and deletes(sandbox) == 1
    with team.bot.services.db.session() as s:
        actions = list(s.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions == ["request", "approve", "approve", "executing", "done", "refused"]


def test_unknown_model_is_answered_and_nothing_posted(db_url, make_team, slack) -> None:  # noqa: ANN001
    team = make_team(db_url)
    answer = team.ask("delete-model ft:gpt-4o-mini:org:nope:123")
    assert "no model" in answer["text"].lower()
    base = team.ask("delete-model gpt-4o-mini-2024-07-18")
    assert "base model" in base["text"]
    assert team.request() is None and slack.channel_messages("C0001") == []


def test_self_approval_refused_and_double_click_counted_once(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=2)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    own = team.click(req.id, "U0001")
    assert "cannot approve it yourself" in own["text"]
    assert "counted (1 of 2)" in team.click(req.id, "U0002")["text"]
    again = team.click(req.id, "U0002")
    assert "already approved" in again["text"] and "counts once (1 of 2)" in again["text"]
    with team.bot.services.db.session() as s:
        assert s.scalar(select(ApprovalVote.user_id)) == "U0002" and len(s.scalars(select(ApprovalVote)).all()) == 1
        whys = [d.get("why") for d in s.scalars(select(AuditLog.detail).where(AuditLog.action == "refused"))]
    assert whys == ["the requester cannot approve their own request", "already approved; counted once"]
    assert team.request().status == "pending" and deletes(sandbox) == 0


def test_outsider_refused_ephemerally(sqlite_url, make_team, sandbox, slack) -> None:  # noqa: ANN001
    slack.set_usergroup("SAPPROVERS", ["U0005"])
    team = make_team(sqlite_url, approvers=("U0002", "SAPPROVERS"), approvals_required=2)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    out = team.click(req.id, "U0009")
    assert "Only approvers" in out["text"] and out["response_type"] == "ephemeral"
    assert "counted (1 of 2)" in team.click(req.id, "U0005")["text"]  # a member of the approvers' group
    team.click(req.id, "U0002")
    team.wait_message(req.id, "Deleted")
    with team.bot.services.db.session() as s:
        refused = s.scalars(select(AuditLog).where(AuditLog.action == "refused")).all()
        assert [(a.actor, a.detail["why"]) for a in refused] == [("U0009", "not an approver")]
        assert "U0009" not in s.scalars(select(ApprovalVote.user_id)).all()


def test_forged_or_unsigned_click_gets_401(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    import json
    from urllib.parse import urlencode

    team = make_team(sqlite_url, approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    payload = {"type": "block_actions", "user": {"id": "U0002", "team_id": "T0001"}, "team": {"id": "T0001"}, "actions": [{"action_id": "approval_approve", "value": str(req.id), "type": "button"}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    forged = team.bot.slack.post(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    unsigned = team.bot.slack.post(body, "application/x-www-form-urlencoded", signature="")
    assert forged.status == 401 and unsigned.status == 401
    assert team.request().status == "pending" and deletes(sandbox) == 0


def test_reject_closes_the_request(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=2)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    team.click(req.id, "U0002")
    no = team.click(req.id, "U0003", reject=True)
    assert "rejected" in no["text"]
    msg = team.wait_message(req.id, "Rejected")
    assert buttons(msg) == [] and "<@U0003>" in str(msg["blocks"])
    later = team.click(req.id, "U0004")
    assert "was rejected" in later["text"]
    assert team.request().status == "rejected" and model in sandbox.state.models and deletes(sandbox) == 0


def test_request_goes_to_the_approval_channel(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approval_channel=APPROVAL_CHANNEL)
    model = add_model(sandbox)
    answer = team.ask(f"delete-model {model}")
    assert f"<#{APPROVAL_CHANNEL}>" in answer["text"]
    req = team.request()
    team.wait_message(req.id, "0 of 2", channel=APPROVAL_CHANNEL)
    assert team.message(req.id, "C0001") is None


def test_provider_403_shows_failed_with_reason_and_keeps_model(db_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(db_url, approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    sandbox.state.faults = type(sandbox.state.faults)(rate=1.0, kinds=("403",), path_contains="/v1/models/", method="DELETE")
    team.click(req.id, "U0002")
    msg = team.wait_message(req.id, "Failed")
    assert "insufficient permissions" in str(msg["blocks"]) and "owner role" in str(msg["blocks"])
    assert "Deleted" not in str(msg["blocks"]) and buttons(msg) == []
    r = team.request()
    assert r.status == "failed" and "insufficient permissions" in r.error
    assert model in sandbox.state.models


def test_lost_answer_is_resolved_by_reading_the_model_back(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    # The delete happens but its answer is a 500: the outcome is unknown until the model is read back.
    sandbox.state.faults = type(sandbox.state.faults)(rate=1.0, kinds=("lost",), path_contains="/v1/models/", method="DELETE")
    team.click(req.id, "U0002")
    team.wait_message(req.id, "Deleted")
    r = team.request()
    assert r.status == "done" and "read back" in r.result["confirmed"] and deletes(sandbox) == 1


def test_timeout_is_resolved_by_reading_back_and_a_late_delete_is_noticed(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    from bot.provider.openai_adapter import OpenAIProvider

    team = make_team(sqlite_url, approvals_required=1, worker=True)
    s = team.bot.services
    s.provider = OpenAIProvider(api_key="sk-test", base_url=s.settings.openai_base_url, max_retries=0, timeout=0.3)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    # The provider takes 2.5 s to delete: our client gives up at 0.3 s and reads the model back, which
    # is still there, so the request fails without claiming anything was deleted...
    sandbox.state.faults = type(sandbox.state.faults)(rate=1.0, kinds=("slow",), slow_seconds=2.5, path_contains="/v1/models/", method="DELETE", remaining=1)
    team.click(req.id, "U0002")
    msg = team.wait_message(req.id, "Failed")
    assert "still there" in str(msg["blocks"]) and "in time" in str(msg["blocks"]) and "Deleted" not in str(msg["blocks"])
    assert model in sandbox.state.models
    # ...and when the slow delete lands after all, the worker notices and says so.
    msg = team.wait_message(req.id, "Deleted")
    r = team.request()
    assert r.status == "done" and deletes(sandbox) == 1 and model not in sandbox.state.models


def test_deleting_a_model_made_by_a_job_notes_it_on_the_job_card(sqlite_url, make_team, sandbox, slack) -> None:  # noqa: ANN001
    from tests.helpers import chat_jsonl

    team = make_team(sqlite_url, approvals_required=1, worker=True)
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    started = team.ask(f"start {fid} epochs=1 batch=4")
    job_id = started["text"].split("`")[1]
    model = wait_for(lambda: sandbox.state.jobs[job_id].obj.get("fine_tuned_model"), timeout=20)
    card = wait_for(lambda: next((m for m in slack.channel_messages("C0001") if job_id in m["text"]), None))
    wait_for(lambda: _job_model(team, job_id) == model, timeout=20)

    from bot.jobs.launch import start_choices
    from bot.retirements.table import Retirement, RetirementTable
    from bot.retirements.warnings import plan_retirement_warnings

    def warnings_due(days: int) -> list:  # noqa: ANN202
        ends = utcnow().date() + timedelta(days=days)
        table = RetirementTable({}, {"gpt-4o-mini-2024-07-18": Retirement("gpt-4o-mini-2024-07-18", None, ends)})
        return plan_retirement_warnings(team.bot.services.db, table, today=utcnow().date(), notify_channel="C0001")

    assert model in start_choices(team.bot.services, "T0001")[1] and len(warnings_due(20)) == 1

    team.ask(f"delete-model {model} superseded")
    req = team.request()
    msg = team.wait_message(req.id, job_id)  # the request names the job that made the model
    assert "Made by job" in str(msg["blocks"])
    team.click(req.id, "U0002")
    team.wait_message(req.id, "Deleted")
    note = wait_for(lambda: [m for m in slack.channel_messages("C0001") if m.get("thread_ts") == card["ts"] and "was deleted" in m["text"]])
    assert len(note) == 1 and model in note[0]["text"] and "<@U0002>" in note[0]["text"]
    # Gone for good: no longer offered in the start form, never warned about before its retirement.
    assert model not in start_choices(team.bot.services, "T0001")[1] and warnings_due(5) == []


def _job_model(team, job_id: str) -> str | None:  # noqa: ANN001
    """The model the poller recorded for the job."""
    from storage.models import Job

    with team.bot.services.db.session() as s:
        return s.scalar(select(Job.fine_tuned_model).where(Job.provider_job_id == job_id))


def test_model_deleted_elsewhere_meanwhile_fails_with_404_reason(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    with sandbox.state.lock:
        del sandbox.state.models[model]  # someone deleted it in the provider's dashboard
    team.click(req.id, "U0002")
    msg = team.wait_message(req.id, "Failed")
    assert "deleted already?" in str(msg["blocks"]) and "Deleted" not in str(msg["blocks"])
    assert team.request().status == "failed"


def test_worker_resolves_requests_a_dead_process_left_running(db_url, make_team, sandbox) -> None:  # noqa: ANN001
    from datetime import timedelta

    from sqlalchemy import update

    from storage.models import ApprovalRequest
    from storage.types import utcnow

    team = make_team(db_url, approvals_required=1)
    gone, kept = add_model(sandbox, "ft:gpt-4o-mini-2024-07-18:org-sandbox:gone:00000001"), add_model(sandbox, "ft:gpt-4o-mini-2024-07-18:org-sandbox:kept:00000002")
    ids = []
    for model in (gone, kept):
        team.ask(f"delete-model {model}")
        ids.append(team.request().id)
    # A process moved both to `executing` and died: one after the provider deleted the model, one before.
    with team.bot.services.db.session() as s:
        s.execute(update(ApprovalRequest).values(status="executing", executing_since=utcnow() - timedelta(minutes=10)))
    with sandbox.state.lock:
        del sandbox.state.models[gone]
    from bot.approvals.expiry import sweep

    sweep(team.bot.services)
    team.wait_message(ids[0], "Deleted")
    msg = team.wait_message(ids[1], "Failed")
    assert "stopped before it answered" in str(msg["blocks"]) and "still there" in str(msg["blocks"])
    assert kept in sandbox.state.models and deletes(sandbox) == 0


def test_an_approver_group_slack_cannot_resolve_yet_is_not_an_outsider(sqlite_url, make_team, sandbox, slack, monkeypatch) -> None:  # noqa: ANN001
    """A member of an approver group clicking while Slack is slow or failing is asked to click again;
    nothing is recorded against them, and the vote counts once Slack answers."""
    slack.set_usergroup("SAPPROVERS", ["U0005"])
    team = make_team(sqlite_url, approvers=("SAPPROVERS",), approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    release = threading.Event()
    answer = slack._m_usergroups_users_list

    def slow(args):  # noqa: ANN001, ANN202
        release.wait(10)
        return answer(args)

    monkeypatch.setattr(slack, "_m_usergroups_users_list", slow)
    assert "Checking with Slack who the approvers are" in team.click(req.id, "U0005")["text"]
    release.set()
    wait_for(lambda: "counted" in team.click(req.id, "U0005")["text"] or team.request().status != "pending")
    team.wait_message(req.id, "Deleted")
    with team.bot.services.db.session() as s:
        assert s.scalars(select(AuditLog).where(AuditLog.action == "refused")).all() == []
