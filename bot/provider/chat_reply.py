"""Turn an OpenAI-shaped chat completion (OpenAI, Azure and Together all answer in that shape, each
through its own SDK's types) into our ChatReply, and the request's optional fields into keyword
arguments. Duck-typed on purpose: no SDK is imported here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.provider.base import ChatReply, ToolCall


def request_options(
    tools: Sequence[Mapping[str, Any]] | None, temperature: float | None, seed: int | None
) -> dict[str, Any]:
    """Only the options that were given: an absent option is left to the provider's default, and
    some providers refuse `tools: []`."""
    opts: dict[str, Any] = {}
    if tools:
        opts["tools"] = [dict(t) for t in tools]
    if temperature is not None:
        opts["temperature"] = temperature
    if seed is not None:
        opts["seed"] = seed
    return opts


def chat_reply(resp: Any) -> ChatReply:
    usage = getattr(resp, "usage", None)
    choices = getattr(resp, "choices", None) or []
    if not choices:
        return ChatReply(content=None, prompt_tokens=_int(usage, "prompt_tokens"), completion_tokens=_int(usage, "completion_tokens"))
    choice = choices[0]
    message = getattr(choice, "message", None)
    calls: list[ToolCall] = []
    for call in getattr(message, "tool_calls", None) or []:
        fn = getattr(call, "function", None)
        if fn is None:  # a custom (non-function) tool call: nothing we can compare
            continue
        calls.append(ToolCall(name=str(getattr(fn, "name", "") or ""), arguments=str(getattr(fn, "arguments", "") or ""), id=getattr(call, "id", None)))
    return ChatReply(
        content=getattr(message, "content", None),
        tool_calls=tuple(calls),
        prompt_tokens=_int(usage, "prompt_tokens"),
        completion_tokens=_int(usage, "completion_tokens"),
        finish_reason=getattr(choice, "finish_reason", None),
    )


def _int(obj: Any, name: str) -> int | None:
    value = getattr(obj, name, None) if obj is not None else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
