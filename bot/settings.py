"""Settings from the environment (and `.env` when present), exactly the variables of the product contract.

A missing or malformed value raises SettingsError with one line naming it; the CLI prints that line
and exits. Secret values never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import dotenv_values

from storage.db import DEFAULT_URL, normalise_url

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# HTTP server limits (README, Deploy). Slack's requests are well under 1 MB; OpenAI's webhooks a few KB.
DEFAULT_HTTP_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_HTTP_CONNECTION_LIMIT = 100
DEFAULT_HTTP_CHANNEL_TIMEOUT = 30


class SettingsError(Exception):
    """One line that names the setting at fault."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    database_url: str = DEFAULT_URL
    port: int = 3000
    poll_interval: float = 30.0
    notify_channel: str | None = None
    operators: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    approvals_required: int = 2
    approval_channel: str | None = None
    approval_ttl_hours: float = 24.0
    job_budget_usd: float | None = None
    sandbox: bool = False
    # FTBOT_PRICE_TABLE, read at start-up: (model, USD per 1M training tokens) merged over the shipped table
    price_table: tuple[tuple[str, float], ...] = ()
    retirements_file: str | None = None
    # Training health (bot.jobs.health); the README explains each default.
    health_alerts: bool = True
    health_patience: int = 3
    health_smoothing: int = 5
    health_divergence: float = 1.5
    health_stall_factor: float = 5.0
    health_stall_minutes: float = 5.0
    health_queued_minutes: float = 120.0
    health_tokens_percent: float = 10.0
    # Keep the outbox to Slack's rate limits (bot.outbox.pacing); off only for a Slack without them.
    slack_pacing: bool = True
    azure_endpoint: str | None = None
    azure_api_key: str | None = field(default=None, repr=False)
    together_api_key: str | None = field(default=None, repr=False)
    together_base_url: str | None = None
    together_project_id: str | None = None
    default_provider: str | None = None
    # A team's own Ray cluster (bot/provider/ray_adapter.py); RAY_ADDRESS enables it.
    ray_address: str | None = None
    ray_entrypoint: str | None = None
    ray_storage: str | None = None
    ray_runtime_env: str | None = None  # JSON object, checked at start-up
    ray_gpus: float | None = None
    ray_cpus: float | None = None
    ray_inference_url: str | None = None
    ray_inference_key: str | None = field(default=None, repr=False)
    # Gemini tuning on Google Vertex AI (bot/provider/vertex_adapter.py); FTBOT_VERTEX_BUCKET or
    # FTBOT_VERTEX_LOCATION enables it (GOOGLE_CLOUD_PROJECT alone does not: many GCP hosts set it).
    vertex_project: str | None = None
    vertex_location: str | None = None
    vertex_bucket: str | None = None
    vertex_price_per_mtok: float | None = None
    # Evaluations (bot.evals): after each successful job, examples per evaluation, requests in flight per provider.
    eval_on_completion: bool = True
    eval_examples: int = 50
    eval_concurrency: int = 8

    # ---- providers ------------------------------------------------------------------------

    @property
    def enabled_providers(self) -> tuple[str, ...]:
        """Providers with any of their settings given, in a fixed order. With none given, OpenAI
        alone (as before several providers existed: OPENAI_API_KEY, or FTBOT_SANDBOX=1)."""
        on = []
        if self.openai_api_key or self.openai_base_url:
            on.append("openai")
        if self.azure_endpoint or self.azure_api_key:
            on.append("azure")
        if self.together_api_key or self.together_base_url or self.together_project_id:
            on.append("together")
        if self.ray_address:
            on.append("ray")
        if self.vertex_bucket or self.vertex_location:
            on.append("vertex")
        return tuple(on) or ("openai",)

    @property
    def provider_default(self) -> str:
        """The provider `start` and `upload` use when none is named."""
        return self.default_provider or self.enabled_providers[0]

    def check_providers(self) -> None:
        """Every enabled provider has what it needs (the sandbox stands in for keys and endpoints)."""
        _check_default(self)
        problems = _check_ray(self) + self.provider_problems()
        if problems:
            raise SettingsError(_one_message(problems))

    def provider_problems(self) -> list[str]:
        enabled = self.enabled_providers
        if self.sandbox:
            return []
        out = []
        if "openai" in enabled and not self.openai_api_key:
            out.append("OPENAI_API_KEY is required but not set")
        if "azure" in enabled:
            if not self.azure_endpoint:
                out.append("AZURE_OPENAI_ENDPOINT is required when AZURE_OPENAI_API_KEY is set")
            if not self.azure_api_key and not _has_azure_identity():
                out.append("AZURE_OPENAI_API_KEY is required (or install ftbot[azure] to sign in with Entra ID)")
        if "together" in enabled and not self.together_api_key:
            out.append("TOGETHER_API_KEY is required when TOGETHER_BASE_URL or TOGETHER_PROJECT_ID is set")
        if "vertex" in enabled:
            out += _check_vertex(self)
        return out

    # OPENAI_WEBHOOK_SECRET (whsec_…): when set, POST /webhooks/openai exists and idle jobs are polled less
    openai_webhook_secret: str | None = field(default=None, repr=False)
    idle_poll_interval: float = 300.0
    # `ftbot serve`'s HTTP server: the largest request body, open connections, idle seconds per connection
    http_max_body_bytes: int = DEFAULT_HTTP_MAX_BODY_BYTES
    http_connection_limit: int = DEFAULT_HTTP_CONNECTION_LIMIT
    http_channel_timeout: int = DEFAULT_HTTP_CHANNEL_TIMEOUT

    @property
    def webhooks_enabled(self) -> bool:
        return bool(self.openai_webhook_secret)

    # ---- what each process needs ----------------------------------------------------------

    def require(self, *names: str) -> None:
        missing = self._missing(names)
        if missing:
            raise SettingsError(_one_message(missing))

    def _missing(self, names: tuple[str, ...]) -> list[str]:
        env_names = {f.name: _ENV_NAME[f.name] for f in fields(self)}
        return [f"{env_names[n]} is required but not set" for n in names if not getattr(self, n)]

    def require_for(self, process: str) -> None:
        """Everything `process` lacks, named in one message (not one per attempt)."""
        names: tuple[str, ...] = ()
        if process in {"serve", "socket", "worker", "demo-bot"}:
            names += ("slack_bot_token",)
        if process == "serve":
            names += ("slack_signing_secret",)
        if process == "socket":
            names += ("slack_app_token",)
        problems = self._missing(names)
        if process in {"serve", "socket", "worker"}:
            _check_default(self)
            problems += _check_ray(self) + self.provider_problems()
        if problems:
            raise SettingsError(_one_message(problems))


