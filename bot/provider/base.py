"""The provider interface: our own dataclasses, status names and errors.

Nothing here knows about OpenAI. An adapter (bot/provider/openai_adapter.py) maps a vendor's API onto
this; the rest of ftbot only sees these types.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

log = logging.getLogger(__name__)


class JobStatus:
    """Known status names. A status is plain text: one we do not know passes through unchanged."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    # On its way to paused: OpenAI's API reference lists it (its schema and the openai package do not).
    PAUSING = "pausing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Asked to stop, not stopped yet (Together AI answers a cancel with this; "cancelled" follows).
    CANCELLING = "cancelling"

    FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
    # Statuses from which pause / resume / cancel make sense.
    ACTIVE = frozenset({VALIDATING_FILES, QUEUED, RUNNING, PAUSED, PAUSING})
    # A paused job, however the provider spells it: these may be resumed.
    PAUSED_LIKE = frozenset({PAUSED, PAUSING})


def is_paused(status: str) -> bool:
    """The job is paused or pausing (any case): `resume` applies."""
    return (status or "").lower() in JobStatus.PAUSED_LIKE


def is_final(status: str) -> bool:
    """A job in this status will never change again.

    Unknown statuses are not final: polling a job a little too long costs one request, missing its
    ending would be far worse. Statuses that look final by name ("expired", "deleted") count too.
    """
    s = (status or "").lower()
    return s in JobStatus.FINAL or s in {
        "expired", "deleted", "cancelled_by_user", "error", "not_found",
        # Together AI's own final words, should one ever reach us unmapped
        "user_error", "completed",
    }


@dataclass(frozen=True, slots=True)
class ProviderFile:
    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int
    status: str | None = None


@dataclass(frozen=True, slots=True)
class JobError:
    code: str
    message: str
    param: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    status: str
    model: str
    created_at: int
    training_file: str | None = None
    validation_file: str | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    estimated_finish: int | None = None
    trained_tokens: int | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    error: JobError | None = None
    result_files: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return is_final(self.status)


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: str
    created_at: int
    level: str
    message: str
    type: str = "message"
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: str
    created_at: int
    step_number: int
    model: str
    job_id: str
    metrics: dict[str, float | None] = field(default_factory=dict)
    # The provider's own label when it gives one (Together: "Intermediate", "Final Merged", "Final
    # Adapter", "Final"), and whether the artifact is a LoRA adapter rather than a whole model.
    label: str | None = None
    adapter: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    created: int
    owned_by: str
    # Set by adapters whose model names do not say it (Together's registry holds only custom models).
    fine_tuned: bool | None = None
    # When the provider says the model stops serving / stops taking training jobs (None: not said).
    shutdown_date: date | None = None
    training_ends: date | None = None

    @property
    def is_fine_tuned(self) -> bool:
        if self.fine_tuned is not None:
            return self.fine_tuned
        # OpenAI: ft:<base>:<org>:<suffix>:<id>; Azure: <base>.ft-<hash>[-suffix]
        return self.id.startswith("ft:") or ".ft-" in self.id


def day_of(value: object) -> date | None:
    """A provider's date in any of the shapes it comes in: "YYYY-MM-DD", an ISO timestamp, unix
    seconds or milliseconds (as a number or digits), or nothing. Unreadable (garbage, NaN, out of the
    calendar, `0001-01-01T00:00:00+01:00`) is None, "unknown", with the reason logged once per
    value, never a crash: a date field is advice, not something to fail a listing over."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return _day_of(value)
    except (ValueError, OverflowError, OSError, TypeError) as exc:
        _unreadable(value, str(exc) or type(exc).__name__)
        return None


_logged_unreadable: set[str] = set()


def _unreadable(value: object, reason: str) -> None:
    shown = repr(value)[:80]
    if shown in _logged_unreadable or len(_logged_unreadable) > 1000:
        return
    _logged_unreadable.add(shown)
    log.warning("a provider's date %s cannot be read (%s); treated as unknown", shown, reason)


def _day_of(value: object) -> date | None:
    if isinstance(value, int | float):
        return _epoch_day(float(value))
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.isdigit():
        return _epoch_day(float(text))
    if len(text) == 10:
        return date.fromisoformat(text)
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # An offset at the calendar's edge (0001-01-01T00:00:00+01:00) overflows here: the caller's except.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).date()


MS_EPOCH_FROM = 1e11  # seconds this large are past the year 5000: the number is milliseconds


def _epoch_day(seconds: float) -> date:
    """Unix seconds (or milliseconds, told apart by size) as a day; NaN, infinity or a number out
    of range raises ValueError/OverflowError for `day_of` to report."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("not a number")
    if abs(seconds) >= MS_EPOCH_FROM:
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, UTC).date()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call a model asked for. `arguments` is the JSON text exactly as the model wrote
    it (it may not parse: scorers decide what that means)."""

    name: str
    arguments: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A model's answer to one chat request. Token counts are the provider's own (None when it gives
    none); `content` is None when the model answered only with tool calls."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[Job]
    has_more: bool


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to train. Hyperparameters absent from the dict are left to the provider ("auto")."""

    model: str
    training_file: str
    validation_file: str | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


# The provider's webhook event types that end a job; other types are acknowledged and ignored.
JOB_ENDED_EVENTS = frozenset({"fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled"})


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook about a job. `id` is the delivery's webhook-id, the same on every retry."""

    id: str
    type: str
    job_id: str
    created_at: int | None = None


