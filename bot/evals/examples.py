"""A dataset line as an evaluation example: the prompt exactly as production would send it (every
message before the last assistant message, and the declared tools) and the reference answer (that
last assistant message; for a preference example, the preferred output)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    line: int
    messages: list[dict[str, Any]]
    reference: dict[str, Any]  # {"content": str | None, "tool_calls": [{"name", "arguments"}]}
    tools: list[dict[str, Any]] | None = None

    @property
    def prompt(self) -> dict[str, Any]:
        return {"messages": self.messages, "tools": self.tools}


@dataclass
class Parsed:
    examples: list[Example] = field(default_factory=list)
    # Lines that cannot be an example, by reason: no_reference (no assistant turn), unreadable.
    left_out: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.left_out[reason] = self.left_out.get(reason, 0) + 1


def _reference(message: dict[str, Any]) -> dict[str, Any] | None:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    calls = []
    for c in message.get("tool_calls") or []:
        fn = c.get("function") if isinstance(c, dict) else None
        if isinstance(fn, dict):
            args = fn.get("arguments")
            calls.append({"name": str(fn.get("name") or ""), "arguments": args if isinstance(args, str) else json.dumps(args)})
    if content is None and not calls:
        return None
    return {"content": content if isinstance(content, str) else None, "tool_calls": calls}


def clean_message(m: dict[str, Any]) -> dict[str, Any]:
    # `weight` is a training field; the chat API refuses it.
    return {k: v for k, v in m.items() if k != "weight"}


def example_of(obj: Any, line: int) -> Example | str:
    """The example, or why the line is not one."""
    if not isinstance(obj, dict):
        return "unreadable"
    tools = obj.get("tools") if isinstance(obj.get("tools"), list) and obj.get("tools") else None
    if isinstance(obj.get("input"), dict) and "preferred_output" in obj:  # DPO: the preferred answer
        inp = obj["input"]
        msgs = [m for m in inp.get("messages") or [] if isinstance(m, dict)]
        preferred = [m for m in obj.get("preferred_output") or [] if isinstance(m, dict) and m.get("role") == "assistant"]
        ref = _reference(preferred[-1]) if preferred else None
        tools = inp.get("tools") if isinstance(inp.get("tools"), list) and inp.get("tools") else tools
        if ref is None or not msgs:
            return "no_reference"
        return Example(line, [clean_message(m) for m in msgs], ref, tools)
    if isinstance(obj.get("messages"), list):
        msgs = [m for m in obj["messages"] if isinstance(m, dict)]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
        if last is None or last == 0:
            return "no_reference"
        ref = _reference(msgs[last])
        if ref is None:
            return "no_reference"
        return Example(line, [clean_message(m) for m in msgs[:last]], ref, tools)
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
        return Example(line, [{"role": "user", "content": obj["prompt"]}], {"content": obj["completion"], "tool_calls": []})
    return "no_reference"


def parse_lines(lines: Iterable[bytes | str]) -> Parsed:
    out = Parsed()
    for n, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            out.skip("unreadable")
            continue
        got = example_of(obj, n)
        if isinstance(got, str):
            out.skip(got)
        else:
            out.examples.append(got)
    return out


def parse_bytes(content: bytes) -> Parsed:
    return parse_lines(content.splitlines())
