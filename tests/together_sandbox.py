"""The Together sandbox as pytest fixtures, shared by the Together tests (import the names you use)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from bot.provider.together_adapter import TogetherProvider
from bot.sandbox.state import Timing
from bot.sandbox.together_server import TogetherSandboxServer
from bot.sandbox.together_state import PROJECT_ID

FAST = Timing(validating_seconds=0.05, queued_seconds=0.05, step_seconds=0.01, eval_every=5)
LLAMA_8B = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
LLAMA_70B = "meta-llama/Llama-3.3-70B-Instruct-Reference"
API_KEY = "tgp-test-key"


@pytest.fixture(scope="session")
def _together_server() -> Iterator[TogetherSandboxServer]:
    server = TogetherSandboxServer(timing=replace(FAST)).start()
    yield server
    server.stop()


@pytest.fixture
def together_sandbox(_together_server: TogetherSandboxServer) -> TogetherSandboxServer:
    """The Together sandbox, emptied, fast, and insisting on API_KEY."""
    _together_server.state.reset()
    _together_server.world.reset()
    _together_server.state.timing = replace(FAST)
    _together_server.state.api_key = API_KEY
    return _together_server


def make_provider(server: TogetherSandboxServer, *, project_id: str | None = PROJECT_ID, **kw) -> TogetherProvider:  # noqa: ANN003
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 5)
    return TogetherProvider(API_KEY, server.url, project_id, **kw)
