"""Azure OpenAI's v1 endpoint behind ftbot's Provider interface.

The same `openai` client and the same API shape as OpenAI (so this subclasses the OpenAI adapter),
with what differs handled rather than papered over:
- a fine-tuned model answers only once *deployed*, and deployments are made in Azure's control plane
  (portal, ARM, `az cognitiveservices account deployment create`), not through this API: `complete`
  takes a deployment name and says so when given a model;
- shorter suffixes (validated to 18 characters);
- pause / resume only for a running job that has trained at least one step.

Auth: an API key, or (no key, `azure-identity` installed: `pip install ftbot[azure]`) an Entra ID
token provider that the openai client calls before each request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.provider.base import (
    ChatReply,
    Job,
    JobSpec,
    JobStatus,
    ProviderInvalidRequest,
    ProviderNotFound,
    is_paused,
)
from bot.provider.openai_adapter import OpenAIProvider

AZURE_SUFFIX_LIMIT = 18
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"

DEPLOY_HINT = (
    "On Azure OpenAI a fine-tuned model answers only through a *deployment*, and deployments are made in "
    "Azure (the portal, or `az cognitiveservices account deployment create`), not through ftbot. "
    "Deploy it there, then `/ft try DEPLOYMENT PROMPT` with the deployment's name."
)


def v1_base_url(endpoint: str) -> str:
    """`https://<resource>.openai.azure.com` (with or without a trailing path) → its v1 API base."""
    base = endpoint.rstrip("/")
    if base.endswith("/openai/v1"):
        return base + "/"
    return base + "/openai/v1/"


def entra_token_provider() -> Any:
    """A bearer-token callable from azure-identity (untested here: it needs a real Azure tenant)."""
    try:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ProviderInvalidRequest("AZURE_OPENAI_API_KEY is not set and azure-identity is not installed (pip install ftbot[azure])") from exc
    return get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)


def is_model_name(name: str) -> bool:
    """A fine-tuned model's name rather than a deployment's (Azure: `<base>.ft-<hash>`; the sandbox: `ft:…`)."""
    return name.startswith("ft:") or ".ft-" in name


class AzureOpenAIProvider(OpenAIProvider):
    name = "azure"
    vendor = "Azure OpenAI"
    key_setting = "AZURE_OPENAI_API_KEY"
    max_suffix_length = AZURE_SUFFIX_LIMIT

    def __init__(self, *, endpoint: str, api_key: str | None = None, max_retries: int = 2, timeout: float = 30.0, **kw: Any) -> None:
        key: Any = api_key if api_key else entra_token_provider()
        super().__init__(api_key=key, base_url=v1_base_url(endpoint), max_retries=max_retries, timeout=timeout, **kw)

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        if spec.suffix and len(spec.suffix) > AZURE_SUFFIX_LIMIT:
            raise ProviderInvalidRequest(f"Azure OpenAI takes a suffix of at most {AZURE_SUFFIX_LIMIT} characters, got {len(spec.suffix)}")
        return super().create_job(spec, idempotency_key=idempotency_key)

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        if action == "pause" and job.status == JobStatus.RUNNING and not trained_steps:
            return f"`{job.id}` has not trained a step yet: Azure OpenAI pauses a running job only after its first step."
        if action == "resume" and is_paused(job.status) and not trained_steps:
            return f"`{job.id}` never trained a step: Azure OpenAI resumes only a job paused after training."
        return None

    def chat(self, model: str, messages: Sequence[Mapping[str, Any]], **kw: Any) -> ChatReply:
        # complete() goes through here too, so both answer the same way about deployments.
        if is_model_name(model):
            raise ProviderInvalidRequest(f"`{model[:120]}` is a model, not a deployment. {DEPLOY_HINT}")
        try:
            return super().chat(model, messages, **kw)
        except ProviderNotFound as exc:
            raise ProviderNotFound(f"Azure OpenAI has no deployment named `{model[:120]}`. {DEPLOY_HINT}", code=exc.code, status=404) from exc
