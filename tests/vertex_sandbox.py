"""The Vertex sandbox (and its Cloud Storage emulator) as pytest fixtures, shared by the Vertex tests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.provider.vertex_adapter import VertexProvider
from bot.sandbox.state import Timing
from bot.sandbox.vertex_server import VertexSandboxServer
from bot.sandbox.vertex_state import PROJECT

FAST = Timing(validating_seconds=0.05, queued_seconds=0.05, step_seconds=0.01)
FLASH = "gemini-3.5-flash"
LOCATION = "us-central1"


@pytest.fixture(scope="session")
def _vertex_server() -> Iterator[VertexSandboxServer]:
    server = VertexSandboxServer(timing=replace(FAST)).start()
    yield server
    server.stop()


@pytest.fixture
def vertex_sandbox(_vertex_server: VertexSandboxServer) -> VertexSandboxServer:
    """The Vertex sandbox, emptied and fast (the bucket keeps its objects: their names are content hashes)."""
    _vertex_server.world.reset()
    _vertex_server.app.faults.clear()
    _vertex_server.world.timing = replace(FAST)
    _vertex_server.world.clock = time.time
    return _vertex_server


def make_provider(server: VertexSandboxServer, **kw) -> VertexProvider:  # noqa: ANN003
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5)
    kw.setdefault("location", LOCATION)
    kw.setdefault("bucket", f"gs://{server.bucket}/tests")
    return VertexProvider(project=PROJECT, sandbox_token="sandbox", base_url=server.url, storage_endpoint=server.storage_url, **kw)


def openai_chat(n: int, *, system: str | None = "Answer briefly.", tag: str = "q") -> bytes:
    lines = []
    for i in range(n):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": f"{tag} question {i}?"},
            {"role": "assistant", "content": f"answer {i} for {tag}"},
        ]
        lines.append(json.dumps({"messages": messages}))
    return ("\n".join(lines) + "\n").encode()


def gemini_chat(n: int, *, tag: str = "g") -> bytes:
    return ("\n".join(
        json.dumps({"contents": [{"role": "user", "parts": [{"text": f"{tag} {i}"}]}, {"role": "model", "parts": [{"text": f"{tag} answer {i}"}]}]})
        for i in range(n)
    ) + "\n").encode()
