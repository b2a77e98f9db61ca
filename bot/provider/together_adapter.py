"""Together AI's fine-tuning API behind ftbot's Provider interface.

The only module in ftbot that imports `together`. What differs from OpenAI, and how it is bridged:

- Statuses: Together's words map onto ours (pending/queued -> queued, running/compressing/uploading
  -> running, cancel_requested -> cancelling, cancelled, error/user_error -> failed, completed ->
  succeeded); its own word is kept in `Job.metadata["together_status"]`; an unknown one stays text.
- No pause or resume: those raise ProviderUnsupported with what to do instead.
- Events have no id and no cursor (the whole list comes back, oldest first): each gets a stable id
  from its own fields, and `new_events` hands back those after the last one the caller has.
- Per-step metrics come from their own endpoint: they are merged into the events as "metrics"
  events shaped like OpenAI's (data = {step, total_steps, train_loss, valid_loss, ...}), so the
  card and the chart need nothing Together-specific.
- No job metadata, so the idempotency key travels in the job's random seed (see `_key_seed`).
- Start options beyond OpenAI's (JobSpec.hyperparameters): `learning_rate` (absolute, not a
  multiplier), `training_type` ("lora", the default, or "full"), `lora_r`, `lora_alpha`,
  `lora_dropout`, `n_checkpoints`, `n_evals` (5 when a validation file is given), `warmup_ratio`,
  `train_on_inputs`; `beta` for DPO.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import together
from together.lib import FileTypeError

from bot import clock
from bot.provider.base import (
    ChatReply,
    Checkpoint,
    Job,
    JobError,
    JobEvent,
    JobPage,
    JobSpec,
    Model,
    ModelNotServed,
    ProviderAuthError,
    ProviderError,
    ProviderFile,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderTimedOut,
    ProviderUnavailable,
    ProviderUnsupported,
)
from bot.provider.chat_reply import chat_reply, request_options
from bot.provider.create_once import create_once
from bot.provider.streaming import stream_to_file

log = logging.getLogger(__name__)

NAME = "Together AI"
MAX_SUFFIX = 40
DEFAULT_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
STATUS_MAP = {
    "pending": "queued",
    "queued": "queued",
    "running": "running",
    "compressing": "running",
    "uploading": "running",
    "cancel_requested": "cancelling",
    "cancelled": "cancelled",
    "error": "failed",
    "user_error": "failed",
    "completed": "succeeded",
}
FINAL_RAW = {"cancelled", "error", "user_error", "completed"}
DEFAULT_N_EVALS = 5
AFTER_TRAINING = {
    "training_complete", "model_compressing", "model_compression_complete", "model_uploading",
    "model_upload_complete", "job_complete", "job_stopped", "job_error",
}
FINAL_EVENTS = {"job_complete", "job_stopped", "job_error"}
METHODS = {"supervised": "sft", "dpo": "dpo"}
# JobSpec.hyperparameters accepted, each -> the SDK's create() argument
HYPERPARAMETERS = {
    "n_epochs": "n_epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "n_checkpoints": "n_checkpoints",
    "n_evals": "n_evals",
    "warmup_ratio": "warmup_ratio",
    "train_on_inputs": "train_on_inputs",
    "beta": "dpo_beta",
}
PAUSE_REASON = f"{NAME} cannot pause a job; cancel it and start a new one from its last checkpoint."
RESUME_REASON = f"{NAME} cannot pause or resume a job; start a new one from the cancelled job's last checkpoint."
NOT_DEPLOYED = (
    "{name} serves a fine-tuned model only from a dedicated endpoint (serverless only for LoRA adapters on the bases "
    "it lists), and `{model}` has none running. Pass `endpoint=NAME` to ask a dedicated endpoint that serves it, or "
    "create one in Together's console (it is billed by the minute while it runs), then try again."
)


def _retry_after(exc: together.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(exc: together.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner.get("message"), str):
            return inner["message"]
    return str(exc.message)


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn the client's exceptions into ours, with a reason a person can read."""
    try:
        yield
    except together.APITimeoutError as exc:
        raise ProviderTimedOut(f"{NAME} did not answer in time ({what})") from exc
    except together.APIConnectionError as exc:
        raise ProviderUnavailable(f"{NAME} is unreachable, try again in a minute") from exc
    except together.AuthenticationError as exc:
        raise ProviderAuthError(f"{NAME} rejected the API key (check TOGETHER_API_KEY)", status=401) from exc
    except together.PermissionDeniedError as exc:
        raise ProviderPermissionError(f"{NAME} refused: {_message(exc)}", status=403) from exc
    except together.NotFoundError as exc:
        raise ProviderNotFound(f"{NAME} has no such {what}", status=404) from exc
    except together.RateLimitError as exc:
        raise ProviderRateLimited(
            f"{NAME} is rate limiting us, try again in a minute", retry_after=_retry_after(exc), status=429
        ) from exc
    except together.InternalServerError as exc:
        raise ProviderUnavailable(
            f"{NAME} is having trouble (server error), try again in a minute", status=exc.status_code
        ) from exc
    except (together.BadRequestError, together.UnprocessableEntityError, together.ConflictError) as exc:
        raise ProviderInvalidRequest(f"{NAME} refused: {_message(exc)}", status=exc.status_code) from exc
    except together.APIStatusError as exc:
        # The upload's first step reports every unexpected answer (a 429 too) as a bare APIStatusError.
        status = exc.status_code
        if status == 429:
            raise ProviderRateLimited(f"{NAME} is rate limiting us, try again in a minute", status=429) from exc
        if status >= 500:
            raise ProviderUnavailable(f"{NAME} is having trouble (server error), try again in a minute", status=status) from exc
        raise ProviderError(f"{NAME} answered {status}: {_message(exc)[:300]}", status=status) from exc
    except FileTypeError as exc:
        raise ProviderInvalidRequest(f"{NAME}'s client refused the file: {str(exc)[:500]}") from exc
    except ValueError as exc:
        # The SDK checks arguments against the model's limits before sending anything.
        raise ProviderInvalidRequest(f"{NAME}'s client refused the request: {exc}") from exc


