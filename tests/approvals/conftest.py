from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.sandbox.state import ORG
from storage.models import ApprovalRequest
from tests.conftest import RunningBot, wait_for

CHANNEL = "C0001"
APPROVAL_CHANNEL = "CAPPROVE"


def add_model(sandbox, name: str = "ft:gpt-4o-mini-2024-07-18:org-sandbox:support:abc12345") -> str:  # noqa: ANN001
    with sandbox.state.lock:
        sandbox.state.models[name] = {"id": name, "object": "model", "created": int(time.time()), "owned_by": ORG}
    return name


def deletes(sandbox) -> int:  # noqa: ANN001
    return sandbox.state.requests.get("delete_model", 0)


class Team:
    """People in a channel: typing `/ft …`, clicking buttons, reading what the bot says."""

    def __init__(self, bot: RunningBot, slack, sandbox) -> None:  # noqa: ANN001
        self.bot, self.slack, self.sandbox = bot, slack, sandbox

    def ask(self, text: str, *, user: str = "U0001", channel: str = CHANNEL, trigger_id: str | None = None) -> dict[str, Any]:
        before = len(self.slack.responses())
        reply = self.bot.slack.command(text, user=user, channel=channel, trigger_id=trigger_id)
        assert reply.status == 200, reply.text
        if reply.body and reply.body.strip():
            return {"ack": reply.json}
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before])

    def click(self, request_id: int, user: str, *, reject: bool = False, channel: str = CHANNEL) -> dict[str, Any]:
        before = len(self.slack.responses())
        reply = self.bot.slack.block_action("approval_reject" if reject else "approval_approve", str(request_id), user=user, channel=channel)
        assert reply.status == 200, reply.text
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before])

    def request(self) -> ApprovalRequest:
        with self.bot.services.db.session() as s:
            return s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id.desc())).first()

    def message(self, request_id: int, channel: str = CHANNEL) -> dict[str, Any] | None:
        for m in self.slack.channel_messages(channel):
            if ((m.get("metadata") or {}).get("event_payload") or {}).get("key") == f"approval:{request_id}:post":
                return m
        return None

    def wait_message(self, request_id: int, contains: str, channel: str = CHANNEL, timeout: float = 10.0) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            m = self.message(request_id, channel)
            return m if m and contains in m["text"] + str(m.get("blocks")) else None

        return wait_for(ok, timeout)


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


@pytest.fixture
def make_team(start_bot, slack, sandbox) -> Callable[..., Team]:  # noqa: ANN001
    return lambda db_url, **kw: Team(start_bot(db_url, **kw), slack, sandbox)
