"""Test controls: requests the sandbox refuses the way the real services refuse them.

- A chat request whose prompt contains a given text (optionally only for one model) is answered 400
  as Azure OpenAI's content filter answers it (`code: content_filter`, the `innererror` with the
  categories), or as OpenAI answers a prompt over the context window (`context_length_exceeded`).
- The next job creations (`remaining`, default 1) are answered with a given status and message, as
  a provider with no balance (Together: 402 "insufficient balance"), a file it refuses, or a base
  closed to new jobs answers.

Set through `/_sandbox/refusals` on either sandbox (POST adds, DELETE clears); a sandbox reset clears them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.errors import ApiError

# Azure OpenAI's answer to a prompt its content filter refuses (HTTP 400). The openai SDK raises
# BadRequestError with `code == "content_filter"`; `body` is the "error" object below.
AZURE_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. "
    "To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
CONTEXT_TOO_LONG = "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages."
CHAT_KINDS = ("content_filter", "context_length_exceeded")


def content_filter_error() -> ApiError:
    err = ApiError(400, AZURE_FILTERED, type="", param="prompt", code="content_filter")
    err.body["error"]["type"] = None
    err.body["error"]["status"] = 400
    err.body["error"]["innererror"] = {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": {"filtered": False, "severity": "safe"},
            "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"},
            "violence": {"filtered": True, "severity": "medium"},
        },
    }
    return err


@dataclass
class ChatRefusal:
    contains: str
    kind: str = "content_filter"
    model: str | None = None  # only requests to this model (None: any)


@dataclass
class CreateRefusal:
    status: int
    message: str
    code: str | None = None
    type: str = "invalid_request_error"
    remaining: int | None = 1  # None: every creation until cleared


@dataclass
class Refusals:
    chat: list[ChatRefusal] = field(default_factory=list)
    create: list[CreateRefusal] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # what was refused so far, by kind
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.chat.clear()
            self.create.clear()
            self.refused.clear()

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"chat": {"contains", "kind"?, "model"?}} and/or {"create_job": {"status", "message", "code"?, "remaining"?}}."""
        chat, create = body.get("chat"), body.get("create_job")
        if chat is None and create is None:
            raise ApiError(400, "give `chat` and/or `create_job`")
        with self.lock:
            if chat is not None:
                if not isinstance(chat, dict) or not isinstance(chat.get("contains"), str) or chat.get("kind", "content_filter") not in CHAT_KINDS:
                    raise ApiError(400, f"chat needs `contains` (a string) and a `kind` in {list(CHAT_KINDS)}")
                self.chat.append(ChatRefusal(chat["contains"], chat.get("kind", "content_filter"), chat.get("model")))
            if create is not None:
                if not isinstance(create, dict) or not isinstance(create.get("status"), int) or not isinstance(create.get("message"), str):
                    raise ApiError(400, "create_job needs `status` (an int) and `message` (a string)")
                self.create.append(CreateRefusal(create["status"], create["message"], create.get("code"), create.get("type", "invalid_request_error"), create.get("remaining", 1)))
            return self.describe()

    def describe(self) -> dict[str, Any]:
        return {
            "chat": [{"contains": r.contains, "kind": r.kind, "model": r.model} for r in self.chat],
            "create_job": [{"status": r.status, "message": r.message, "remaining": r.remaining} for r in self.create],
            "refused": dict(self.refused),
        }

    def check_chat(self, body: dict[str, Any]) -> None:
        """Raise the refusal a chat request gets, if any."""
        if not self.chat:
            return
        text = _prompt_text(body.get("messages"))
        model = body.get("model")
        with self.lock:
            hit = next((r for r in self.chat if r.contains in text and (r.model is None or r.model == model)), None)
            if hit is None:
                return
            self.refused[hit.kind] = self.refused.get(hit.kind, 0) + 1
        if hit.kind == "content_filter":
            raise content_filter_error()
        raise ApiError(400, CONTEXT_TOO_LONG, param="messages", code="context_length_exceeded")

    def check_create(self) -> None:
        with self.lock:
            hit = next((r for r in self.create if r.remaining is None or r.remaining > 0), None)
            if hit is None:
                return
            if hit.remaining is not None:
                hit.remaining -= 1
            self.refused["create_job"] = self.refused.get("create_job", 0) + 1
        raise ApiError(hit.status, hit.message, type=hit.type, code=hit.code)


def _prompt_text(messages: Any) -> str:
    parts: list[str] = []
    for m in messages if isinstance(messages, list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "\n".join(parts)
