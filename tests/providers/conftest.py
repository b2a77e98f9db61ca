"""The providers under contract, each with its own sandbox, and a bot running with any set of them.

A Kit says how a provider is enabled (its settings pointing at its sandbox) and how a test reaches
into that sandbox. Adding a provider to the contract suite is adding a Kit to KITS and its name to
CONTRACT_PROVIDERS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import select

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import ORG
from storage.models import ApprovalRequest
from tests.conftest import FAST, SIGNING_SECRET, RunningBot, make_settings, reset_sandbox, wait_for
from tests.together_sandbox import API_KEY as TOGETHER_KEY
from tests.together_sandbox import _together_server, together_sandbox  # noqa: F401  (fixtures)

TOGETHER_PROJECT = "proj_sandbox"  # bot.sandbox.together_state.PROJECT_ID

CONTRACT_PROVIDERS = ["openai", "azure", "together"]
CHANNEL = "C0001"


@dataclass
class Kit:
    name: str
    sandbox: Any  # the provider's sandbox server (with .state)
    settings: Callable[[Any], dict[str, Any]]  # sandbox -> Settings overrides that enable the provider
    done_event: str = "successfully completed"  # words of the provider's last event of a job that succeeded
    # What `/ft pause` on a job still validating answers (a provider without pause says so instead).
    pause_refusal: str = "only a running job can be paused"
    # The status a cancelled job shows before it is cancelled (None: cancelled at once).
    cancelling: str | None = None

    def add_model(self, model: str) -> str:
        with self.sandbox.state.lock:
            self.sandbox.state.models[model] = {"id": model, "object": "model", "created": int(time.time()), "owned_by": ORG}
        return model

    def has_model(self, model: str) -> bool:
        with self.sandbox.state.lock:
            return model in self.sandbox.state.models

    def jobs(self) -> dict[str, Any]:
        with self.sandbox.state.lock:
            return {jid: dict(j.obj) for jid, j in self.sandbox.state.jobs.items()}

    def model_of(self, job_id: str) -> str | None:
        return self.jobs()[job_id].get("fine_tuned_model")

    def training_file_of(self, job_id: str) -> str | None:
        return self.jobs()[job_id].get("training_file")

    def status_of(self, job_id: str) -> str:
        return self.jobs()[job_id]["status"]

    def files(self) -> list[dict[str, Any]]:
        with self.sandbox.state.lock:
            return [dict(f) for f in self.sandbox.state.files.values()]

    def slow(self, **timing: float) -> None:
        for k, v in timing.items():
            setattr(self.sandbox.state.timing, k, v)

    def fail(self, rate: float = 1.0, kinds: tuple[str, ...] = ("500",), **kw: Any) -> None:
        from bot.sandbox.state import Faults

        self.sandbox.state.faults = Faults(rate=rate, kinds=kinds, **kw)

    def heal(self) -> None:
        from bot.sandbox.state import Faults

        self.sandbox.state.faults = Faults()


class TogetherKit(Kit):
    """Together's sandbox keeps its own jobs, files and model registry (its `world`) over the shared
    simulation (its `state`: timing, faults)."""

    def add_model(self, model: str) -> str:
        from bot.sandbox.together_state import ORGANIZATION_ID, PROJECT_ID

        with self.sandbox.state.lock:
            mid = f"ml_{len(self.sandbox.world.models)}_{int(time.time() * 1000)}"
            self.sandbox.world.models[mid] = {"id": mid, "name": model, "organizationId": ORGANIZATION_ID, "projectId": PROJECT_ID}
        return model

    def has_model(self, model: str) -> bool:
        with self.sandbox.state.lock:
            return any(m["name"] == model for m in self.sandbox.world.models.values())

    def jobs(self) -> dict[str, Any]:
        with self.sandbox.state.lock:
            return {jid: self.sandbox.world.get_job(jid) for jid in self.sandbox.world.jobs}

    def model_of(self, job_id: str) -> str | None:
        job = self.jobs()[job_id]
        return job["model_output_name"] if job["status"] == "completed" else None

    def files(self) -> list[dict[str, Any]]:
        return self.sandbox.world.list_files()["data"]


@pytest.fixture(scope="session")
def _azure_sandbox_server() -> Iterator[SandboxServer]:
    # Azure's v1 endpoint is OpenAI's API under /openai/v1/: its own instance, so the two providers'
    # jobs, files and models are as separate as the real services keep them.
    server = SandboxServer(timing=replace(FAST)).start()
    yield server
    server.stop()


@pytest.fixture
def azure_sandbox(_azure_sandbox_server: SandboxServer) -> SandboxServer:
    return reset_sandbox(_azure_sandbox_server)


@pytest.fixture
def kits(sandbox, azure_sandbox, together_sandbox) -> dict[str, Kit]:  # noqa: ANN001, F811
    reset_sandbox(sandbox)
    together_sandbox.state.timing = replace(FAST)
    together_sandbox.state.daily_job_limit = 0
    from bot.sandbox.state import Faults

    together_sandbox.state.faults = Faults()
    return {
        "openai": Kit("openai", sandbox, lambda sb: {"openai_api_key": "sk-test-key-123456", "openai_base_url": sb.url}),
        # The endpoint is the resource's host; the adapter talks to <endpoint>/openai/v1/.
        "azure": Kit("azure", azure_sandbox, lambda sb: {"azure_endpoint": sb.base, "azure_api_key": "azure-test-key"}),
        # The base URL is the host alone (the SDK's paths carry /v1 and /v2); models live in a project.
        "together": TogetherKit(
            "together",
            together_sandbox,
            lambda sb: {"together_api_key": TOGETHER_KEY, "together_base_url": sb.url, "together_project_id": TOGETHER_PROJECT},
            done_event="Fine-tuning job completed",
            pause_refusal="Together AI cannot pause a job",
            cancelling="cancelling",
        ),
    }


@dataclass
class Team:
    """People in a channel typing `/ft …` and clicking, with the bot (web + worker) behind it."""

    bot: RunningBot
    slack: Any

    def ask(self, text: str, *, user: str = "U0001", channel: str = CHANNEL, trigger_id: str | None = None) -> dict[str, Any]:
        before = len(self.slack.responses())
        reply = self.bot.slack.command(text, user=user, channel=channel, trigger_id=trigger_id)
        assert reply.status == 200, reply.text
        if reply.body and reply.body.strip():
            return {"ack": reply.json}
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before])

    def click_approve(self, request_id: int, user: str) -> dict[str, Any]:
        before = len(self.slack.responses())
        reply = self.bot.slack.block_action("approval_approve", str(request_id), user=user, channel=CHANNEL)
        assert reply.status == 200, reply.text
        return wait_for(lambda: self.slack.responses()[before:] and self.slack.responses()[before])

    def last_request(self) -> ApprovalRequest:
        with self.bot.services.db.session() as s:
            req = s.scalars(select(ApprovalRequest).order_by(ApprovalRequest.id.desc())).first()
            s.expunge_all()
            return req


@pytest.fixture
def launch(kits, slack) -> Iterator[Callable[..., Team]]:  # noqa: ANN001
    """A bot with the named providers enabled, each on its sandbox; the default is the first named."""
    from bot.provider.factory import make_providers

    started: list[RunningBot] = []

    def _launch(db_url: str, names: list[str], *, default: str | None = None, worker: bool = True, provider_timeout: float = 5.0, **overrides: Any) -> Team:
        enable: dict[str, Any] = {"openai_api_key": None, "openai_base_url": None}
        for name in names:
            enable.update(kits[name].settings(kits[name].sandbox))
        settings = make_settings(db_url, kits["openai"].sandbox, slack, **{**enable, "default_provider": default or names[0], **overrides})
        settings.check_providers()
        assert settings.enabled_providers == tuple(n for n in ("openai", "azure", "together") if n in names)
        providers, servers = make_providers(settings, max_retries=0, timeout=provider_timeout)
        assert not servers  # real endpoints (the sandboxes), not FTBOT_SANDBOX's own
        return run_team(settings, providers, slack, started, worker=worker)

    yield _launch
    stop_teams(started)
    from bot.jobs.view import show_providers

    show_providers(False)  # the process-wide label switch back to one provider for the tests that follow


def run_team(settings, providers, slack, started: list[RunningBot], *, worker: bool) -> Team:  # noqa: ANN001
    """The bot as `ftbot serve` runs it (and its worker), on these providers, signed requests ready."""
    from bot.app import build_app
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.web import HttpServer, WebApp
    from bot.worker.runner import Worker

    services = build_services(settings, providers=providers)
    app = build_app(services)
    server = HttpServer(WebApp(app, services), host="127.0.0.1", port=0).start()
    if worker:
        services.extras["worker"] = Worker(services, lease_seconds=5, send_interval=0.05, team_id="T0001").start()
    requester = SlackRequester(f"{server.url}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")
    bot = RunningBot(server.url, requester, services, app, server)
    started.append(bot)
    return Team(bot, slack)


def stop_teams(started: list[RunningBot]) -> None:
    for bot in started:
        if "worker" in bot.services.extras:
            bot.services.extras["worker"].stop()
        bot.server.stop()
        bot.services.close()
