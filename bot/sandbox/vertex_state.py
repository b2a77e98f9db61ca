"""Vertex AI's view of the sandbox: Gemini tuning jobs, tuned models and their endpoints.

Objects are served in Google's JSON conventions: camelCase keys, 64-bit integers as strings, RFC 3339
times ending in `Z`, errors as `{"error": {"code", "message", "status"}}`. Jobs move lazily from the
wall clock each time they are looked at (no background thread), through the documented states:

    JOB_STATE_PENDING  + TUNING_JOB_STATE_WAITING_FOR_QUOTA      (timing.queued_seconds)
    JOB_STATE_RUNNING  + TUNING_JOB_STATE_PROCESSING_DATASET     (timing.validating_seconds; a bad
                                                                  dataset fails the job here)
    JOB_STATE_RUNNING  + TUNING_JOB_STATE_WAITING_FOR_CAPACITY   (timing.queued_seconds)
    JOB_STATE_RUNNING  + TUNING_JOB_STATE_TUNING                 (timing.step_seconds a step)
    JOB_STATE_RUNNING  + TUNING_JOB_STATE_POST_PROCESSING        (timing.queued_seconds)
    JOB_STATE_SUCCEEDED, with tunedModel {model, endpoint, checkpoints}

A cancel answers `{}`; the job is JOB_STATE_CANCELLING for timing.queued_seconds, then
JOB_STATE_CANCELLED with `error {"code": 1}`. Training data is read from the bucket (the storage
emulator) when the dataset is processed, and a tuned endpoint answers the prompts of its training
file with the trained answers (bot.sandbox.learned), the base model generically.

Not simulated: Vertex AI Experiments (the job names an `experiment`; its metric time series are not
served), continuous tuning from a tuned model, preference and distillation tuning, images.
"""

from __future__ import annotations

import base64
import json
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.provider.vertex_models import (
    ADAPTER_SIZES,
    LABEL_RE,
    MAX_VALIDATION_EXAMPLES,
    TUNABLE_MODELS,
    TUNING_LOCATIONS,
)
from bot.sandbox import learned
from bot.sandbox.state import Timing

PROJECT = "ftbot-sandbox"
PROJECT_NUMBER = "123456789012"
# gRPC status names by code (google.rpc.Code), as Google's JSON errors carry them.
STATUS_NAMES = {
    1: "CANCELLED", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 7: "PERMISSION_DENIED", 9: "FAILED_PRECONDITION",
    8: "RESOURCE_EXHAUSTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED",
}
HTTP_OF = {1: 499, 3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 13: 500, 14: 503, 16: 401}
ENUM_OF = {v: k for k, v in ADAPTER_SIZES.items()}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 300
EXAMPLES_PER_STEP = 8  # the simulated batch size
MIN_EXAMPLES = 1


class GoogleError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.http = HTTP_OF.get(code, 500)
        self.body = {"error": {"code": self.http, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}}


def rfc3339(unix: float | None) -> str | None:
    if unix is None:
        return None
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class VertexJob:
    id: str
    location: str
    base_model: str
    training_uri: str
    validation_uri: str | None
    epochs: int
    lr_multiplier: float
    adapter_size: str
    labels: dict[str, str]
    display_name: str
    description: str | None
    export_last_only: bool
    created: float
    rng: random.Random
    # known once the dataset is processed
    examples: int = 0
    billable_tokens: int = 0
    characters: int = 0
    steps_per_epoch: int = 1
    invalid_reason: str | None = None
    processed: bool = False
    # ends
    cancel_at: float | None = None
    fail_with: tuple[int, str] | None = None  # test control: the job fails when next looked at
    ended: tuple[str, float, dict[str, Any] | None] | None = None  # (state, when, error)
    model_id: str = field(default_factory=lambda: str(random.randint(10**17, 10**18 - 1)))
    endpoint_id: str = field(default_factory=lambda: str(random.randint(10**17, 10**18 - 1)))

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


