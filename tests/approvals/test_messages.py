"""The approval message builder: every state, hostile text escaped, Slack's limits kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.messages.approval import ApprovalView, approval_message


def _sizes_ok(msg: dict) -> None:  # noqa: ANN001
    assert len(msg["blocks"]) <= 50
    for b in msg["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "actions":
            assert all(len(e["text"]["text"]) <= 75 for e in b["elements"])


@pytest.mark.parametrize("status", ["pending", "executing", "done", "failed", "rejected", "expired"])
def test_every_state_has_buttons_only_while_pending(status: str) -> None:
    v = ApprovalView(1, "delete_model", "ft:m", "U1", status, 2, ("U2",), decided_by="U3", error="boom", expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    msg = approval_message(v)
    has_buttons = any(b["type"] == "actions" for b in msg["blocks"])
    assert has_buttons == (status == "pending")
    assert "1 of 2" in str(msg["blocks"])
    _sizes_ok(msg)


def test_hostile_text_is_escaped_in_blocks_and_fallback() -> None:
    evil = "<!channel> & <http://x|click>"
    v = ApprovalView(7, "delete_model", "ft:" + evil, "U1", "failed", 2, reason=evil * 100, error=evil * 100)
    msg = approval_message(v)
    blob = str(msg["blocks"]) + msg["text"]
    assert "<!channel>" not in blob and "<http://x" not in blob and "&lt;!channel&gt;" in blob
    _sizes_ok(msg)


def test_many_approvers_and_long_names_stay_within_limits() -> None:
    v = ApprovalView(9, "job_budget", "file-" + "x" * 5000, "U1", "pending", 200, tuple(f"U{i:08d}" for i in range(150)), estimate_usd=None, estimate_note="n" * 5000, budget_usd=5, spec={"model": "m" * 5000})
    msg = approval_message(v)
    assert "and 110 more" in str(msg["blocks"]) and "unknown" in str(msg["blocks"])
    _sizes_ok(msg)
