"""Tests against a real local Ray head. They run only inside a private network namespace, where
Ray's node address is 127.0.0.1 and nothing leaves the machine: tests/test_ray_netns.py starts them
there (`unshare -n`, loopback up, FTBOT_RAY_NETNS=1). Outside it they are not collected at all: Ray
would bind the machine's outward address. They use SQLite (PostgreSQL is outside the namespace)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

IN_NETNS = os.environ.get("FTBOT_RAY_NETNS") == "1"
if not IN_NETNS:
    collect_ignore_glob = ["test_*.py"]

TRAINER = Path(__file__).resolve().parents[2] / "bot" / "sandbox" / "tiny_trainer.py"
CHANNEL = "C0RAY"


def entrypoint(*extra: str) -> str:
    """The team's training command: the tiny CPU trainer, every placeholder passed."""
    return (
        f"{sys.executable} {TRAINER} --train {{train}} --validation {{validation}} --model {{model}} --epochs {{epochs}} "
        f"--batch {{batch}} --lr {{lr}} --output {{output}} --seed {{seed}} --suffix {{suffix}} " + " ".join(extra)
    )


@pytest.fixture(scope="session")
def ray_head() -> Iterator[Any]:
    from bot.sandbox.ray_head import LocalRayHead

    head = LocalRayHead(num_cpus=1).start()
    try:
        yield head
    finally:
        head.stop()


@dataclass
class RayTeam:
    bot: Any
    slack: Any
    storage: Path

    @property
    def services(self) -> Any:
        return self.bot.services

    @property
    def provider(self) -> Any:
        return self.bot.services.providers["ray"]

    def ask(self, text: str, *, user: str = "U0001", trigger_id: str | None = None) -> dict[str, Any]:
        from tests.conftest import wait_for

        before = len(self.slack.responses())
        reply = self.bot.slack.command(text, user=user, channel=CHANNEL, trigger_id=trigger_id)
        assert reply.status == 200, reply.text
        if reply.body and reply.body.strip():
            return {"ack": reply.json, "text": reply.json.get("text", "")}
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before], timeout=30)


@pytest.fixture
def ray_team(ray_head, slack, sqlite_url, tmp_path) -> Iterator[Callable[..., RayTeam]]:  # noqa: ANN001
    """A bot (web app + optional worker) whose only provider is the Ray head, storage in tmp_path."""
    from bot.app import build_app
    from bot.provider.factory import make_providers
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.web import HttpServer, WebApp
    from bot.worker.runner import Worker
    from tests.conftest import SIGNING_SECRET, RunningBot, make_settings

    started: list[RunningBot] = []

    def _launch(*trainer_args: str, worker: bool = True, db: str | None = None, **overrides: Any) -> RayTeam:
        storage = tmp_path / "storage"
        url = db or sqlite_url
        settings = make_settings(
            url,
            type("NoSandbox", (), {"url": None})(),
            slack,
            openai_api_key=None,
            openai_base_url=None,
            ray_address=ray_head.address,
            ray_entrypoint=entrypoint(*trainer_args),
            ray_storage=str(storage),
            **overrides,
        )
        settings.check_providers()
        assert settings.enabled_providers == ("ray",)
        providers, servers = make_providers(settings, max_retries=0, timeout=10)
        assert not servers
        services = build_services(settings, providers=providers)
        app = build_app(services)
        server = HttpServer(WebApp(app, services), host="127.0.0.1", port=0).start()
        if worker:
            services.extras["worker"] = Worker(services, lease_seconds=5, send_interval=0.05, team_id="T0001").start()
        requester = SlackRequester(f"{server.url}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")
        bot = RunningBot(server.url, requester, services, app, server)
        started.append(bot)
        return RayTeam(bot, slack, storage)

    yield _launch
    for bot in started:
        stop_bot(bot)


def stop_bot(bot: Any) -> None:
    if bot.services.extras.get("worker") is not None:
        bot.services.extras.pop("worker").stop()
    bot.server.stop()
    bot.services.close()
