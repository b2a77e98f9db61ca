"""Small builders shared by tests."""

from __future__ import annotations

import json
import re


def chat_jsonl(n: int = 12) -> bytes:
    return "\n".join(
        json.dumps({"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]})
        for i in range(n)
    ).encode()


def dpo_jsonl(n: int = 12) -> bytes:
    return "\n".join(
        json.dumps(
            {
                "input": {"messages": [{"role": "user", "content": f"q{i}"}]},
                "preferred_output": [{"role": "assistant", "content": "good"}],
                "non_preferred_output": [{"role": "assistant", "content": "bad"}],
            }
        )
        for i in range(n)
    ).encode()


def thread_lines(slack, channel: str, card_ts: str) -> list[str]:  # noqa: ANN001
    """The text lines of a job card's thread replies (not the card, not files), timestamps stripped."""
    lines: list[str] = []
    for m in slack.channel_messages(channel):
        if m.get("thread_ts") == card_ts and m.get("ts") != card_ts and m.get("text") and not m.get("files"):
            lines += m["text"].split("\n")
    return [re.sub(r"^`[0-9:]+` ", "", ln) for ln in lines]
