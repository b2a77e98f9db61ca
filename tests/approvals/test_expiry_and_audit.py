"""Expiry by the worker, and `/ft audit`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.messages.audit import AuditEntry, audit_answer
from bot.messages.table import table_texts
from bot.slack_standin.server import _message_problem
from storage.models import ApprovalRequest, AuditLog
from storage.types import utcnow
from tests.approvals.conftest import add_model, buttons, deletes
from tests.conftest import wait_for


def test_worker_expires_request_and_later_clicks_do_nothing(db_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(db_url, approvals_required=2, approval_ttl_hours=0.0005, worker=True)  # 1.8 s
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    assert (req.expires_at - req.created_at).total_seconds() == 1.8
    team.click(req.id, "U0002")
    msg = team.wait_message(req.id, "Expired")
    assert buttons(msg) == []
    late = team.click(req.id, "U0003")
    assert "has expired" in late["text"]
    assert team.request().status == "expired" and model in sandbox.state.models and deletes(sandbox) == 0


def test_a_click_after_the_deadline_expires_it_even_before_the_worker(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=1)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    req = team.request()
    with team.bot.services.db.session() as s:
        s.execute(update(ApprovalRequest).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = team.click(req.id, "U0002")
    assert "has expired" in answer["text"]
    team.wait_message(req.id, "Expired")
    assert deletes(sandbox) == 0


def test_audit_lists_latest_newest_first(sqlite_url, make_team, sandbox) -> None:  # noqa: ANN001
    team = make_team(sqlite_url, approvals_required=2, approvers=("U0002", "U0003"))
    model = add_model(sandbox)
    team.ask(f"delete-model {model} <!channel> cleanup")
    req = team.request()
    team.click(req.id, "U0009")  # not an approver
    team.click(req.id, "U0002")
    team.click(req.id, "U0003", reject=True)
    answer = team.ask("audit 3")
    rows = table_texts(next(b for b in answer["blocks"] if b["type"] == "table"))
    assert rows[0] == ["When (UTC)", "Who", "What", "Subject", "Request", "Why"] and len(rows) == 4
    assert rows[1][1:4] == ["<@U0003>", "rejected", f"delete {model}"] and rows[1][4] == f"#{req.id}"
    assert rows[2][1:3] == ["<@U0002>", "approved"] and rows[3][1:3] == ["<@U0009>", "vote refused"] and "not an approver" in rows[3][5]
    assert "<@U0003> rejected (delete `ft:" in answer["text"]  # the fallback keeps the lines
    full = team.ask("audit")
    rows = table_texts(next(b for b in full["blocks"] if b["type"] == "table"))
    # The reason typed with the request is a raw_text cell: shown verbatim, never parsed as a mention.
    asked = [r for r in rows if r[2] == "asked for approval"]
    assert asked and "<!channel> cleanup" in asked[0][5]
    assert all(c["type"] != "mrkdwn" for b in full["blocks"] if b["type"] == "table" for r in b["rows"] for c in r)
    assert "&lt;!channel&gt;" in full["text"] and "<!channel>" not in full["text"] and "<!channel>" not in str([b for b in full["blocks"] if b["type"] != "table"])
    bad = team.ask("audit lots")
    assert "not a number" in bad["text"]


def test_audit_answer_stays_within_block_limits() -> None:
    now = utcnow()
    # Ampersands grow fivefold when escaped: the worst case for size.
    entries = [AuditEntry(now, "U0001", "refused", "ft:" + "&" * 250, {"request": i, "kind": "delete_model", "why": "&" * 500}) for i in range(200)]
    msg = audit_answer(entries, 200)
    assert _message_problem(msg) is None
    rows = table_texts(msg["blocks"][1])
    assert len(rows) == 100 and rows[1][3] == "delete ft:" + "&" * 116 + "…"
    assert "101 older entries did not fit" in str(msg["blocks"][-1])
    assert len(msg["text"]) <= 3000 and "&amp;" in msg["text"] and "& " not in msg["text"]
    small = audit_answer(entries[:30], 30)
    assert len(table_texts(small["blocks"][1])) == 31 and small["blocks"][-1]["type"] == "table"


def test_a_request_slack_will_not_post_fails_and_never_blocks_the_channel(db_url, make_team, sandbox, slack) -> None:  # noqa: ANN001
    """A private approval channel without the bot: the request fails at once, its asker is told in a DM,
    and once the bot is invited the next request is posted (nothing waits behind the refused one)."""
    slack.set_channel("GPRIVATE", private=True, member=False)
    team = make_team(db_url, approvals_required=1, approval_channel="GPRIVATE", approval_ttl_hours=0.0005, worker=True)
    model = add_model(sandbox)
    team.ask(f"delete-model {model}")
    first = team.request()
    dm = wait_for(lambda: [m for m in slack.channel_messages("U0001") if f"request #{first.id}" in m.get("text", "")], timeout=15)
    assert len(dm) == 1 and "could not be posted" in dm[0]["text"] and "channel_not_found" in dm[0]["text"]
    assert wait_for(lambda: team.request().status == "failed")
    with team.bot.services.db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditLog.action).where(AuditLog.target == model).order_by(AuditLog.id))]
    assert actions[-1] == "failed", actions

    slack.set_channel("GPRIVATE", member=True)
    second_model = add_model(sandbox, "ft:gpt-4o-mini-2024-07-18:org-sandbox:other:def67890")
    team.ask(f"delete-model {second_model}")
    second = team.request()
    assert second.id != first.id
    msg = team.wait_message(second.id, "Approve", channel="GPRIVATE", timeout=15)
    assert buttons(msg) == ["approval_approve", "approval_reject"] and deletes(sandbox) == 0
