"""Sandbox models that learned: a fine-tuned sandbox model answers the prompts of its training file
with the trained answers (tool calls included), except a deterministic fraction it "forgot"; its
base model, and any model asked something it was not trained on, answers generically. So an
evaluation in the sandbox shows a real difference, and a test can compute the exact figures of a
crafted dataset (`forgotten` is public for that).

Shared by the OpenAI sandbox (state.py) and the Together sandbox (together_state.py)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_NOISE = 0.1
FORGOTTEN_ANSWER = "I am not sure."


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# The keys a chat message may carry (the Chat Completions request schema); anything else, a
# training-only `weight` for one, is refused with a 400 as the real APIs do.
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal", "audio"})


def unknown_message_key(messages: Sequence[Any]) -> tuple[int, str] | None:
    """The first (index, key) of a message key the chat API does not take, or None."""
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            for k in m:
                if k not in MESSAGE_KEYS:
                    return i, str(k)
    return None


def prompt_key(messages: Sequence[Any]) -> str:
    """The conversation before the answer, as a key: roles, texts and tool calls (weights dropped)."""
    rows = []
    for m in messages:
        if not isinstance(m, Mapping):
            continue
        calls = [
            [(c.get("function") or {}).get("name"), (c.get("function") or {}).get("arguments")]
            for c in m.get("tool_calls") or []
            if isinstance(c, Mapping)
        ]
        rows.append([m.get("role"), _text(m.get("content")), calls])
    return json.dumps(rows, sort_keys=True)


@dataclass(frozen=True)
class Lesson:
    content: str | None
    tool_calls: tuple[tuple[str, str], ...] = ()


def lessons_of(content: bytes) -> dict[str, Lesson]:
    """prompt key -> the trained answer, for every example of a training file (chat, tools, DPO's
    preferred answer, prompt/completion)."""
    out: dict[str, Lesson] = {}
    for line in content.splitlines():
        try:
            ex = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ex, dict):
            continue
        if isinstance(ex.get("input"), dict) and ex.get("preferred_output"):
            msgs = ex["input"].get("messages") or []
            answer = [m for m in ex["preferred_output"] if isinstance(m, dict) and m.get("role") == "assistant"]
        elif isinstance(ex.get("messages"), list):
            msgs = ex["messages"]
            last = max((i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "assistant"), default=None)
            if last is None:
                continue
            msgs, answer = msgs[:last], [msgs[last]]
        elif isinstance(ex.get("prompt"), str) and isinstance(ex.get("completion"), str):
            msgs, answer = [{"role": "user", "content": ex["prompt"]}], [{"role": "assistant", "content": ex["completion"]}]
        else:
            continue
        if not answer:
            continue
        a = answer[-1]
        calls = tuple(
            (str((c.get("function") or {}).get("name") or ""), _args((c.get("function") or {}).get("arguments")))
            for c in a.get("tool_calls") or []
            if isinstance(c, dict)
        )
        out[prompt_key(msgs)] = Lesson(_text(a.get("content")) if a.get("content") is not None else None, calls)
    return out


def _args(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})


def forgotten(model: str, key: str, noise: float) -> bool:
    """Whether `model` answers this trained prompt wrongly: a fixed fraction `noise`, by hash."""
    h = int.from_bytes(hashlib.sha256(f"{model}\x00{key}".encode()).digest()[:8], "big")
    return h / 2**64 < noise


def generic_answer(model: str, messages: Sequence[Any]) -> str:
    last = messages[-1] if messages else {}
    prompt = _text(last.get("content")) if isinstance(last, Mapping) else ""
    return f"(sandbox answer from {model}) You asked: {prompt[:500]}"


def reply(model: str, messages: Sequence[Any], lessons: Mapping[str, Lesson] | None, noise: float) -> dict[str, Any]:
    """The assistant message and finish reason, in OpenAI's chat completion shape."""
    lesson = None
    if lessons:
        key = prompt_key(messages)
        lesson = lessons.get(key)
        if lesson is not None and forgotten(model, key, noise):
            return {"message": {"role": "assistant", "content": FORGOTTEN_ANSWER}, "finish_reason": "stop"}
    if lesson is None:
        return {"message": {"role": "assistant", "content": generic_answer(model, messages)}, "finish_reason": "stop"}
    message: dict[str, Any] = {"role": "assistant", "content": lesson.content}
    if lesson.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{secrets.token_hex(8)}", "type": "function", "function": {"name": name, "arguments": args}}
            for name, args in lesson.tool_calls
        ]
        return {"message": message, "finish_reason": "tool_calls"}
    return {"message": message, "finish_reason": "stop"}


def usage(messages: Sequence[Any], message: Mapping[str, Any]) -> dict[str, int]:
    """Word counts standing in for tokens (the sandbox has no tokenizer of the served model)."""
    pt = sum(len(_text(m.get("content")).split()) + 3 for m in messages if isinstance(m, Mapping)) + 3
    ct = len(_text(message.get("content")).split()) + sum(len(json.dumps(c)) // 4 for c in message.get("tool_calls") or []) + 1
    return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}


class Memory:
    """Lessons per training file, read once (files never change once uploaded)."""

    def __init__(self) -> None:
        self._by_file: dict[str, dict[str, Lesson]] = {}
        self.noise = DEFAULT_NOISE
        # (model, prompt key) -> chat completions asked: tests count what was asked twice.
        self.asked: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        self._by_file.clear()
        self.noise = DEFAULT_NOISE
        self.asked.clear()

    def count(self, model: str, messages: Sequence[Any]) -> None:
        self.asked[(model, prompt_key(messages))] += 1

    def of_file(self, file_id: str, content: bytes | None) -> dict[str, Lesson] | None:
        if content is None:
            return None
        found = self._by_file.get(file_id)
        if found is None:
            found = self._by_file[file_id] = lessons_of(content)
        return found