def _unix(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _extra(obj: Any, name: str) -> Any:
    """A field the SDK's type does not declare (the responses keep unknown fields)."""
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


def map_status(raw: str | None) -> str:
    raw = str(getattr(raw, "value", raw) or "")
    return STATUS_MAP.get(raw, raw)


def _key_seed(idempotency_key: str) -> int:
    """The idempotency key as a random seed: Together keeps the seed on the job and lists it back."""
    return int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _file(f: Any) -> ProviderFile:
    return ProviderFile(
        id=f.id,
        filename=f.filename or "",
        bytes=int(f.bytes or 0),
        purpose=str(f.purpose),
        created_at=int(f.created_at or 0),
        status=(str(f.processing_status).lower() if getattr(f, "processing_status", None) else None),
    )


def _job(j: Any) -> Job:
    raw = str(getattr(j.status, "value", j.status) or "")
    status = map_status(raw)
    method_obj = getattr(j, "training_method", None)
    method_name = str(getattr(method_obj, "method", "sft") or "sft")
    method = "dpo" if method_name == "dpo" else "supervised" if method_name == "sft" else method_name
    hyper: dict[str, Any] = {}
    for key in ("n_epochs", "batch_size", "learning_rate"):
        if getattr(j, key, None) is not None:
            hyper[key] = getattr(j, key)
    ttype = getattr(j, "training_type", None)
    if ttype is not None:
        hyper["training_type"] = "full" if getattr(ttype, "type", "") == "Full" else "lora"
        for key in ("lora_r", "lora_alpha"):
            if getattr(ttype, key, None) is not None:
                hyper[key] = getattr(ttype, key)
    if method == "dpo" and getattr(method_obj, "dpo_beta", None) is not None:
        hyper["beta"] = method_obj.dpo_beta
    output = _extra(j, "x_model_output_name") or _extra(j, "output_name")
    final = raw in FINAL_RAW
    estimated = None
    progress = getattr(j, "progress", None)
    updated = _unix(getattr(j, "updated_at", None))
    if status == "running" and progress is not None and getattr(progress, "estimate_available", False):
        estimated = (updated or 0) + int(progress.seconds_remaining or 0) if updated else None
    error = None
    if status == "failed":
        error = JobError(code=raw, message=str(_extra(j, "error") or "") or f"{NAME} reports the job ended with status {raw}.")
    metadata = {"together_status": raw} if raw and raw != status else {}
    return Job(
        id=j.id,
        status=status,
        model=j.model or "",
        created_at=_unix(j.created_at) or 0,
        training_file=j.training_file or None,
        validation_file=j.validation_file or None,
        fine_tuned_model=output if raw == "completed" else None,
        finished_at=updated if final else None,
        estimated_finish=estimated,
        trained_tokens=getattr(j, "token_count", None),
        method=method,
        hyperparameters=hyper,
        suffix=getattr(j, "suffix", None),
        seed=_extra(j, "random_seed"),
        error=error,
        metadata=metadata,
    )


def _event_id(created_at: str, type_: str, message: str, nth: int) -> str:
    digest = hashlib.sha256(f"{created_at}\x00{type_}\x00{message}".encode()).hexdigest()[:16]
    return f"ev-{digest}-{nth}"


def _level(raw: Any) -> str:
    level = str(getattr(raw, "value", raw) or "info").removeprefix("legacy_")
    return {"iwarning": "warning", "ierror": "error"}.get(level, level)


def _float(row: dict[str, Any], *keys: str) -> float | None:
    for k in keys:
        if row.get(k) is not None:
            return float(row[k])
    return None


class TogetherProvider:
    """Provider over the official `together` client (which retries 429/5xx/connection errors itself)."""

    name = "together"
    max_suffix_length = MAX_SUFFIX
    # Used when a start names no model: OpenAI's default would be refused here.
    default_model = DEFAULT_MODEL

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        project_id: str | None = None,
        *,
        max_retries: int = 2,
        timeout: float = 30,
        client: together.Together | None = None,
        settle_seconds: float = 30,
    ) -> None:
        self.settle_seconds = settle_seconds
        self.project_id = project_id or None
        self.client = client or together.Together(
            api_key=api_key,
            base_url=base_url.rstrip("/") if base_url else None,
            # An explicit empty id stops the client falling back to TOGETHER_PROJECT_ID behind our back.
            project_id=self.project_id or "",
            max_retries=max_retries,
            timeout=timeout,
        )

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        # Before the shared status rules: the answer is "Together cannot", whatever the status.
        return {"pause": PAUSE_REASON, "resume": RESUME_REASON}.get(action)

    # ---- files ------------------------------------------------------------------------------

    def upload_file(self, data: BinaryIO | bytes | Path, filename: str, *, purpose: str = "fine-tune") -> ProviderFile:
        # The SDK uploads from a path named like the file (it sends the name and derives the type
        # from the extension): give it one, streaming a file handle to disk rather than into memory.
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name) or "data.jsonl"
        with tempfile.TemporaryDirectory(prefix="ftbot-together-") as tmp:
            path = Path(tmp) / safe
            if isinstance(data, Path) and data.name == safe:
                path = data
            elif isinstance(data, Path):
                with data.open("rb") as fh:
                    _copy(fh, path)
            elif isinstance(data, bytes | bytearray):
                path.write_bytes(data)
            else:
                _copy(data, path)
            with translate_errors("file"):
                # check=False: ftbot's own dataset checks run before an upload and say more.
                return _file(self.client.files.upload(path, purpose=purpose, check=False))

    def list_files(self, *, purpose: str | None = None, limit: int = 100) -> list[ProviderFile]:
        with translate_errors("file"):
            files = [_file(f) for f in self.client.files.list().data]
        if purpose:
            files = [f for f in files if f.purpose == purpose]
        return files[:limit]

    def get_file(self, file_id: str) -> ProviderFile:
        with translate_errors("file"):
            return _file(self.client.files.retrieve(file_id))

    def file_content(self, file_id: str) -> bytes:
        with translate_errors("file"):
            return self.client.files.content(file_id).read()

    def download_file(self, file_id: str, dest: Path) -> int:
        with translate_errors("file"), self.client.files.with_streaming_response.content(file_id) as resp:
            return stream_to_file(resp, dest)

    def delete_file(self, file_id: str) -> bool:
        with translate_errors("file"):
            return bool(self.client.files.delete(file_id).deleted)

    # ---- jobs -------------------------------------------------------------------------------

    def _create_kwargs(self, spec: JobSpec, idempotency_key: str | None) -> dict[str, Any]:
        if spec.method not in METHODS:
            raise ProviderInvalidRequest(f"{NAME} trains with supervised (SFT) or dpo, not {spec.method!r}.")
        if spec.suffix is not None and len(spec.suffix) > MAX_SUFFIX:
            raise ProviderInvalidRequest(f"{NAME} takes a suffix of at most {MAX_SUFFIX} characters.")
        hyper = {k: v for k, v in spec.hyperparameters.items() if v is not None and v != "auto"}
        if "learning_rate_multiplier" in hyper:
            raise ProviderInvalidRequest(
                f"{NAME} takes an absolute learning_rate (such as 1e-5), not OpenAI's learning_rate_multiplier."
            )
        training_type = str(hyper.pop("training_type", "lora")).lower()
        if training_type not in {"lora", "full"}:
            raise ProviderInvalidRequest(f"training_type is lora or full, not {training_type!r}.")
        unknown = sorted(set(hyper) - set(HYPERPARAMETERS))
        if unknown:
            raise ProviderInvalidRequest(
                f"{NAME} does not take {', '.join(unknown)}; it takes {', '.join(sorted(HYPERPARAMETERS))} and training_type."
            )
        if "beta" in hyper and spec.method != "dpo":
            raise ProviderInvalidRequest("beta applies to DPO training only.")
        kwargs: dict[str, Any] = {
            "model": spec.model,
            "training_file": spec.training_file,
            "training_method": METHODS[spec.method],
            "lora": training_type == "lora",
        }
        kwargs.update({HYPERPARAMETERS[k]: v for k, v in hyper.items()})
        if spec.method == "supervised":
            kwargs.setdefault("train_on_inputs", "auto")
        if spec.validation_file:
            kwargs["validation_file"] = spec.validation_file
            # Together evaluates only when asked (n_evals defaults to 0); a validation file given to
            # ftbot means "show me validation loss", as it does at OpenAI. Each eval is billed.
            kwargs.setdefault("n_evals", DEFAULT_N_EVALS)
        if spec.suffix:
            kwargs["suffix"] = spec.suffix
        if spec.seed is not None:
            kwargs["random_seed"] = spec.seed
        elif idempotency_key:
            kwargs["random_seed"] = _key_seed(idempotency_key)
        return kwargs

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        kwargs = self._create_kwargs(spec, idempotency_key)
        # Creating a job is not idempotent and the client retries POSTs by itself: its retries are
        # off here and create_once retries, looking the key (the seed) up before each new attempt.
        client = self.client.with_options(max_retries=0)

        def create() -> Job:
            with translate_errors("job"):
                made = client.fine_tuning.create(**kwargs)
            return self.get_job(made.id)

        find = (lambda: self.find_job_by_key(idempotency_key)) if idempotency_key and spec.seed is None else None
        return create_once(create, find, vendor=NAME)

    def estimate_price(self, spec: JobSpec) -> float | None:
        """Together's own estimate in USD for this job (its rates depend on model size, LoRA or full,
        SFT or DPO, so no static table is kept), or None when it cannot estimate yet."""
        kwargs = self._create_kwargs(spec, None)
        body: dict[str, Any] = {
            "training_file": spec.training_file,
            "model": spec.model,
            "n_epochs": int(kwargs.get("n_epochs", 1)),
            "n_evals": int(kwargs.get("n_evals", 0)),
            "training_method": {"method": kwargs["training_method"]},
        }
        if not kwargs["lora"]:
            body["training_type"] = {"type": "Full"}
        if spec.validation_file:
            body["validation_file"] = spec.validation_file
        with translate_errors("job"):
            est = self.client.fine_tuning.estimate_price(**body)
        if not getattr(est, "estimation_available", False) or getattr(est, "estimated_total_price", None) is None:
            return None
        return float(est.estimated_total_price)

    def find_job_by_key(self, idempotency_key: str) -> Job | None:
        """A job made with this key: Together has no metadata, so the key is the job's seed.

        A job started with an explicit seed cannot be found this way (ftbot's own row, keyed in the
        database, still prevents a second start from Slack)."""
        seed = _key_seed(idempotency_key)
        with translate_errors("job"):
            for j in self.client.fine_tuning.list().data:
                if _extra(j, "random_seed") == seed:
                    return _job(j)
        return None

    def list_jobs(self, *, limit: int = 20, after: str | None = None) -> JobPage:
        with translate_errors("job"):
            jobs = [_job(j) for j in self.client.fine_tuning.list().data]
        # The list is whole, newest first; `after` pages through it as OpenAI's cursor would.
        if after:
            ids = [j.id for j in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        return JobPage(jobs=jobs[:limit], has_more=len(jobs) > limit)

    def get_job(self, job_id: str) -> Job:
        with translate_errors("job"):
            j = self.client.fine_tuning.retrieve(job_id)
        job = _job(j)
        if job.status == "failed":
            # Together puts the reason in the event list, not on the job.
            with contextlib.suppress(ProviderError):
                reason = next((e.message for e in reversed(self._raw_events(job_id)) if e.level == "error"), None)
                if reason:
                    job = _with_error(job, reason)
        return job

    def cancel_job(self, job_id: str) -> Job:
        with translate_errors("job"):
            self.client.fine_tuning.cancel(job_id)
        return self.get_job(job_id)

    def pause_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(PAUSE_REASON)

    def resume_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(RESUME_REASON)

    # ---- events, metrics and checkpoints ----------------------------------------------------

    def _raw_events(self, job_id: str) -> list[JobEvent]:
        """Together's events with stable ids: its own fields, plus a count among identical ones."""
        with translate_errors("job"):
            data = self.client.fine_tuning.list_events(job_id).data
        seen: dict[tuple[str, str, str], int] = {}
        out = []
        for e in data:
            created = str(e.created_at or "")
            type_ = str(getattr(e.type, "value", e.type) or "message")
            key = (created, type_, e.message or "")
            nth = seen[key] = seen.get(key, -1) + 1
            data_ = {k: getattr(e, k) for k in ("step", "total_steps", "token_count", "param_count") if getattr(e, k, None) is not None}
            out.append(
                JobEvent(
                    id=_event_id(*key, nth),
                    created_at=_unix(created) or 0,
                    level=_level(e.level),
                    message=e.message or "",
                    type=type_,
                    data=data_ or None,
                )
            )
        return out

    def _metric_events(self, job_id: str, events: list[JobEvent]) -> list[JobEvent]:
        with translate_errors("job"):
            rows = self.client.fine_tuning.list_metrics(job_id).metrics or []
        total = next((int(e.data["total_steps"]) for e in reversed(events) if e.data and e.data.get("total_steps")), None)
        out: dict[int, JobEvent] = {}
        for row in rows:
            step_f = _float(row, "train/global_step", "global_step", "step")
            if step_f is None:
                continue
            step = int(step_f)
            data: dict[str, Any] = {"step": step, "total_steps": total}
            train = _float(row, "train/loss", "loss")
            valid = _float(row, "eval/loss", "valid/loss", "eval_loss")
            if train is not None:
                data["train_loss"] = train
            if valid is not None:
                data["valid_loss"] = valid
            lr = _float(row, "train/learning_rate", "learning_rate")
            if lr is not None:
                data["learning_rate"] = lr
            msg = f"Step {step}/{total or '?'}: training loss={train:.2f}" if train is not None else f"Step {step}/{total or '?'}"
            if valid is not None:
                msg += f", validation loss={valid:.2f}"
            # Rows without a time sit with the last event logged at or before their step.
            at = _float(row, "timestamp", "logged_at")
            if at is None:
                at = float(next((e.created_at for e in reversed(events) if (e.data or {}).get("step", 1 << 62) <= step), 0))
            out[step] = JobEvent(id=f"metrics-{step}", created_at=int(at), level="info", message=msg, type="metrics", data=data)
        return [out[s] for s in sorted(out)]

    def _merged(self, job_id: str) -> list[JobEvent]:
        """Events and metrics in one deterministic order: by time, and within a second by training
        progress (a step's loss before the checkpoint saved at that step, "job_complete" last)."""
        events = self._raw_events(job_id)
        metrics = self._metric_events(job_id, events)
        keyed: list[tuple[tuple[int, int, int, int], JobEvent]] = []
        progress = 0
        for i, e in enumerate(events):
            if e.type in AFTER_TRAINING:
                progress = 1 << 40
            elif e.data and isinstance(e.data.get("step"), int):
                progress = max(progress, e.data["step"])
            keyed.append(((e.created_at, progress, 1, i), e))
        keyed += [((m.created_at, m.data["step"], 0, 0), m) for m in metrics]  # type: ignore[index]
        return [e for _, e in sorted(keyed, key=lambda kv: kv[0])]

    def new_events(self, job_id: str, known_id: str | None, *, page_size: int = 100) -> list[JobEvent]:
        merged = self._settled(self._merged(job_id))
        if known_id is None:
            return merged
        ids = [e.id for e in merged]
        if known_id not in ids:
            # Not in the list (a job whose old events Together dropped): everything is new to us.
            log.info("together job %s: last known event %s not in the list, reading all", job_id, known_id)
            return merged
        pos = ids.index(known_id)
        newer = merged[pos + 1 :]
        if known_id.startswith("metrics-"):
            # Within the metrics stream a higher step is new whatever its time says: a row logged
            # late can sort before `known_id` and still be unseen.
            last_step = int(known_id.removeprefix("metrics-"))
            late = [e for e in merged[:pos] if e.type == "metrics" and (e.data or {}).get("step", -1) > last_step]
            return late + newer
        return newer

    def _settled(self, merged: list[JobEvent]) -> list[JobEvent]:
        """Hold back the newest second until it is complete.

        Two streams (events, metrics) merged by a time with one-second precision: an event logged in
        the same second as the last metric we handed out could otherwise land before it in the order
        and never be seen. So items of the newest second wait until something later exists, the job
        has ended, or the second is long past (a job quiet for a while).
        """
        if self.settle_seconds <= 0 or not merged or any(e.type in FINAL_EVENTS for e in merged):
            return merged
        newest = max(e.created_at for e in merged)
        if newest <= clock.timestamp() - self.settle_seconds:
            return merged
        return [e for e in merged if e.created_at < newest]

    def list_events(self, job_id: str, *, limit: int = 20) -> list[JobEvent]:
        return list(reversed(self._merged(job_id)))[:limit]

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        with translate_errors("job"):
            data = self.client.fine_tuning.list_checkpoints(job_id).data
        # A LoRA job's two final checkpoints share the shipped model's step: the merged model keeps
        # the "<job id>:<step>" name `from_checkpoint` takes, the adapter beside it gets ":adapter".
        whole_model_steps = {int(c.step) for c in data if not _is_adapter(c)}
        out: list[Checkpoint] = []
        seen: set[str] = set()
        for c in data:
            adapter = _is_adapter(c)
            cid = f"{job_id}:{c.step}" + (":adapter" if adapter and int(c.step) in whole_model_steps else "")
            if cid in seen:
                continue  # listed twice: one row is enough
            seen.add(cid)
            out.append(
                Checkpoint(
                    id=cid,
                    created_at=_unix(c.created_at) or 0,
                    step_number=int(c.step),
                    model=c.object_name or c.path,
                    job_id=job_id,
                    label=c.checkpoint_type or None,
                    adapter=adapter,
                )
            )
        return out

    # ---- models -----------------------------------------------------------------------------

    def _need_project(self) -> str:
        if not self.project_id:
            raise ProviderError(
                f"{NAME} lists and deletes models per project: set TOGETHER_PROJECT_ID (the project id from "
                "Together's console) to manage models from ftbot."
            )
        return self.project_id

    def list_models(self) -> list[Model]:
        project = self._need_project()
        with translate_errors("model"):
            return [
                Model(id=m.name, created=_model_created(m), owned_by=m.project_id or project, fine_tuned=True)
                for m in self.client.models.list(project_id=project)
            ]

    def delete_model(self, model: str) -> bool:
        project = self._need_project()
        with translate_errors("model"):
            # ftbot knows models by name; the registry deletes by its own id.
            found = next((m for m in self.client.models.list(project_id=project) if model in (m.name, m.id)), None)
            if found is None:
                raise ProviderNotFound(f"{NAME} has no model {model} in project {project}", status=404)
            self.client.models.delete(found.id, project_id=project)
        return True

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
        try:
            with translate_errors("model"):
                resp = self.client.chat.completions.create(
                    model=model,
                    messages=[dict(m) for m in messages],  # type: ignore[misc]
                    max_tokens=max_tokens,
                    **request_options(tools, temperature, seed),
                )
        except (ProviderInvalidRequest, ProviderNotFound) as exc:
            if "non-serverless" in str(exc) or "dedicated endpoint" in str(exc) or "not deployed" in str(exc):
                raise ModelNotServed(NOT_DEPLOYED.format(name=NAME, model=model), status=exc.status) from exc
            raise
        return chat_reply(resp)


def _model_created(m: Any) -> int:
    """The registry's type declares no creation time; use one if the answer carries it (0: unknown)."""
    for name in ("createTime", "create_time", "createdAt", "created_at", "created"):
        value = _unix(_extra(m, name))
        if value:
            return value
    return 0


def _with_error(job: Job, reason: str) -> Job:
    return replace(job, error=JobError(code=job.error.code if job.error else "error", message=reason))


def _copy(src: BinaryIO, dst: Path) -> None:
    with dst.open("wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def _is_adapter(c: Any) -> bool:
    """A LoRA adapter's weights: Together's `checkpoint` selector says so; older answers without it
    say it only in the label ("Final Adapter")."""
    kind = getattr(c, "checkpoint", None)
    if kind is not None:
        return kind == "adapter"
    return "adapter" in (c.checkpoint_type or "").lower()