class ManualClock:
    """A clock that moves only when told (tests observe each state without racing the wall clock)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class VertexWorld:
    """`read_object(bucket, name)` returns an object's bytes from the bucket, None when absent.
    `clock` is the wall clock unless a test sets a ManualClock."""

    def __init__(self, read_object: Callable[[str, str], bytes | None], *, timing: Timing | None = None, project: str = PROJECT) -> None:
        self.lock = threading.RLock()
        self.read_object = read_object
        self.timing = timing or Timing()
        self.project = project
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.clock: Callable[[], float] = time.time
            self.jobs: dict[str, VertexJob] = {}
            self.deleted_models: set[str] = set()
            self.memory = learned.Memory()
            self.chat_reply: str | None = None
            self.requests: dict[str, int] = {}

    # ---- names ------------------------------------------------------------------------------

    def _parent(self, project: str, location: str) -> str:
        return f"projects/{project}/locations/{location}"

    def check_project(self, project: str, location: str, permission: str) -> None:
        if project not in {self.project, PROJECT_NUMBER}:
            raise GoogleError(7, f"Permission '{permission}' denied on resource '//aiplatform.googleapis.com/projects/{project}/locations/{location}' (or it may not exist).")

    def job_name(self, job: VertexJob) -> str:
        return f"projects/{PROJECT_NUMBER}/locations/{job.location}/tuningJobs/{job.id}"

    def model_name(self, job: VertexJob) -> str:
        return f"projects/{PROJECT_NUMBER}/locations/{job.location}/models/{job.model_id}"

    def endpoint_name(self, job: VertexJob) -> str:
        return f"projects/{PROJECT_NUMBER}/locations/{job.location}/endpoints/{job.endpoint_id}"

    # ---- create -----------------------------------------------------------------------------

    def create(self, project: str, location: str, body: dict[str, Any]) -> dict[str, Any]:
        self.check_project(project, location, "aiplatform.tuningJobs.create")
        if location not in TUNING_LOCATIONS:
            raise GoogleError(3, f"Gemini tuning is not supported in location {location}. Supported locations: {', '.join(TUNING_LOCATIONS)}.")
        base = body.get("baseModel")
        if body.get("preTunedModel"):
            raise GoogleError(3, "The sandbox does not simulate continuous tuning (preTunedModel).")
        if not isinstance(base, str) or not base:
            raise GoogleError(3, "baseModel is required.")
        short = base.rsplit("/", 1)[-1]
        if short not in TUNABLE_MODELS:
            raise GoogleError(3, f"Base model {base} is not supported for supervised tuning. Supported base models: {', '.join(TUNABLE_MODELS)}.")
        spec = body.get("supervisedTuningSpec")
        if not isinstance(spec, dict):
            raise GoogleError(3, "supervisedTuningSpec is required for Gemini models.")
        train = spec.get("trainingDatasetUri")
        if not isinstance(train, str) or not train.startswith("gs://"):
            raise GoogleError(3, f"supervisedTuningSpec.trainingDatasetUri must be a Cloud Storage URI (gs://…), got {str(train)[:100]!r}.")
        val = spec.get("validationDatasetUri")
        if val is not None and (not isinstance(val, str) or not val.startswith("gs://")):
            raise GoogleError(3, f"supervisedTuningSpec.validationDatasetUri must be a Cloud Storage URI (gs://…), got {str(val)[:100]!r}.")
        hp = spec.get("hyperParameters") or {}
        epochs = _int64(hp.get("epochCount", "3"), "epochCount")
        if epochs < 1 or epochs > 100:
            raise GoogleError(3, f"epochCount must be between 1 and 100, got {epochs}.")
        lr = hp.get("learningRateMultiplier", 1.0)
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0 or not math.isfinite(lr):
            raise GoogleError(3, f"learningRateMultiplier must be a positive number, got {lr!r}.")
        adapter = hp.get("adapterSize", "ADAPTER_SIZE_FOUR")
        if adapter not in ENUM_OF:
            raise GoogleError(3, f"Invalid adapterSize {str(adapter)[:40]!r}: supported sizes are {', '.join(ADAPTER_SIZES.values())}.")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > 64:
            raise GoogleError(3, "labels must be a map of at most 64 entries.")
        for k, v in labels.items():
            if not k or not LABEL_RE.match(k) or not isinstance(v, str) or not LABEL_RE.match(v):
                raise GoogleError(3, f"Invalid label {k!r}: keys and values are at most 64 lowercase letters, digits, '_' or '-'.")
        display = body.get("tunedModelDisplayName") or f"{short}-tuned-{secrets.token_hex(3)}"
        if len(display) > 128:
            raise GoogleError(3, "tunedModelDisplayName must be at most 128 characters.")
        now = self.clock()
        jid = str(random.randint(10**18, 9 * 10**18))
        job = VertexJob(
            id=jid, location=location, base_model=short, training_uri=train, validation_uri=val, epochs=epochs,
            lr_multiplier=float(lr), adapter_size=adapter, labels=dict(labels), display_name=display,
            description=body.get("description"), export_last_only=bool(spec.get("exportLastCheckpointOnly", False)),
            created=now, rng=random.Random(jid),
        )
        with self.lock:
            self.jobs[jid] = job
            return self.view(job, now)

    # ---- progress ---------------------------------------------------------------------------

    def _read_dataset(self, uri: str) -> bytes | None:
        bucket, _, name = uri[5:].partition("/")
        return self.read_object(bucket, name)

    def _process(self, job: VertexJob) -> None:
        """What Vertex learns of the data while processing it: examples, tokens, problems."""
        job.processed = True
        content = self._read_dataset(job.training_uri)
        if content is None:
            job.invalid_reason = f"Failed to read the training dataset {job.training_uri}: the object does not exist."
            return
        examples, chars, problem = _inspect(content)
        if problem:
            job.invalid_reason = f"Training dataset {job.training_uri}: {problem}"
            return
        if job.validation_uri:
            vcontent = self._read_dataset(job.validation_uri)
            if vcontent is None:
                job.invalid_reason = f"Failed to read the validation dataset {job.validation_uri}: the object does not exist."
                return
            vexamples, _, vproblem = _inspect(vcontent)
            if vproblem:
                job.invalid_reason = f"Validation dataset {job.validation_uri}: {vproblem}"
                return
            if vexamples > MAX_VALIDATION_EXAMPLES:
                job.invalid_reason = f"The validation dataset has {vexamples} examples; at most {MAX_VALIDATION_EXAMPLES} are allowed."
                return
        job.examples = examples
        job.characters = chars
        job.billable_tokens = max(1, chars // 4)  # the sandbox's stand-in for Gemini's tokenizer
        job.steps_per_epoch = max(1, math.ceil(examples / EXAMPLES_PER_STEP))

    def _phase(self, job: VertexJob, now: float) -> tuple[str, str | None, int]:
        """(state, tuning_job_state, completed steps) at `now`; ends are recorded once reached."""
        if job.ended is not None:
            state = job.ended[0]
            return state, None, job.total_steps if state == "JOB_STATE_SUCCEEDED" else self._steps_at(job, job.ended[1])
        t = self.timing
        q, v = t.queued_seconds, t.validating_seconds
        if job.fail_with is not None:
            code, message = job.fail_with
            self._end(job, "JOB_STATE_FAILED", now, {"code": code, "message": message})
            return self._phase(job, now)
        if job.cancel_at is not None:
            if now >= job.cancel_at + q:
                self._end(job, "JOB_STATE_CANCELLED", job.cancel_at + q, {"code": 1, "message": "CANCELLED"})
                return self._phase(job, now)
            return "JOB_STATE_CANCELLING", None, self._steps_at(job, job.cancel_at)
        age = now - job.created
        if age < q:
            return "JOB_STATE_PENDING", "TUNING_JOB_STATE_WAITING_FOR_QUOTA", 0
        if not job.processed:
            self._process(job)
        if age < q + v:
            return "JOB_STATE_RUNNING", "TUNING_JOB_STATE_PROCESSING_DATASET", 0
        if job.invalid_reason:
            self._end(job, "JOB_STATE_FAILED", job.created + q + v, {"code": 3, "message": job.invalid_reason})
            return self._phase(job, now)
        if age < 2 * q + v:
            return "JOB_STATE_RUNNING", "TUNING_JOB_STATE_WAITING_FOR_CAPACITY", 0
        steps = self._steps_at(job, now)
        if steps < job.total_steps:
            return "JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", steps
        tuned = self._tuning_start(job) + job.total_steps * t.step_seconds
        if now < tuned + q:
            return "JOB_STATE_RUNNING", "TUNING_JOB_STATE_POST_PROCESSING", job.total_steps
        self._end(job, "JOB_STATE_SUCCEEDED", tuned + q, None)
        return self._phase(job, now)

    def _tuning_start(self, job: VertexJob) -> float:
        return job.created + 2 * self.timing.queued_seconds + self.timing.validating_seconds

    def _steps_at(self, job: VertexJob, at: float) -> int:
        if not job.processed or job.invalid_reason:
            return 0
        ran = at - self._tuning_start(job)
        return 0 if ran <= 0 else min(job.total_steps, int(ran / max(self.timing.step_seconds, 1e-9)))

    def _end(self, job: VertexJob, state: str, at: float, error: dict[str, Any] | None) -> None:
        job.ended = (state, at, error)

    def view(self, job: VertexJob, now: float | None = None) -> dict[str, Any]:
        now = self.clock() if now is None else now
        state, detail, steps = self._phase(job, now)
        spec: dict[str, Any] = {
            "trainingDatasetUri": job.training_uri,
            "hyperParameters": {"epochCount": str(job.epochs), "learningRateMultiplier": job.lr_multiplier, "adapterSize": job.adapter_size},
            "exportLastCheckpointOnly": job.export_last_only,
        }
        if job.validation_uri:
            spec["validationDatasetUri"] = job.validation_uri
        out: dict[str, Any] = {
            "name": self.job_name(job),
            "tunedModelDisplayName": job.display_name,
            "baseModel": job.base_model,
            "supervisedTuningSpec": spec,
            "state": state,
            "createTime": rfc3339(job.created),
            "updateTime": rfc3339(min(now, job.ended[1]) if job.ended else now),
            "experiment": f"projects/{PROJECT_NUMBER}/locations/{job.location}/metadataStores/default/contexts/tuning-experiment-{job.id}",
        }
        if job.description:
            out["description"] = job.description
        if job.labels:
            out["labels"] = dict(job.labels)
        if detail:
            out["tuningJobState"] = detail
        if state != "JOB_STATE_PENDING":
            out["startTime"] = rfc3339(job.created + self.timing.queued_seconds)
        if job.processed and not job.invalid_reason and (detail not in {None, "TUNING_JOB_STATE_PROCESSING_DATASET"} or job.ended):
            out["tuningDataStats"] = {"supervisedTuningDataStats": {
                "tuningDatasetExampleCount": str(job.examples),
                "totalBillableTokenCount": str(job.billable_tokens),
                "totalTuningCharacterCount": str(job.characters),
                "totalBillableCharacterCount": str(job.characters),
                "tuningStepCount": str(job.total_steps),
                "totalTruncatedExampleCount": "0",
            }}
            out["tuningJobMetadata"] = {
                "completedEpochCount": str(steps // job.steps_per_epoch),
                "completedStepCount": str(steps),
            }
        if job.ended is not None:
            out["endTime"] = rfc3339(job.ended[1])
            if job.ended[2] is not None:
                out["error"] = dict(job.ended[2])
        if state == "JOB_STATE_SUCCEEDED" and job.model_id not in self.deleted_models:
            out["tunedModel"] = {
                "model": f"{self.model_name(job)}@1",
                "endpoint": self.endpoint_name(job),
                "checkpoints": self._checkpoints(job),
            }
        return out

    def _checkpoints(self, job: VertexJob) -> list[dict[str, Any]]:
        epochs = [job.epochs] if job.export_last_only else list(range(1, job.epochs + 1))
        return [
            {
                "checkpointId": str(e),
                "epoch": str(e),
                "step": str(e * job.steps_per_epoch),
                "endpoint": f"{self.endpoint_name(job)}-ckpt-{e}" if e != job.epochs else self.endpoint_name(job),
            }
            for e in epochs
        ]

    # ---- read, list, cancel -----------------------------------------------------------------

    def _job(self, project: str, location: str, jid: str) -> VertexJob:
        self.check_project(project, location, "aiplatform.tuningJobs.get")
        job = self.jobs.get(jid)
        if job is None or job.location != location:
            raise GoogleError(5, f"The TuningJob does not exist: projects/{project}/locations/{location}/tuningJobs/{jid}")
        return job

    def get(self, project: str, location: str, jid: str) -> dict[str, Any]:
        with self.lock:
            return self.view(self._job(project, location, jid))

    def list(self, project: str, location: str, *, page_size: int | None, page_token: str | None, filter_: str | None) -> dict[str, Any]:
        self.check_project(project, location, "aiplatform.tuningJobs.list")
        wanted = _label_filter(filter_)
        size = DEFAULT_PAGE_SIZE if not page_size else min(page_size, MAX_PAGE_SIZE)
        if size < 0:
            raise GoogleError(3, "page_size must be positive.")
        start = 0
        if page_token:
            try:
                start = int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("offset:"))
            except (ValueError, UnicodeDecodeError):
                raise GoogleError(3, "Invalid page token.") from None
        with self.lock:
            matching = [
                j for j in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
                if j.location == location and all(j.labels.get(k) == v for k, v in wanted.items())
            ]
            page = [self.view(j) for j in matching[start : start + size]]
        out: dict[str, Any] = {}
        if page:
            out["tuningJobs"] = page
        if start + size < len(matching):
            out["nextPageToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
        return out

    def cancel(self, project: str, location: str, jid: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(project, location, jid)
            state = self.view(job)["state"]
            if state in {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"}:
                raise GoogleError(9, f"Cannot cancel tuning job {self.job_name(job)} in state {state}.")
            if job.cancel_at is None:
                job.cancel_at = self.clock()
        return {}

    # ---- test controls ----------------------------------------------------------------------

    def fail(self, jid: str, message: str, code: int = 13) -> dict[str, Any]:
        with self.lock:
            job = self.jobs.get(jid)
            if job is None:
                raise GoogleError(5, f"No tuning job {jid}")
            job.fail_with = (code, message)
            return self.view(job)

    # ---- models and endpoints ---------------------------------------------------------------

    def _by_model(self, model_id: str) -> VertexJob | None:
        return next((j for j in self.jobs.values() if j.model_id == model_id), None)

    def _by_endpoint(self, endpoint_id: str) -> tuple[VertexJob, int | None] | None:
        for j in self.jobs.values():
            if endpoint_id == j.endpoint_id:
                return j, None
            if endpoint_id.startswith(j.endpoint_id + "-ckpt-"):
                return j, int(endpoint_id.rsplit("-", 1)[-1])
        return None

    def list_models(self, project: str, location: str) -> dict[str, Any]:
        self.check_project(project, location, "aiplatform.models.list")
        with self.lock:
            models = []
            for j in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True):
                if j.location != location or j.model_id in self.deleted_models:
                    continue
                if self.view(j)["state"] != "JOB_STATE_SUCCEEDED":
                    continue
                models.append({
                    "name": self.model_name(j), "displayName": j.display_name, "versionId": "1",
                    "labels": dict(j.labels), "createTime": rfc3339(j.ended[1] if j.ended else j.created),
                    "deployedModels": [{"endpoint": self.endpoint_name(j), "deployedModelId": j.endpoint_id}],
                })
        return {"models": models} if models else {}

    def delete_model(self, project: str, location: str, model_id: str) -> dict[str, Any]:
        self.check_project(project, location, "aiplatform.models.delete")
        model_id = model_id.split("@", 1)[0]
        with self.lock:
            job = self._by_model(model_id)
            if job is None or model_id in self.deleted_models or job.location != location or self.view(job)["state"] != "JOB_STATE_SUCCEEDED":
                raise GoogleError(5, f"Model projects/{project}/locations/{location}/models/{model_id} is not found.")
            self.deleted_models.add(model_id)
        # A long-running operation, as Vertex answers a deletion.
        return {"name": f"projects/{PROJECT_NUMBER}/locations/{location}/operations/{random.randint(10**17, 10**18)}", "done": True}

    def generate(self, project: str, location: str, target: str, body: dict[str, Any]) -> dict[str, Any]:
        """`target`: "endpoints/ID" or "publishers/google/models/NAME"."""
        self.check_project(project, location, "aiplatform.endpoints.predict")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise GoogleError(3, "contents is required and must not be empty.")
        messages = _as_messages(body.get("systemInstruction"), contents)
        lessons = None
        with self.lock:
            if target.startswith("endpoints/"):
                found = self._by_endpoint(target.removeprefix("endpoints/"))
                if found is None or found[0].location != location or found[0].model_id in self.deleted_models or self.view(found[0])["state"] != "JOB_STATE_SUCCEEDED":
                    raise GoogleError(5, f"Endpoint projects/{project}/locations/{location}/{target} not found.")
                job = found[0]
                name = self.endpoint_name(job)
                content = self._read_dataset(job.training_uri) or b""
                lessons = self.memory.of_file(job.training_uri, _as_openai_file(content))
            else:
                short = target.rsplit("/", 1)[-1]
                if short not in TUNABLE_MODELS:
                    raise GoogleError(5, f"Publisher Model `projects/{project}/locations/{location}/{target}` was not found or your project does not have access to it.")
                name = short
            self.memory.count(name, messages)
            canned = self.chat_reply
        if canned is not None:
            prompt = learned._text(messages[-1].get("content")) if messages else ""
            text: str | None = canned.replace("{prompt}", prompt)
        else:
            text = learned.reply(name, messages, lessons, self.memory.noise)["message"].get("content")
        usage = learned.usage(messages, {"content": text})
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text or ""}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": usage["prompt_tokens"],
                "candidatesTokenCount": usage["completion_tokens"],
                "totalTokenCount": usage["total_tokens"],
            },
            "modelVersion": name,
            "createTime": rfc3339(self.clock()),
            "responseId": secrets.token_urlsafe(12),
        }


def _int64(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise GoogleError(3, f"Invalid value for {name}: {str(value)[:40]!r}.") from None


_FILTER_CLAUSE = re.compile(r'^labels\.([a-z0-9_-]+)\s*=\s*"?([a-z0-9_-]*)"?$')


def _label_filter(text: str | None) -> dict[str, str]:
    """`labels.key="value" AND labels.other=v` (AIP-160, the part the sandbox understands)."""
    if not text or not text.strip():
        return {}
    out = {}
    for clause in re.split(r"\s+AND\s+", text.strip()):
        m = _FILTER_CLAUSE.match(clause.strip())
        if m is None:
            raise GoogleError(3, f"Unsupported filter: {text[:100]!r}. The sandbox understands labels.KEY=\"VALUE\" joined by AND.")
        out[m.group(1)] = m.group(2)
    return out


def _inspect(content: bytes) -> tuple[int, int, str | None]:
    """(examples, characters of text, the first problem) of a Gemini-format JSONL file."""
    examples = chars = 0
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ex = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return examples, chars, f"line {n} is not valid JSON."
        if not isinstance(ex, dict) or not isinstance(ex.get("contents"), list) or not ex["contents"]:
            return examples, chars, f"line {n} has no contents: each line must be {{\"contents\": [{{\"role\": …, \"parts\": […]}}]}}."
        for c in ex["contents"]:
            if not isinstance(c, dict) or c.get("role") not in {"user", "model"} or not isinstance(c.get("parts"), list):
                return examples, chars, f"line {n}: every content needs role user or model and a list of parts."
            chars += sum(len(p.get("text", "")) for p in c["parts"] if isinstance(p, dict) and isinstance(p.get("text"), str))
        if ex["contents"][-1].get("role") != "model":
            return examples, chars, f"line {n}: the last content must be the model's."
        examples += 1
    if examples < MIN_EXAMPLES:
        return examples, chars, "the dataset has no examples."
    return examples, chars, None


def _as_messages(system: Any, contents: list[Any]) -> list[dict[str, Any]]:
    """Gemini's turns as OpenAI chat messages: the sandbox's memory of trained answers is keyed so."""
    out: list[dict[str, Any]] = []
    if isinstance(system, dict) and isinstance(system.get("parts"), list):
        out.append({"role": "system", "content": _parts_text(system["parts"])})
    for c in contents:
        if isinstance(c, dict):
            role = "assistant" if c.get("role") == "model" else "user"
            out.append({"role": role, "content": _parts_text(c.get("parts") or [])})
    return out


def _parts_text(parts: list[Any]) -> str:
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _as_openai_file(content: bytes) -> bytes:
    """A Gemini training file as OpenAI chat lines (for bot.sandbox.learned.lessons_of)."""
    lines = []
    for line in content.splitlines():
        try:
            ex = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(ex, dict) and isinstance(ex.get("contents"), list):
            lines.append(json.dumps({"messages": _as_messages(ex.get("systemInstruction"), ex["contents"])}).encode())
    return b"\n".join(lines)