def _one_message(problems: list[str]) -> str:
    """Missing names grouped ("A, B and C are required but not set"), then the other reasons, in one line."""
    tail = " is required but not set"
    plain = [p.removesuffix(tail) for p in problems if p.endswith(tail)]
    others = [p for p in problems if not p.endswith(tail)]
    parts = []
    if len(plain) == 1:
        parts.append(plain[0] + tail)
    elif plain:
        parts.append(", ".join(plain[:-1]) + f" and {plain[-1]} are required but not set")
    return "; ".join(parts + others)


PROVIDER_NAMES = ("openai", "azure", "together", "ray", "vertex")


def _has_azure_identity() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("azure.identity") is not None
    except ModuleNotFoundError:
        return False


_ENV_NAME = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "database_url": "DATABASE_URL",
    "port": "PORT",
    "poll_interval": "FTBOT_POLL_INTERVAL",
    "notify_channel": "FTBOT_NOTIFY_CHANNEL",
    "operators": "FTBOT_OPERATORS",
    "approvers": "FTBOT_APPROVERS",
    "approvals_required": "FTBOT_APPROVALS_REQUIRED",
    "approval_channel": "FTBOT_APPROVAL_CHANNEL",
    "approval_ttl_hours": "FTBOT_APPROVAL_TTL_HOURS",
    "job_budget_usd": "FTBOT_JOB_BUDGET_USD",
    "sandbox": "FTBOT_SANDBOX",
    "price_table": "FTBOT_PRICE_TABLE",
    "retirements_file": "FTBOT_RETIREMENTS",
    "health_alerts": "FTBOT_HEALTH_ALERTS",
    "health_patience": "FTBOT_HEALTH_PATIENCE",
    "health_smoothing": "FTBOT_HEALTH_SMOOTHING",
    "health_divergence": "FTBOT_HEALTH_DIVERGENCE",
    "health_stall_factor": "FTBOT_HEALTH_STALL_FACTOR",
    "health_stall_minutes": "FTBOT_HEALTH_STALL_MINUTES",
    "health_queued_minutes": "FTBOT_HEALTH_QUEUED_MINUTES",
    "health_tokens_percent": "FTBOT_HEALTH_TOKENS_PERCENT",
    "slack_pacing": "FTBOT_SLACK_PACING",
    "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
    "azure_api_key": "AZURE_OPENAI_API_KEY",
    "together_api_key": "TOGETHER_API_KEY",
    "together_base_url": "TOGETHER_BASE_URL",
    "together_project_id": "TOGETHER_PROJECT_ID",
    "default_provider": "FTBOT_DEFAULT_PROVIDER",
    "ray_address": "RAY_ADDRESS",
    "ray_entrypoint": "FTBOT_RAY_ENTRYPOINT",
    "ray_storage": "FTBOT_RAY_STORAGE",
    "ray_runtime_env": "FTBOT_RAY_RUNTIME_ENV",
    "ray_gpus": "FTBOT_RAY_GPUS",
    "ray_cpus": "FTBOT_RAY_CPUS",
    "ray_inference_url": "FTBOT_RAY_INFERENCE_URL",
    "ray_inference_key": "FTBOT_RAY_INFERENCE_KEY",
    "vertex_project": "GOOGLE_CLOUD_PROJECT",
    "vertex_location": "FTBOT_VERTEX_LOCATION",
    "vertex_bucket": "FTBOT_VERTEX_BUCKET",
    "vertex_price_per_mtok": "FTBOT_VERTEX_PRICE_PER_MTOK",
    "openai_webhook_secret": "OPENAI_WEBHOOK_SECRET",
    "idle_poll_interval": "FTBOT_IDLE_POLL_INTERVAL",
    "http_max_body_bytes": "FTBOT_HTTP_MAX_BODY_BYTES",
    "http_connection_limit": "FTBOT_HTTP_CONNECTION_LIMIT",
    "http_channel_timeout": "FTBOT_HTTP_CHANNEL_TIMEOUT",
    "eval_on_completion": "FTBOT_EVAL_ON_COMPLETION",
    "eval_examples": "FTBOT_EVAL_EXAMPLES",
    "eval_concurrency": "FTBOT_EVAL_CONCURRENCY",
}
ENV_NAMES = tuple(_ENV_NAME.values())


