"""OpenAI's fine-tuning API behind ftbot's Provider interface.

The only module in ftbot that imports `openai`. Azure OpenAI serves the same API shape through the
same client, so an Azure adapter can subclass this and change only how the client is built.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import openai

from bot.provider.base import (
    JOB_ENDED_EVENTS,
    ChatReply,
    Checkpoint,
    DailyJobLimit,
    Job,
    JobError,
    JobEvent,
    JobPage,
    JobSpec,
    Model,
    ProviderAuthError,
    ProviderError,
    ProviderFile,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderTimedOut,
    ProviderUnavailable,
    WebhookEvent,
    WebhookRejected,
    day_of,
)
from bot.provider.chat_reply import chat_reply, request_options
from bot.provider.create_once import create_once
from bot.provider.streaming import stream_to_file

log = logging.getLogger(__name__)

# Files above this go through the Uploads API in parts (files.create takes at most 512 MB).
FILES_API_LIMIT = 512 * 1024 * 1024
UPLOAD_PART_SIZE = 64 * 1024 * 1024
IDEMPOTENCY_METADATA_KEY = "ftbot_key"
# Seconds a webhook's timestamp may differ from our clock (the openai client's default, Standard Webhooks').
WEBHOOK_TOLERANCE = 300


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@contextlib.contextmanager
def translate_errors(what: str, vendor: str = "OpenAI", key_setting: str = "OPENAI_API_KEY") -> Iterator[None]:
    """Turn the client's exceptions into ours, with a reason a person can read."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise ProviderTimedOut(f"{vendor} did not answer in time ({what})") from exc
    except openai.APIConnectionError as exc:
        raise ProviderUnavailable(f"{vendor} is unreachable, try again in a minute") from exc
    except openai.AuthenticationError as exc:
        raise ProviderAuthError(
            f"{vendor} rejected the API key (check {key_setting})", code=exc.code, status=401
        ) from exc
    except openai.PermissionDeniedError as exc:
        raise ProviderPermissionError(
            f"{vendor} refused: {_message(exc)}", code=exc.code, status=403
        ) from exc
    except openai.NotFoundError as exc:
        raise ProviderNotFound(f"{vendor} has no such {what}", code=exc.code, status=404) from exc
    except openai.RateLimitError as exc:
        if exc.code == "daily_rate_limit_exceeded":
            raise DailyJobLimit(
                f"{vendor} refused: {_message(exc)}", code=exc.code, status=429
            ) from exc
        raise ProviderRateLimited(
            f"{vendor} is rate limiting us, try again in a minute",
            retry_after=_retry_after(exc),
            code=exc.code,
            status=429,
        ) from exc
    except openai.InternalServerError as exc:
        raise ProviderUnavailable(
            f"{vendor} is having trouble (server error), try again in a minute", status=exc.status_code
        ) from exc
    except (openai.BadRequestError, openai.UnprocessableEntityError, openai.ConflictError) as exc:
        raise ProviderInvalidRequest(
            f"{vendor} refused: {_message(exc)}", code=exc.code, status=exc.status_code
        ) from exc
    except openai.APIStatusError as exc:
        raise ProviderError(
            f"{vendor} answered {exc.status_code}: {_message(exc)}", code=exc.code, status=exc.status_code
        ) from exc


def _message(exc: openai.APIStatusError) -> str:
    # The client has already unwrapped {"error": {...}} into body.
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc.message)


def _drop_none(d: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (d or {}).items() if v is not None}


def _file(f: Any) -> ProviderFile:
    return ProviderFile(
        id=f.id,
        filename=f.filename,
        bytes=int(f.bytes or 0),
        purpose=str(f.purpose),
        created_at=int(f.created_at),
        status=getattr(f, "status", None),
    )


def _job(j: Any) -> Job:
    method = "supervised"
    hyper: dict[str, Any] = {}
    if j.method is not None:
        method = str(j.method.type)
        detail = getattr(j.method, method, None)
        if detail is not None and getattr(detail, "hyperparameters", None) is not None:
            hyper = _drop_none(detail.hyperparameters.model_dump())
    if not hyper and j.hyperparameters is not None:
        hyper = _drop_none(j.hyperparameters.model_dump())
    error = None
    if j.error is not None and (j.error.code or j.error.message):
        error = JobError(code=j.error.code or "error", message=j.error.message or "", param=j.error.param)
    metadata = dict(j.metadata or {})
    return Job(
        id=j.id,
        status=str(j.status),
        model=j.model,
        created_at=int(j.created_at),
        training_file=j.training_file,
        validation_file=j.validation_file,
        fine_tuned_model=j.fine_tuned_model,
        finished_at=j.finished_at,
        estimated_finish=j.estimated_finish,
        trained_tokens=j.trained_tokens,
        method=method,
        hyperparameters=hyper,
        suffix=metadata.get("ftbot_suffix"),
        seed=j.seed,
        error=error,
        result_files=tuple(j.result_files or ()),
        metadata=metadata,
    )


