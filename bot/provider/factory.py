"""Build every enabled provider. With FTBOT_SANDBOX=1 each talks to a local sandbox of its own kind:
OpenAI and Azure OpenAI to OpenAI-compatible sandboxes (Azure's on the `/openai/v1/` path its v1
endpoint uses), Together AI to the Together-compatible one, Vertex AI to the Vertex sandbox (with a Cloud Storage
emulator for its bucket)."""

from __future__ import annotations

import logging
from typing import Any

from bot.provider.base import Provider
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

SANDBOX_KEY = "sandbox"


def _sandbox_timing() -> Any:
    from bot.sandbox.state import Timing

    return Timing(validating_seconds=5, queued_seconds=5, step_seconds=2)


def _openai_sandbox() -> Any:
    from bot.sandbox.server import SandboxServer

    return SandboxServer(timing=_sandbox_timing()).start()


def make_one(name: str, settings: Settings, *, max_retries: int = 2, timeout: float = 30.0) -> tuple[Provider, Any | None]:
    """One provider, and the sandbox server started for it (None when it talks to a real service)."""
    sandbox = settings.sandbox
    if name == "openai":
        from bot.provider.openai_adapter import OpenAIProvider

        if sandbox and not settings.openai_base_url:
            server = _openai_sandbox()
            return OpenAIProvider(api_key=settings.openai_api_key or SANDBOX_KEY, base_url=server.url, max_retries=max_retries, timeout=timeout), server
        return OpenAIProvider(api_key=settings.openai_api_key or "", base_url=settings.openai_base_url, max_retries=max_retries, timeout=timeout), None
    if name == "azure":
        from bot.provider.azure_adapter import AzureOpenAIProvider

        if sandbox:
            server = _openai_sandbox()
            return AzureOpenAIProvider(endpoint=server.base, api_key=settings.azure_api_key or SANDBOX_KEY, max_retries=max_retries, timeout=timeout), server
        return AzureOpenAIProvider(endpoint=settings.azure_endpoint or "", api_key=settings.azure_api_key, max_retries=max_retries, timeout=timeout), None
    if name == "together":
        from bot.provider.together_adapter import TogetherProvider
        from bot.sandbox.together_server import TogetherSandboxServer
        from bot.sandbox.together_state import PROJECT_ID

        server = None
        base_url = settings.together_base_url
        if sandbox:
            server = TogetherSandboxServer(timing=_sandbox_timing()).start()
            base_url = server.url
        provider = TogetherProvider(
            api_key=settings.together_api_key or SANDBOX_KEY,
            base_url=base_url,
            project_id=settings.together_project_id or (PROJECT_ID if sandbox else None),
            max_retries=max_retries,
            timeout=timeout,
        )
        return provider, server
    if name == "ray":
        # The team's own cluster, sandbox or not: there is nothing to simulate in front of it.
        import json

        from bot.provider.ray_adapter import RayProvider

        provider = RayProvider(
            settings.ray_address or "",
            entrypoint=settings.ray_entrypoint or "",
            storage=settings.ray_storage or "",
            runtime_env=json.loads(settings.ray_runtime_env) if settings.ray_runtime_env else None,
            num_gpus=settings.ray_gpus,
            num_cpus=settings.ray_cpus,
            inference_url=settings.ray_inference_url,
            inference_key=settings.ray_inference_key,
            max_retries=max_retries,
            timeout=timeout,
        )
        return provider, None
    if name == "vertex":
        return _vertex(settings, max_retries=max_retries, timeout=timeout)
    raise SettingsError(f"unknown provider {name!r}")


def _vertex(settings: Settings, *, max_retries: int, timeout: float) -> tuple[Provider, Any | None]:
    """Gemini tuning on Vertex AI; with FTBOT_SANDBOX=1 the Vertex sandbox and its storage emulator."""
    from bot.provider.vertex_adapter import VertexProvider

    common = {"price_per_mtok": settings.vertex_price_per_mtok, "max_retries": max_retries, "timeout": timeout}
    if settings.sandbox:
        from bot.sandbox.vertex_server import VertexSandboxServer
        from bot.sandbox.vertex_state import PROJECT

        server = VertexSandboxServer(timing=_sandbox_timing()).start()
        try:
            provider = VertexProvider(
                project=PROJECT, location=settings.vertex_location or "us-central1", bucket=f"gs://{server.bucket}",
                sandbox_token=SANDBOX_KEY, base_url=server.url, storage_endpoint=server.storage_url, **common,
            )
        except Exception:
            server.stop()
            raise
        return provider, server
    provider = VertexProvider(
        project=settings.vertex_project or "", location=settings.vertex_location or "", bucket=settings.vertex_bucket or "", **common,
    )
    return provider, None


def make_providers(settings: Settings, **kw: Any) -> tuple[dict[str, Provider], list[Any]]:
    """Every enabled provider by name, and the sandbox servers started for them (to stop later)."""
    providers: dict[str, Provider] = {}
    servers: list[Any] = []
    try:
        for name in settings.enabled_providers:
            provider, server = make_one(name, settings, **kw)
            providers[name] = provider
            if server is not None:
                servers.append(server)
                log.info("FTBOT_SANDBOX=1: simulated provider %s at %s", name, server.url)
    except Exception:
        for server in servers:
            server.stop()
        raise
    return providers, servers


def make_provider(settings: Settings) -> tuple[Provider, object | None]:
    """The default provider alone (kept for callers that predate several providers)."""
    provider, server = make_one(settings.provider_default, settings)
    return provider, server
