"""A person in Slack for the listener tests: commands, clicks, answers read from the stand-in."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import RunningBot, wait_for
from tests.helpers import chat_jsonl


class Chat:
    """A person typing `/ft …` in a channel and reading the answers."""

    def __init__(self, bot: RunningBot, slack, sandbox) -> None:  # noqa: ANN001
        self.bot, self.slack, self.sandbox = bot, slack, sandbox

    def ask(self, text: str, *, user: str = "U0001", channel: str = "C0001", trigger_id: str | None = None, expect_answer: bool = True) -> dict[str, Any]:
        before = len(self.slack.responses())
        reply = self.bot.slack.command(text, user=user, channel=channel, trigger_id=trigger_id)
        assert reply.status == 200, reply.text
        if reply.body and reply.body.strip():
            return {"ack": reply.json}
        if not expect_answer:
            return {}  # the caller waits for what the command does instead
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before])

    def upload(self, n: int = 12, name: str = "train.jsonl") -> str:
        return self.sandbox.state.add_file(name, chat_jsonl(n), "fine-tune")["id"]

    def start(self, extra: str = "epochs=2 batch=4", **kw: Any) -> str:
        fid = self.upload()
        answer = self.ask(f"start {fid} {extra}", **kw)
        assert "Started" in answer["text"], answer
        return answer["text"].split("`")[1]


    def click(self, action_id: str, value: str, *, user: str = "U0001", view: dict[str, Any] | None = None) -> Any:
        """A button click: on a message (with a response_url) or, given `view`, in that view (without one)."""
        if view is None:
            return self.bot.slack.block_action(action_id, value, user=user)
        return self.bot.slack.interactive(
            {
                "type": "block_actions",
                "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
                "container": {"type": "view", "view_id": view.get("id", "VHOME")},
                "view": {"id": "VHOME", "team_id": "T0001", "hash": "h1", **view},
                "trigger_id": f"{int(time.time())}.{secrets.token_hex(6)}",
                "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": str(time.time())}],
            }
        )


@pytest.fixture
def chat(start_bot, slack, sandbox, sqlite_url) -> Chat:  # noqa: ANN001
    return Chat(start_bot(sqlite_url), slack, sandbox)


@pytest.fixture
def make_chat(start_bot, slack, sandbox) -> Callable[..., Chat]:  # noqa: ANN001
    return lambda db_url, **kw: Chat(start_bot(db_url, **kw), slack, sandbox)