def _event(e: Any) -> JobEvent:
    data = e.data if isinstance(e.data, dict) else None
    return JobEvent(
        id=e.id,
        created_at=int(e.created_at),
        level=str(e.level),
        message=e.message or "",
        type=str(e.type or "message"),
        data=data,
    )


def _checkpoint(c: Any) -> Checkpoint:
    return Checkpoint(
        id=c.id,
        created_at=int(c.created_at),
        step_number=int(c.step_number),
        model=c.fine_tuned_model_checkpoint,
        job_id=c.fine_tuning_job_id,
        metrics=_drop_none(c.metrics.model_dump()) if c.metrics is not None else {},
    )


def _model(m: Any) -> Model:
    # OpenAI says `shutdown_date` (typed as text; read whatever shape it takes). Azure's models list
    # says `deprecation: {fine_tune, inference}` in unix seconds instead.
    deprecation = getattr(m, "deprecation", None)
    deprecation = deprecation if isinstance(deprecation, dict) else {}
    return Model(
        id=m.id,
        created=int(m.created),
        owned_by=m.owned_by,
        shutdown_date=day_of(getattr(m, "shutdown_date", None)) or day_of(deprecation.get("inference")),
        training_ends=day_of(deprecation.get("fine_tune")),
    )


class OpenAIProvider:
    """Provider over the official `openai` client (which retries 429/5xx/connection errors itself)."""

    name = "openai"
    vendor = "OpenAI"
    key_setting = "OPENAI_API_KEY"
    max_suffix_length = 64

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
        files_api_limit: int = FILES_API_LIMIT,
        upload_part_size: int = UPLOAD_PART_SIZE,
        client: openai.OpenAI | None = None,
    ) -> None:
        self.client = client or openai.OpenAI(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        self.files_api_limit = files_api_limit
        self.upload_part_size = upload_part_size

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translate_errors(what, self.vendor, self.key_setting)

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        return None

    # ---- files ------------------------------------------------------------------------------

    def upload_file(
        self, data: BinaryIO | bytes | Path, filename: str, *, purpose: str = "fine-tune"
    ) -> ProviderFile:
        size = data.stat().st_size if isinstance(data, Path) else None
        if isinstance(data, bytes):
            size = len(data)
        with self._errors("file"):
            if size is not None and size > self.files_api_limit:
                # A Path is read part by part from disk, never whole into memory.
                upload = self.client.uploads.upload_file_chunked(
                    file=data,
                    filename=filename,
                    bytes=size,
                    mime_type="text/jsonl",
                    purpose=purpose,
                    part_size=self.upload_part_size,
                )
                if upload.file is None:
                    raise ProviderError(f"{self.vendor} accepted the upload but made no file (status {upload.status})")
                return _file(upload.file)
            if isinstance(data, Path):
                # A file handle, not its bytes: the client streams it into the request.
                with data.open("rb") as fh:
                    return _file(self.client.files.create(file=(filename, fh), purpose=purpose))
            return _file(self.client.files.create(file=(filename, data), purpose=purpose))

    def list_files(self, *, purpose: str | None = None, limit: int = 100) -> list[ProviderFile]:
        with self._errors("file"):
            kwargs: dict[str, Any] = {"limit": min(limit, 10000)}
            if purpose:
                kwargs["purpose"] = purpose
            out: list[ProviderFile] = []
            for f in self.client.files.list(**kwargs):
                out.append(_file(f))
                if len(out) >= limit:
                    break
            return out

    def get_file(self, file_id: str) -> ProviderFile:
        with self._errors("file"):
            return _file(self.client.files.retrieve(file_id))

    def file_content(self, file_id: str) -> bytes:
        with self._errors("file"):
            return self.client.files.content(file_id).read()

    def estimate_price(self, spec: JobSpec) -> float | None:
        return None  # OpenAI has no estimate endpoint: ftbot counts the tokens itself

    def download_file(self, file_id: str, dest: Path) -> int:
        with translate_errors("file"), self.client.files.with_streaming_response.content(file_id) as resp:
            return stream_to_file(resp, dest)

    def delete_file(self, file_id: str) -> bool:
        with self._errors("file"):
            return bool(self.client.files.delete(file_id).deleted)

    # ---- jobs -------------------------------------------------------------------------------

    def _method_payload(self, spec: JobSpec) -> dict[str, Any]:
        hyper = _drop_none(spec.hyperparameters)
        return {"type": spec.method, spec.method: {"hyperparameters": hyper}}

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        metadata = dict(spec.metadata)
        if spec.suffix:
            metadata["ftbot_suffix"] = spec.suffix
        if idempotency_key:
            metadata[IDEMPOTENCY_METADATA_KEY] = idempotency_key
        kwargs: dict[str, Any] = {
            "model": spec.model,
            "training_file": spec.training_file,
            "method": self._method_payload(spec),
        }
        if spec.validation_file:
            kwargs["validation_file"] = spec.validation_file
        if spec.suffix:
            kwargs["suffix"] = spec.suffix
        if spec.seed is not None:
            kwargs["seed"] = spec.seed
        if metadata:
            kwargs["metadata"] = metadata
        # Creating a job is not idempotent at OpenAI and the client retries POSTs by itself: its
        # retries are off here and create_once retries, looking the key up before each new attempt.
        client = self.client.with_options(max_retries=0)

        def create() -> Job:
            with self._errors("job"):
                return _job(client.fine_tuning.jobs.create(**kwargs))

        find = (lambda: self.find_job_by_key(idempotency_key)) if idempotency_key else None
        return create_once(create, find, vendor=self.vendor)

    def find_job_by_key(self, idempotency_key: str) -> Job | None:
        with self._errors("job"):
            page = self.client.fine_tuning.jobs.list(
                limit=10, metadata={IDEMPOTENCY_METADATA_KEY: idempotency_key}
            )
            for j in page.data:
                if (j.metadata or {}).get(IDEMPOTENCY_METADATA_KEY) == idempotency_key:
                    return _job(j)
        return None

    def list_jobs(self, *, limit: int = 20, after: str | None = None) -> JobPage:
        with self._errors("job"):
            kwargs: dict[str, Any] = {"limit": limit}
            if after:
                kwargs["after"] = after
            page = self.client.fine_tuning.jobs.list(**kwargs)
            return JobPage(jobs=[_job(j) for j in page.data], has_more=bool(page.has_more))

    def get_job(self, job_id: str) -> Job:
        with self._errors("job"):
            return _job(self.client.fine_tuning.jobs.retrieve(job_id))

    def cancel_job(self, job_id: str) -> Job:
        with self._errors("job"):
            return _job(self.client.fine_tuning.jobs.cancel(job_id))

    def pause_job(self, job_id: str) -> Job:
        with self._errors("job"):
            return _job(self.client.fine_tuning.jobs.pause(job_id))

    def resume_job(self, job_id: str) -> Job:
        with self._errors("job"):
            return _job(self.client.fine_tuning.jobs.resume(job_id))

    # ---- events and checkpoints -------------------------------------------------------------

    def new_events(self, job_id: str, known_id: str | None, *, page_size: int = 100) -> list[JobEvent]:
        # Events come newest first and `after` pages towards older ones: read down until the
        # newest event we already have, then hand back what is new, oldest first.
        newest_first: list[JobEvent] = []
        after: str | None = None
        with self._errors("job"):
            while True:
                kwargs: dict[str, Any] = {"limit": page_size}
                if after:
                    kwargs["after"] = after
                page = self.client.fine_tuning.jobs.list_events(job_id, **kwargs)
                for e in page.data:
                    if known_id is not None and e.id == known_id:
                        newest_first.reverse()
                        return newest_first
                    newest_first.append(_event(e))
                if not page.has_more or not page.data:
                    break
                after = page.data[-1].id
        newest_first.reverse()
        return newest_first

    def list_events(self, job_id: str, *, limit: int = 20) -> list[JobEvent]:
        with self._errors("job"):
            page = self.client.fine_tuning.jobs.list_events(job_id, limit=limit)
            return [_event(e) for e in page.data]

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        with self._errors("job"):
            return [_checkpoint(c) for c in self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=100)]

    # ---- models -----------------------------------------------------------------------------

    def list_models(self) -> list[Model]:
        with self._errors("model"):
            return [_model(m) for m in self.client.models.list()]

    def delete_model(self, model: str) -> bool:
        with self._errors("model"):
            return bool(self.client.models.delete(model).deleted)

    def complete(self, model: str, prompt: str, *, max_tokens: int = 300) -> str:
        return self.chat(model, [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=None).content or ""

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
        with self._errors("model"):
            resp = self.client.chat.completions.create(
                model=model,
                messages=[dict(m) for m in messages],  # type: ignore[misc]
                max_completion_tokens=max_tokens,
                **request_options(tools, temperature, seed),
            )
        return chat_reply(resp)

    # ---- webhooks ---------------------------------------------------------------------------

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent | None:
        """Verify with the client's own Standard Webhooks check, then read only what we need.

        The client's unwrap() parses into its own union of event classes, where an unknown type may
        land in an unrelated class; so the signature is verified first and the type read from the JSON.
        """
        hdrs = {k.lower(): v for k, v in headers.items()}
        try:
            self.client.webhooks.verify_signature(body, hdrs, secret=secret, tolerance=WEBHOOK_TOLERANCE)
        except openai.InvalidWebhookSignatureError as exc:
            raise WebhookRejected(str(exc)) from None
        except ValueError as exc:
            # A missing header ("Could not find webhook-id header") or an undecodable secret.
            raise WebhookRejected(str(exc) if "header" in str(exc) else "the webhook could not be verified") from None
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("the body is not JSON") from None
        if not isinstance(event, dict):
            raise WebhookRejected("the body is not a JSON object")
        etype = event.get("type")
        if etype not in JOB_ENDED_EVENTS:
            return None
        data = event.get("data")
        job_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise WebhookRejected(f"{etype} without data.id")
        created = event.get("created_at")
        return WebhookEvent(
            id=hdrs["webhook-id"],
            type=etype,
            job_id=job_id,
            created_at=created if isinstance(created, int) else None,
        )