class WebhookRejected(Exception):
    """The request is not a genuine, fresh webhook (bad signature, missing headers, stale timestamp,
    unreadable body). `reason` is short and never contains the secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---- errors ---------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call failed. `reason` is short, human and safe to show in Slack."""

    kind = "error"
    retryable = False

    def __init__(self, reason: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status


class ProviderAuthError(ProviderError):
    kind = "authentication"


class ProviderPermissionError(ProviderError):
    kind = "permission"


class ProviderNotFound(ProviderError):
    kind = "not_found"


class ProviderInvalidRequest(ProviderError):
    kind = "invalid_request"


class ModelNotServed(ProviderInvalidRequest):
    """The model exists but answers no request here (a fine-tune with no endpoint running): unlike
    a request refused for what it asks (a content filter, a prompt over the context), no other
    prompt would fare better."""


class DailyJobLimit(ProviderError):
    """The organisation may start no more jobs for this model today. Retrying will not help."""

    kind = "daily_job_limit"


class ProviderRateLimited(ProviderError):
    kind = "rate_limited"
    retryable = True

    def __init__(self, reason: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(reason, **kw)
        self.retry_after = retry_after


class ProviderUnsupported(ProviderError):
    """The provider has no such operation (Together AI cannot pause a job). Retrying will not help."""

    kind = "unsupported"


class ProviderUnavailable(ProviderError):
    """Connection refused, timeouts, 5xx: try again later."""

    kind = "unavailable"
    retryable = True


class ProviderTimedOut(ProviderUnavailable):
    """No answer in time: unlike a refused connection or a 5xx, the request may still be carried
    out after we gave up on it."""


class StartUnconfirmed(ProviderUnavailable):
    """A job creation whose outcome is unknown (its answer was lost and the job is not listed yet):
    it must not be created again; whoever holds the key looks for it later."""

    kind = "unconfirmed"


# ---- the interface --------------------------------------------------------------------------


class Provider(Protocol):
    name: str
    # The longest `suffix` the provider accepts on a new job.
    max_suffix_length: int

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        """Why `action` (pause / resume) cannot be done to this job now at this provider, beyond the
        status rules every provider shares; None when it can. Providers without pause say so here."""
        ...

    # files
    def upload_file(self, data: BinaryIO | bytes, filename: str, *, purpose: str = "fine-tune") -> ProviderFile: ...
    def list_files(self, *, purpose: str | None = None, limit: int = 100) -> list[ProviderFile]: ...
    def get_file(self, file_id: str) -> ProviderFile: ...
    def file_content(self, file_id: str) -> bytes: ...
    def download_file(self, file_id: str, dest: Path) -> int:
        """Stream the file's bytes into `dest` (never whole in memory); returns the size."""
        ...

    def delete_file(self, file_id: str) -> bool: ...

    # jobs
    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job: ...
    def list_jobs(self, *, limit: int = 20, after: str | None = None) -> JobPage: ...
    def get_job(self, job_id: str) -> Job: ...
    def cancel_job(self, job_id: str) -> Job: ...
    def pause_job(self, job_id: str) -> Job: ...
    def resume_job(self, job_id: str) -> Job: ...
    def find_job_by_key(self, idempotency_key: str) -> Job | None: ...

    # events and checkpoints
    def new_events(self, job_id: str, known_id: str | None, *, page_size: int = 100) -> list[JobEvent]:
        """Events newer than `known_id` (all of them when None), oldest first."""
        ...

    def list_events(self, job_id: str, *, limit: int = 20) -> list[JobEvent]: ...
    def list_checkpoints(self, job_id: str) -> list[Checkpoint]: ...

    # models
    def list_models(self) -> list[Model]: ...
    def delete_model(self, model: str) -> bool: ...
    def complete(self, model: str, prompt: str, *, max_tokens: int = 300) -> str: ...
    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 512,
        temperature: float | None = 0.0,
        seed: int | None = None,
    ) -> ChatReply:
        """One chat completion with the messages (and declared tools) as production would send them.
        Raises ProviderInvalidRequest, naming the way out, when the model cannot be asked here (an
        Azure model name instead of a deployment, a Together model without an endpoint)."""
        ...

    # cost
    def estimate_price(self, spec: JobSpec) -> float | None:
        """The provider's own estimate in USD for this job; None when it offers none (then ftbot
        counts the tokens and uses its price table)."""
        ...

    # webhooks
    def parse_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent | None:
        """The verified event when it is about a job ending, None for a genuine event of another type;
        raises WebhookRejected when the request cannot be trusted."""
        ...

PROVIDER_LABELS = {"openai": "OpenAI", "azure": "Azure OpenAI", "together": "Together AI", "ray": "Ray", "vertex": "Vertex AI"}


def provider_label(name: str) -> str:
    return PROVIDER_LABELS.get(name, name)


# Providers whose jobs cannot be paused at all (their adapters raise ProviderUnsupported): a card
# made from a stored row offers no Pause button for them. A table, because cards are built from rows
# without a provider object at hand.
NO_PAUSE = frozenset({"together", "ray", "vertex"})


def provider_can_pause(name: str | None) -> bool:
    return (name or "openai") not in NO_PAUSE


# Providers that publish a job's loss and accuracy somewhere ftbot does not read: the card and the
# final alert say where, instead of empty loss fields and an empty chart. A table for the same reason.
METRICS_ELSEWHERE = {
    "vertex": "Vertex AI publishes the loss and accuracy in the job's Vertex AI Experiments run, which ftbot does not read",
}


def metrics_note(name: str | None) -> str | None:
    return METRICS_ELSEWHERE.get(name or "openai")


def steer_refusal(provider: object, action: str, job: Job, trained_steps: int | None) -> str | None:
    """The provider's own refusal, for adapters that have rules (those without the hook have none)."""
    hook = getattr(provider, "steer_refusal", None)
    return hook(action, job, trained_steps) if hook is not None else None
