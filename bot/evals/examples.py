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
    # Lines that cannot be an example, by reason: no_reference (no assistant turn), unreadable, malformed.
    left_out: dict[str, int] = field(default_factory=dict)
    # (line, what is wrong) of each malformed example: reported, never sent.
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.left_out[reason] = self.left_out.get(reason, 0) + 1


class Malformed(ValueError):
    """An example whose shape no chat API takes (a content part whose text is not a string,
    tool_calls that is not a list, …): left out with its line, before anything is asked."""


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int | float):
        return "a number"
    return "an object" if isinstance(v, dict) else "text" if isinstance(v, str) else f"a {type(v).__name__}"


def _content_text(content: Any, where: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, p in enumerate(content):
            if not isinstance(p, dict):
                raise Malformed(f"{where} part {i + 1} is not an object")
            text = p.get("text")
            if p.get("type", "text") == "text" and not isinstance(text, str):
                raise Malformed(f"{where} part {i + 1} has a text that is not a string")
            if isinstance(text, str):
                out.append(text)
        return "".join(out)
    raise Malformed(f"{where} is {_kind(content)}, not text or a list of parts")


def _calls(message: dict[str, Any]) -> list[dict[str, str]]:
    raw = message.get("tool_calls")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Malformed(f"tool_calls is {_kind(raw)}, not a list")
    calls = []
    for i, c in enumerate(raw):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise Malformed(f"tool call {i + 1} has no function name")
        args = fn.get("arguments")
        calls.append({"name": fn["name"], "arguments": args if isinstance(args, str) else json.dumps(args)})
    return calls


def check_messages(messages: list[dict[str, Any]]) -> None:
    """Raise Malformed when a prompt message could not be sent as it is."""
    for n, m in enumerate(messages, 1):
        if not isinstance(m.get("role"), str):
            raise Malformed(f"message {n} has no role")
        _content_text(m.get("content"), f"message {n}'s content")
        _calls(m)


def _reference(message: dict[str, Any]) -> dict[str, Any] | None:
    """The reference of an assistant message; None when it has none. Never raises: a malformed
    message has no usable reference (strict checks: reference_of)."""
    try:
        return reference_of(message)
    except Malformed:
        return None


def reference_of(message: dict[str, Any]) -> dict[str, Any] | None:
    content = _content_text(message.get("content"), "the answer's content")
    calls = _calls(message)
    if content is None and not calls:
        return None
    return {"content": content, "tool_calls": calls}


def clean_message(m: dict[str, Any]) -> dict[str, Any]:
    # `weight` is a training field; the chat API refuses it.
    return {k: v for k, v in m.items() if k != "weight"}


def example_of(obj: Any, line: int) -> Example | str:
    """The example, or why the line is not one (Malformed raised when its shape is wrong)."""
    if not isinstance(obj, dict):
        return "unreadable"
    tools = obj.get("tools") if isinstance(obj.get("tools"), list) and obj.get("tools") else None
    if isinstance(obj.get("input"), dict) and "preferred_output" in obj:  # DPO: the preferred answer
        inp = obj["input"]
        msgs = [m for m in inp.get("messages") or [] if isinstance(m, dict)]
        preferred = [m for m in obj.get("preferred_output") or [] if isinstance(m, dict) and m.get("role") == "assistant"]
        ref = reference_of(preferred[-1]) if preferred else None
        tools = inp.get("tools") if isinstance(inp.get("tools"), list) and inp.get("tools") else tools
        if ref is None or not msgs:
            return "no_reference"
        check_messages(msgs)
        return Example(line, [clean_message(m) for m in msgs], ref, tools)
    if isinstance(obj.get("messages"), list):
        msgs = [m for m in obj["messages"] if isinstance(m, dict)]
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
        if last is None or last == 0:
            return "no_reference"
        ref = reference_of(msgs[last])
        if ref is None:
            return "no_reference"
        check_messages(msgs[:last])
        return Example(line, [clean_message(m) for m in msgs[:last]], ref, tools)
    if isinstance(obj.get("contents"), list):  # Gemini's format (a Vertex AI dataset in ftbot's bucket)
        return example_of({"messages": _gemini_messages(obj)}, line)
    if isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
        return Example(line, [{"role": "user", "content": obj["prompt"]}], {"content": obj["completion"], "tool_calls": []})
    return "no_reference"


def _gemini_messages(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Gemini's `systemInstruction` and `contents` (roles user / model, text parts) as chat messages."""

    def text(parts: Any) -> str:
        if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in parts):
            raise Malformed("a Gemini turn's parts are not text parts")
        return "".join(p.get("text", "") for p in parts)

    out: list[dict[str, Any]] = []
    system = obj.get("systemInstruction") or obj.get("system_instruction")
    if isinstance(system, dict):
        out.append({"role": "system", "content": text(system.get("parts"))})
    for turn in obj["contents"]:
        if not isinstance(turn, dict):
            raise Malformed("a Gemini turn is not an object")
        out.append({"role": "assistant" if turn.get("role") == "model" else "user", "content": text(turn.get("parts"))})
    return out


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
        try:
            got = example_of(obj, n)
        except Malformed as exc:
            out.skip("malformed")
            out.malformed.append((n, str(exc)))
            continue
        if isinstance(got, str):
            out.skip(got)
        else:
            out.examples.append(got)
    return out


def parse_bytes(content: bytes) -> Parsed:
    return parse_lines(content.splitlines())


def malformed_note(malformed: list[tuple[int, str]], shown: int = 5) -> str:
    """"2 malformed examples left out: line 3 (tool_calls is a int, not a list), line 9 (…)"."""
    if not malformed:
        return ""
    lines = ", ".join(f"line {n} ({why})" for n, why in malformed[:shown])
    more = f" and {len(malformed) - shown} more" if len(malformed) > shown else ""
    return f"{len(malformed)} malformed example{'s' if len(malformed) != 1 else ''} left out: {lines}{more}"
