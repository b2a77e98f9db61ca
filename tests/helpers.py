"""Small builders shared by tests."""

from __future__ import annotations

import json


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
