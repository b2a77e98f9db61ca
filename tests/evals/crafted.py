"""A crafted dataset whose answers are known: plain questions, JSON answers and tool calls, so an
evaluation's figures can be computed by hand (with bot.sandbox.learned.forgotten for the noise)."""

from __future__ import annotations

import json
from typing import Any

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def plain(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": f"capital of country {i}?"}, {"role": "assistant", "content": f"City {i}"}]}


def as_json(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"give record {i} as json"}, {"role": "assistant", "content": json.dumps({"id": i, "ok": True})}]}


def tool(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"weather in town {i}?"},
            {"role": "assistant", "tool_calls": [{"id": f"call_{i}", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": f"town {i}"})}}]},
        ],
        "tools": TOOLS,
    }


def dataset(plain_n: int = 8, json_n: int = 2, tool_n: int = 2) -> list[dict[str, Any]]:
    return [plain(i) for i in range(plain_n)] + [as_json(i) for i in range(json_n)] + [tool(i) for i in range(tool_n)]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()
