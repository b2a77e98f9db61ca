from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.provider.openai_adapter import OpenAIProvider
from bot.services import Services, build_services
from tests.conftest import make_settings


@pytest.fixture
def make_services(sandbox, slack) -> Iterator[Callable[..., Services]]:  # noqa: ANN001
    made: list[Services] = []

    def _make(db_url: str, **overrides: Any) -> Services:
        settings = make_settings(db_url, sandbox, slack, **overrides)
        provider = OpenAIProvider(api_key="sk-test", base_url=sandbox.url, max_retries=0, timeout=5)
        svc = build_services(settings, provider=provider)
        made.append(svc)
        return svc

    yield _make
    for svc in made:
        svc.close()