def _str(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _number(env: Mapping[str, str], name: str, kind: type, default, *, minimum=None, maximum=None):  # noqa: ANN001
    raw = _str(env, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
        raise SettingsError(f"{name} must be a finite number, got {raw!r}")
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {raw!r}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {raw!r}")
    return value


def _ids(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _str(env, name)
    if raw is None:
        return ()
    ids = tuple(p.strip() for p in raw.replace(";", ",").replace(" ", ",").split(",") if p.strip())
    for i in ids:
        # users U…/W…, user groups S…
        if not (i[:1] in {"U", "W", "S"} and i[1:].isalnum() and i.isupper()):
            raise SettingsError(f"{name} must list Slack user or user-group IDs (U…, W…, S…), got {i!r}")
    return ids


def _channel(env: Mapping[str, str], name: str) -> str | None:
    raw = _str(env, name)
    if raw is None:
        return None
    if not (raw[:1] in {"C", "G", "D"} and raw.isalnum() and raw.isupper()):
        raise SettingsError(f"{name} must be a channel ID like C0123456789 (not a #name), got {raw!r}")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = (_str(env, name) or "").lower()
    if raw == "":
        return default
    if raw in {"0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = _str(env, name)
    if raw is None:
        return default
    if not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw


def _token(env: Mapping[str, str], name: str, prefix: str) -> str | None:
    raw = _str(env, name)
    if raw is not None and not raw.startswith(prefix):
        # Never echo the value: it may be a real secret pasted into the wrong variable.
        raise SettingsError(f"{name} must start with {prefix!r}")
    return raw


def _price_table(env: Mapping[str, str], name: str) -> tuple[tuple[str, float], ...]:
    from bot.datasets.pricing import PriceTableError, load_overrides

    path = _str(env, name)
    if path is None:
        return ()
    try:
        return tuple(sorted(load_overrides(path).items()))
    except PriceTableError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _retirements(env: Mapping[str, str], name: str) -> str | None:
    from bot.retirements.table import RetirementTable, RetirementTableError

    raw = _str(env, name)
    if raw is None:
        return None
    try:
        RetirementTable.load(raw)  # read once now so a bad file stops start-up, not the worker at night
    except RetirementTableError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return raw


def _provider_name(env: Mapping[str, str], name: str) -> str | None:
    raw = _str(env, name)
    if raw is None:
        return None
    if raw.lower() not in PROVIDER_NAMES:
        raise SettingsError(f"{name} must be one of {', '.join(PROVIDER_NAMES)}, got {raw[:40]!r}")
    return raw.lower()


RAY_PLACEHOLDERS = ("train", "validation", "model", "epochs", "lr", "batch", "output", "seed", "suffix")
# Storage schemes fsspec reads with the packages named in the README (s3fs, gcsfs).
RAY_STORAGE_SCHEMES = ("s3://", "gs://", "gcs://", "file://")


def _ray_entrypoint(env: Mapping[str, str], name: str) -> str | None:
    import string

    raw = _str(env, name)
    if raw is None:
        return None
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(raw) if f is not None]
    except ValueError:
        raise SettingsError(f"{name} has unbalanced braces; placeholders are {{train}}, {{output}}, …; write a literal brace as {{{{ or }}}}") from None
    unknown = sorted({n for n in names if n not in RAY_PLACEHOLDERS})
    if unknown:
        raise SettingsError(f"{name} has unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; known: {', '.join('{' + p + '}' for p in RAY_PLACEHOLDERS)}")
    missing = [p for p in ("train", "output") if p not in names]
    if missing:
        raise SettingsError(f"{name} must contain {' and '.join('{' + p + '}' for p in missing)} (where the data is and where the trained model goes)")
    return raw


def _ray_storage(env: Mapping[str, str], name: str) -> str | None:
    raw = _str(env, name)
    if raw is None:
        return None
    if "://" in raw:
        if not raw.startswith(RAY_STORAGE_SCHEMES):
            raise SettingsError(f"{name} must be an absolute path every Ray node sees, or an s3:// or gs:// URI, got {raw[:60]!r}")
    elif not raw.startswith("/"):
        raise SettingsError(f"{name} must be an absolute path (every Ray node must see the same folder), got {raw[:60]!r}")
    return raw


def _json_object(env: Mapping[str, str], name: str) -> str | None:
    import json

    raw = _str(env, name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name} must be a JSON object such as {{\"pip\": [\"trl\"], \"env_vars\": {{…}}}}, got a {type(value).__name__}")
    return raw


def _check_ray(settings: Settings) -> list[str]:
    """What the Ray settings lack, one line each (the caller names everything missing at once)."""
    if "ray" not in settings.enabled_providers:
        return [
            f"{_ENV_NAME[field_name]} is set but RAY_ADDRESS is not (RAY_ADDRESS enables the Ray provider)"
            for field_name in ("ray_entrypoint", "ray_storage", "ray_inference_url")
            if getattr(settings, field_name)
        ]
    out = []
    if not settings.ray_entrypoint:
        out.append("FTBOT_RAY_ENTRYPOINT is required when RAY_ADDRESS is set (the training command, e.g. python train.py --data {train} --out {output})")
    if not settings.ray_storage:
        out.append("FTBOT_RAY_STORAGE is required when RAY_ADDRESS is set (a folder every Ray node sees, or an s3:// or gs:// URI)")
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        out.append("RAY_ADDRESS is set but the ray package is not installed: pip install 'ftbot[ray]'")
    if settings.ray_storage:
        scheme = settings.ray_storage.split("://", 1)[0] if "://" in settings.ray_storage else "file"
        package = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}.get(scheme)
        if package and importlib.util.find_spec(package) is None:
            out.append(f"FTBOT_RAY_STORAGE is a {scheme}:// URI, which needs the {package} package: pip install {package}")
    return out


def _vertex_location(env: Mapping[str, str], name: str) -> str | None:
    from bot.provider.vertex_models import TUNING_LOCATIONS

    raw = _str(env, name)
    if raw is not None and raw not in TUNING_LOCATIONS:
        raise SettingsError(f"{name} must be a region where Gemini tuning runs ({' or '.join(TUNING_LOCATIONS)}), got {raw[:40]!r}")
    return raw


def _vertex_bucket(env: Mapping[str, str], name: str) -> str | None:
    from bot.provider.vertex_models import bucket_and_prefix

    raw = _str(env, name)
    if raw is None:
        return None
    try:
        bucket_and_prefix(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} {exc}, got {raw[:80]!r}") from None
    return raw.rstrip("/")


def _check_vertex(settings: Settings) -> list[str]:
    """What Vertex needs beyond sandbox mode: the project, bucket and region, the client libraries,
    and Application Default Credentials (a service-account key file or a workload identity)."""
    import importlib.util

    out = []
    for field_name in ("vertex_project", "vertex_bucket", "vertex_location"):
        if not getattr(settings, field_name):
            out.append(f"{_ENV_NAME[field_name]} is required but not set")
    try:
        installed = all(importlib.util.find_spec(m) is not None for m in ("google.genai", "google.cloud.storage"))
    except ModuleNotFoundError:
        installed = False
    if not installed:
        return out + ["Vertex AI needs its client libraries: pip install 'ftbot[vertex]'"]
    problem = _adc_problem()
    return out + ([problem] if problem else [])


def _adc_problem() -> str | None:
    """Why Google's Application Default Credentials cannot be used, or None (never the secret)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path and not Path(path).is_file():
        return f"GOOGLE_APPLICATION_CREDENTIALS names {path[:120]!r}, which is not a readable file (a service account key file)"
    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as exc:
        if path:
            return f"GOOGLE_APPLICATION_CREDENTIALS is not a usable credentials file ({str(exc).splitlines()[0][:160]})"
        return "Google Application Default Credentials are not set: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file (roles: Vertex AI User, Storage Object Admin on the bucket) or run with a workload identity"
    return None


def _webhook_secret(env: Mapping[str, str], name: str) -> str | None:
    raw = _token(env, name, "whsec_")
    if raw is None:
        return None
    try:
        # Standard Webhooks: the part after whsec_ is the base64 key; a mangled paste would fail every delivery.
        if not base64.b64decode(raw[len("whsec_") :], validate=True):
            raise ValueError
    except ValueError:
        raise SettingsError(f"{name} must be whsec_ followed by base64 (copy it whole from the OpenAI dashboard)") from None
    return raw


def load_settings(env: Mapping[str, str] | None = None, *, dotenv_path: str | Path | None = ".env") -> Settings:
    """Read settings. The process environment wins over `.env`."""
    if env is None:
        merged: dict[str, str] = {}
        if dotenv_path and Path(dotenv_path).is_file():
            merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        merged.update(os.environ)
        env = merged

    database_url = _str(env, "DATABASE_URL") or DEFAULT_URL
    try:
        database_url = normalise_url(database_url)
    except Exception:
        raise SettingsError("DATABASE_URL is not a valid database URL (e.g. sqlite:///ftbot.db or postgres://…)") from None

    settings = Settings(
        slack_bot_token=_token(env, "SLACK_BOT_TOKEN", "xoxb-"),
        slack_signing_secret=_str(env, "SLACK_SIGNING_SECRET"),
        slack_app_token=_token(env, "SLACK_APP_TOKEN", "xapp-"),
        slack_api_url=_url(env, "SLACK_API_URL", DEFAULT_SLACK_API_URL) or DEFAULT_SLACK_API_URL,
        openai_api_key=_str(env, "OPENAI_API_KEY"),
        openai_base_url=_url(env, "OPENAI_BASE_URL", None),
        database_url=database_url,
        port=_number(env, "PORT", int, 3000, minimum=0, maximum=65535),
        poll_interval=_number(env, "FTBOT_POLL_INTERVAL", float, 30.0, minimum=0.05),
        notify_channel=_channel(env, "FTBOT_NOTIFY_CHANNEL"),
        operators=_ids(env, "FTBOT_OPERATORS"),
        approvers=_ids(env, "FTBOT_APPROVERS"),
        approvals_required=_number(env, "FTBOT_APPROVALS_REQUIRED", int, 2, minimum=1, maximum=20),
        approval_channel=_channel(env, "FTBOT_APPROVAL_CHANNEL"),
        approval_ttl_hours=_number(env, "FTBOT_APPROVAL_TTL_HOURS", float, 24.0, minimum=0.01),
        job_budget_usd=_number(env, "FTBOT_JOB_BUDGET_USD", float, None, minimum=0.0),
        sandbox=_bool(env, "FTBOT_SANDBOX"),
        price_table=_price_table(env, "FTBOT_PRICE_TABLE"),
        retirements_file=_retirements(env, "FTBOT_RETIREMENTS"),
        health_alerts=_bool(env, "FTBOT_HEALTH_ALERTS", True),
        health_patience=_number(env, "FTBOT_HEALTH_PATIENCE", int, 3, minimum=1, maximum=100),
        health_smoothing=_number(env, "FTBOT_HEALTH_SMOOTHING", int, 5, minimum=1, maximum=100),
        health_divergence=_number(env, "FTBOT_HEALTH_DIVERGENCE", float, 1.5, minimum=1.01, maximum=100.0),
        health_stall_factor=_number(env, "FTBOT_HEALTH_STALL_FACTOR", float, 5.0, minimum=1.0, maximum=1000.0),
        health_stall_minutes=_number(env, "FTBOT_HEALTH_STALL_MINUTES", float, 5.0, minimum=0.01),
        health_queued_minutes=_number(env, "FTBOT_HEALTH_QUEUED_MINUTES", float, 120.0, minimum=0.01),
        health_tokens_percent=_number(env, "FTBOT_HEALTH_TOKENS_PERCENT", float, 10.0, minimum=0.0, maximum=1000.0),
        slack_pacing=_bool(env, "FTBOT_SLACK_PACING", True),
        azure_endpoint=_url(env, "AZURE_OPENAI_ENDPOINT", None),
        azure_api_key=_str(env, "AZURE_OPENAI_API_KEY"),
        together_api_key=_str(env, "TOGETHER_API_KEY"),
        together_base_url=_url(env, "TOGETHER_BASE_URL", None),
        together_project_id=_str(env, "TOGETHER_PROJECT_ID"),
        default_provider=_provider_name(env, "FTBOT_DEFAULT_PROVIDER"),
        ray_address=_url(env, "RAY_ADDRESS", None),
        ray_entrypoint=_ray_entrypoint(env, "FTBOT_RAY_ENTRYPOINT"),
        ray_storage=_ray_storage(env, "FTBOT_RAY_STORAGE"),
        ray_runtime_env=_json_object(env, "FTBOT_RAY_RUNTIME_ENV"),
        ray_gpus=_number(env, "FTBOT_RAY_GPUS", float, None, minimum=0.0, maximum=1024.0),
        ray_cpus=_number(env, "FTBOT_RAY_CPUS", float, None, minimum=0.0, maximum=4096.0),
        ray_inference_url=_url(env, "FTBOT_RAY_INFERENCE_URL", None),
        ray_inference_key=_str(env, "FTBOT_RAY_INFERENCE_KEY"),
        vertex_project=_str(env, "GOOGLE_CLOUD_PROJECT"),
        vertex_location=_vertex_location(env, "FTBOT_VERTEX_LOCATION"),
        vertex_bucket=_vertex_bucket(env, "FTBOT_VERTEX_BUCKET"),
        vertex_price_per_mtok=_number(env, "FTBOT_VERTEX_PRICE_PER_MTOK", float, None, minimum=0.0, maximum=10_000.0),
        openai_webhook_secret=_webhook_secret(env, "OPENAI_WEBHOOK_SECRET"),
        idle_poll_interval=_number(env, "FTBOT_IDLE_POLL_INTERVAL", float, 300.0, minimum=0.05),
        http_max_body_bytes=_number(env, "FTBOT_HTTP_MAX_BODY_BYTES", int, DEFAULT_HTTP_MAX_BODY_BYTES, minimum=1024, maximum=1024**3),
        http_connection_limit=_number(env, "FTBOT_HTTP_CONNECTION_LIMIT", int, DEFAULT_HTTP_CONNECTION_LIMIT, minimum=1, maximum=100_000),
        http_channel_timeout=_number(env, "FTBOT_HTTP_CHANNEL_TIMEOUT", int, DEFAULT_HTTP_CHANNEL_TIMEOUT, minimum=1, maximum=3600),
        eval_on_completion=_bool(env, "FTBOT_EVAL_ON_COMPLETION", True),
        eval_examples=_number(env, "FTBOT_EVAL_EXAMPLES", int, 50, minimum=1, maximum=1000),
        eval_concurrency=_number(env, "FTBOT_EVAL_CONCURRENCY", int, 8, minimum=1, maximum=64),
    )
    _check_default(settings)
    return settings


def _check_default(settings: Settings) -> None:
    enabled = settings.enabled_providers
    if settings.default_provider is not None and settings.default_provider not in enabled:
        raise SettingsError(f"FTBOT_DEFAULT_PROVIDER is {settings.default_provider!r} but that provider is not enabled (enabled: {', '.join(enabled)})")
    if len(enabled) > 1 and settings.default_provider is None:
        raise SettingsError(f"FTBOT_DEFAULT_PROVIDER is required when several providers are enabled ({', '.join(enabled)})")
