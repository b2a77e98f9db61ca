"""The sandbox's /_sandbox/chat control: canned answers for tests of what a model may say."""

from __future__ import annotations

import json
import urllib.request


def _call(sandbox, path: str, body: dict | None = None, method: str = "POST") -> dict:  # noqa: ANN001
    req = urllib.request.Request(
        f"{sandbox.base}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def _answer(sandbox, prompt: str) -> str:  # noqa: ANN001
    body = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": prompt}]}
    return _call(sandbox, "/v1/chat/completions", body)["choices"][0]["message"]["content"]


def test_chat_answers_can_echo_or_be_canned(sandbox) -> None:  # noqa: ANN001
    assert _answer(sandbox, "hi <!here>").endswith("You asked: hi <!here>")
    _call(sandbox, "/_sandbox/chat", {"reply": "{prompt}"})
    assert _answer(sandbox, "hi <!here> & bye") == "hi <!here> & bye"
    _call(sandbox, "/_sandbox/chat", {"reply": "<!channel> said: {prompt}"})
    assert _answer(sandbox, "x") == "<!channel> said: x"
    _call(sandbox, "/_sandbox/chat", method="DELETE")
    assert _answer(sandbox, "again").endswith("You asked: again")
