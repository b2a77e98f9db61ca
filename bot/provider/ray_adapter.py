"""A team's own Ray cluster behind ftbot's Provider interface: the only module that imports `ray`.

How ftbot's notions map onto Ray's Jobs API (`ray.job_submission.JobSubmissionClient`, HTTP to the
cluster's dashboard at RAY_ADDRESS):

- Files: datasets live in FTBOT_RAY_STORAGE (a folder every node sees, or s3:// / gs:// through
  fsspec) as `datasets/file-<sha256 prefix>.jsonl` with a small JSON note beside it (name, size,
  time). The id is derived from the content, so uploading the same bytes again reuses the file.
- Jobs: a job is a Ray job whose entrypoint is FTBOT_RAY_ENTRYPOINT with its placeholders filled
  (each value shell-quoted). Its submission id is ftbot's idempotency key: Ray refuses a second
  submission with the same id, so a redelivered start makes one job. ftbot's own facts (model, files,
  hyperparameters, output folder) ride in the job's metadata; jobs without them (the cluster's other
  work) are not listed.
- Statuses: PENDING -> queued, RUNNING -> running, SUCCEEDED -> succeeded, FAILED -> failed,
  STOPPED -> cancelled; a stop asked for and not yet done shows as cancelling; anything else stays
  text. Ray's own word is kept in `Job.metadata["ray_status"]`.
- No pause or resume (ProviderUnsupported): Ray can only stop a job.
- Events and metrics come from the job's log (bot/provider/ray_logs.py); checkpoints are the output
  folder's `checkpoint-<step>` folders; the fine-tuned model is the output folder (vLLM serves a
  model under the path it was loaded from, so the same name works for `/ft try` through
  FTBOT_RAY_INFERENCE_URL).
- A failed job's error is Ray's reason with the trainer's last log lines.
- A cluster that does not answer (refused, timed out, 5xx) is ProviderUnavailable: the poller backs off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shlex
import string
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import openai
import requests
from ray.job_submission import JobStatus as RayStatus
from ray.job_submission import JobSubmissionClient

from bot import clock
from bot.provider import ray_logs
from bot.provider.base import (
    ChatReply,
    Checkpoint,
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
    ProviderTimedOut,
    ProviderUnavailable,
    ProviderUnsupported,
    StartUnconfirmed,
    WebhookEvent,
    WebhookRejected,
)
from bot.provider.chat_reply import chat_reply, request_options
from bot.provider.ray_defaults import DEFAULT_MODEL, DEFAULTS

log = logging.getLogger(__name__)

NAME = "Ray"
MAX_SUFFIX = 64
PLACEHOLDERS = ("train", "validation", "model", "epochs", "lr", "batch", "output", "seed", "suffix")
REQUIRED_PLACEHOLDERS = ("train", "output")
DEFAULT_SEED = 42
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate")
STATUS_MAP = {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "cancelled"}
FINAL_RAW = {"SUCCEEDED", "FAILED", "STOPPED"}
MARK = "ftbot"
ERROR_TAIL_LINES = 12
PAUSE_REASON = f"{NAME} cannot pause a job; cancel it and start a new one (the trainer can resume from its last checkpoint-<step> folder)."
RESUME_REASON = f"{NAME} cannot pause or resume a job; start a new one from the cancelled job's last checkpoint."
NO_INFERENCE = (
    "FTBOT_RAY_INFERENCE_URL is not set, so ftbot has nowhere to ask `{model}`. Serve the trained model "
    "with an OpenAI-compatible server (vLLM: `vllm serve <output folder>`) and set FTBOT_RAY_INFERENCE_URL to its /v1 URL."
)
HTTP_TIMEOUT = 30.0
MAX_CURSORS = 2000


class EntrypointError(ValueError):
    """FTBOT_RAY_ENTRYPOINT cannot be filled (an unknown placeholder, a missing one, bad braces)."""


def check_entrypoint(template: str) -> None:
    """Refuse a template ftbot cannot fill, naming what is wrong (called at start-up)."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise EntrypointError(f"has unbalanced braces ({exc}); write a literal brace as {{{{ or }}}}") from None
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        raise EntrypointError(f"has unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    missing = [p for p in REQUIRED_PLACEHOLDERS if p not in names]
    if missing:
        raise EntrypointError(f"must contain {' and '.join('{' + p + '}' for p in missing)} (where the data is and where the model goes)")


def fill_entrypoint(template: str, values: Mapping[str, Any]) -> str:
    """The command with every placeholder replaced by its shell-quoted value ('' when absent)."""
    check_entrypoint(template)
    return template.format_map({k: shlex.quote("" if values.get(k) is None else str(values[k])) for k in PLACEHOLDERS})


class _Client(JobSubmissionClient):
    """The SDK's client sends its requests without a timeout; a cluster that hangs must not hang the
    poller's threads, so every request gets one."""

    def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super()._do_request(method, endpoint, **kwargs)


def _reason(exc: BaseException) -> str:
    """The useful part of the SDK's error text (it embeds the server's whole traceback)."""
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "."]
    for ln in reversed(lines):
        if ln.startswith(("ValueError:", "TypeError:", "RuntimeError:")):
            return ln.split(":", 1)[1].strip()[:300]
    return (lines[-1] if lines else text)[:300]


@contextlib.contextmanager
def translate_errors(what: str, address: str) -> Iterator[None]:
    try:
        yield
    except (requests.exceptions.ConnectionError, ConnectionError) as exc:
        raise ProviderUnavailable(f"the Ray cluster at {address} does not answer, try again in a minute") from exc
    except requests.exceptions.Timeout as exc:
        raise ProviderTimedOut(f"the Ray cluster at {address} did not answer in time ({what})") from exc
    except RuntimeError as exc:
        text = str(exc)
        if "status code 404" in text:
            raise ProviderNotFound(f"{NAME} has no such {what}", status=404) from exc
        if "status code 401" in text or "status code 403" in text or "authenticat" in text.lower():
            raise ProviderAuthError(f"the Ray cluster at {address} refused us: {_reason(exc)}", status=401) from exc
        if "status code 400" in text:
            raise ProviderInvalidRequest(f"{NAME} refused: {_reason(exc)}", status=400) from exc
        if "status code 5" in text:
            raise ProviderUnavailable(f"the Ray cluster is having trouble ({_reason(exc)}), try again in a minute", status=500) from exc
        raise ProviderError(f"{NAME}: {_reason(exc)}") from exc


def map_status(raw: Any) -> str:
    raw = str(getattr(raw, "value", raw) or "")
    return STATUS_MAP.get(raw, raw.lower())


def _error_message(message: str | None, exit_code: int | None) -> str:
    """Ray's reason for a failure, its log tail cut to the trainer's last lines."""
    message = message or ""
    head, sep, tail = message.partition(":\n")
    if sep and "last available logs" in head:
        lines = [ln for ln in tail.splitlines() if ln.strip()][-ERROR_TAIL_LINES:]
        code = f" with exit code {exit_code}" if exit_code is not None else ""
        return f"The trainer stopped{code}. Its last log lines:\n" + "\n".join(lines)
    return message or f"{NAME} reports the job failed."


class RayProvider:
    """Provider over `ray.job_submission.JobSubmissionClient`, storage through fsspec."""

    name = "ray"
    max_suffix_length = MAX_SUFFIX
    default_model = DEFAULT_MODEL

    def __init__(
        self,
        address: str,
        *,
        entrypoint: str,
        storage: str,
        runtime_env: Mapping[str, Any] | None = None,
        num_gpus: float | None = None,
        num_cpus: float | None = None,
        inference_url: str | None = None,
        inference_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        check_entrypoint(entrypoint)
        self.address = address.rstrip("/")
        self.entrypoint = entrypoint
        self.storage = storage.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.storage)
        self.runtime_env = dict(runtime_env or {})
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.inference_url = inference_url
        self.inference_key = inference_key
        self._inference: openai.OpenAI | None = None
        self.timeout = timeout
        self.max_retries = max_retries
        self._client_obj: JobSubmissionClient | None = None
        self._lock = threading.Lock()
        # job id -> (last event id handed out, next log line to read, parser state): each line is
        # parsed once while this process lives; a fresh one rebuilds the state from the log.
        self._cursors: dict[str, tuple[str | None, int, ray_logs.LogState]] = {}

    # ---- plumbing -----------------------------------------------------------------------------

    def _client(self) -> JobSubmissionClient:
        # Made on first use: the constructor already talks to the cluster (a version check), and a
        # cluster that is down at start-up must not stop ftbot from starting.
        with self._lock:
            if self._client_obj is None:
                with translate_errors("cluster", self.address):
                    self._client_obj = _Client(self.address)
            return self._client_obj

    def _uri(self, path: str) -> str:
        """A storage path as the trainer must be given it (with its scheme for object stores)."""
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else set(self.fs.protocol)
        return path if protocols & {"file", "local"} else self.fs.unstrip_protocol(path)

    def _dataset_path(self, file_id: str) -> str:
        return f"{self.root}/datasets/{file_id}.jsonl"

    def _note_path(self, file_id: str) -> str:
        return f"{self.root}/datasets/{file_id}.json"

    def output_path(self, job_id: str) -> str:
        return f"{self.root}/outputs/{job_id}"

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        return {"pause": PAUSE_REASON, "resume": RESUME_REASON}.get(action)

    # ---- files --------------------------------------------------------------------------------

    def upload_file(self, data: BinaryIO | bytes | Path, filename: str, *, purpose: str = "fine-tune") -> ProviderFile:
        # Hash while spooling to a local file, so a large dataset is never whole in memory.
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(prefix="ftbot-ray-", suffix=".jsonl") as tmp:
            src = data.open("rb") if isinstance(data, Path) else None
            try:
                if isinstance(data, bytes | bytearray):
                    chunks: Any = [bytes(data)]
                else:
                    reader = src or data
                    chunks = iter(lambda: reader.read(1 << 20), b"")  # type: ignore[union-attr]
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    tmp.write(chunk)
            finally:
                if src is not None:
                    src.close()
            tmp.flush()
            file_id = "file-" + digest.hexdigest()[:32]
            with self._storage_errors():
                if self.fs.exists(self._note_path(file_id)) and self.fs.exists(self._dataset_path(file_id)):
                    return self.get_file(file_id)  # the same bytes are there already
                self.fs.makedirs(f"{self.root}/datasets", exist_ok=True)
                self.fs.put_file(tmp.name, self._dataset_path(file_id))
                note = {"id": file_id, "filename": Path(filename).name, "bytes": size, "purpose": purpose, "created_at": int(clock.timestamp()), "sha256": digest.hexdigest()}
                self.fs.pipe_file(self._note_path(file_id), json.dumps(note).encode())
        return self._file(note)

    @contextlib.contextmanager
    def _storage_errors(self) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise ProviderNotFound(f"FTBOT_RAY_STORAGE has no {Path(str(exc.filename or exc)).name}", status=404) from exc
        except PermissionError as exc:
            raise ProviderError(f"FTBOT_RAY_STORAGE ({self.storage}) refused access: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise ProviderUnavailable(f"FTBOT_RAY_STORAGE ({self.storage}) failed: {exc}") from exc

    @staticmethod
    def _file(note: Mapping[str, Any]) -> ProviderFile:
        return ProviderFile(id=note["id"], filename=note.get("filename", ""), bytes=int(note.get("bytes", 0)), purpose=note.get("purpose", "fine-tune"), created_at=int(note.get("created_at", 0)), status="processed")

    def list_files(self, *, purpose: str | None = None, limit: int = 100) -> list[ProviderFile]:
        with self._storage_errors():
            if not self.fs.exists(f"{self.root}/datasets"):
                return []
            notes = [json.loads(self.fs.cat_file(p)) for p in self.fs.glob(f"{self.root}/datasets/file-*.json")]
        files = sorted((self._file(n) for n in notes), key=lambda f: f.created_at, reverse=True)
        if purpose:
            files = [f for f in files if f.purpose == purpose]
        return files[:limit]

    def get_file(self, file_id: str) -> ProviderFile:
        if not file_id.startswith("file-") or "/" in file_id:
            raise ProviderNotFound(f"{NAME} has no file {file_id[:60]}", status=404)
        with self._storage_errors():
            try:
                return self._file(json.loads(self.fs.cat_file(self._note_path(file_id))))
            except FileNotFoundError:
                raise ProviderNotFound(f"FTBOT_RAY_STORAGE has no file {file_id}", status=404) from None

    def file_content(self, file_id: str) -> bytes:
        self.get_file(file_id)
        with self._storage_errors():
            return self.fs.cat_file(self._dataset_path(file_id))

    def download_file(self, file_id: str, dest: Path) -> int:
        self.get_file(file_id)
        size = 0
        with self._storage_errors(), self.fs.open(self._dataset_path(file_id), "rb") as src, Path(dest).open("wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        return size

    def delete_file(self, file_id: str) -> bool:
        self.get_file(file_id)
        with self._storage_errors():
            self.fs.rm_file(self._dataset_path(file_id))
            self.fs.rm_file(self._note_path(file_id))
        return True

    # ---- jobs ---------------------------------------------------------------------------------

    def _values(self, spec: JobSpec, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(placeholder values, the hyperparameters used) for this spec, or ProviderInvalidRequest."""
        if spec.method != "supervised":
            raise ProviderInvalidRequest(f"{NAME} runs your FTBOT_RAY_ENTRYPOINT, which ftbot gives no training method: only supervised starts are sent, not {spec.method!r}.")
        if spec.suffix is not None and len(spec.suffix) > MAX_SUFFIX:
            raise ProviderInvalidRequest(f"{NAME} takes a suffix of at most {MAX_SUFFIX} characters.")
        unknown = sorted(set(spec.hyperparameters) - set(HYPERPARAMETERS))
        if unknown:
            raise ProviderInvalidRequest(f"{NAME} passes epochs, batch and lr to your entrypoint; it does not take {', '.join(unknown)}.")
        for fid in filter(None, (spec.training_file, spec.validation_file)):
            self.get_file(fid)  # a clear "no such file" now, not a crashed trainer later
        hyper = {**DEFAULTS, **spec.hyperparameters}
        values = {
            "train": self._uri(self._dataset_path(spec.training_file)),
            "validation": self._uri(self._dataset_path(spec.validation_file)) if spec.validation_file else None,
            "model": spec.model,
            "epochs": hyper["n_epochs"],
            "batch": hyper["batch_size"],
            "lr": hyper["learning_rate"],
            "output": self._uri(self.output_path(job_id)),
            "seed": spec.seed if spec.seed is not None else DEFAULT_SEED,
            "suffix": spec.suffix,
        }
        return values, hyper

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        job_id = idempotency_key or f"ftbot-{uuid.uuid4().hex[:20]}"
        values, hyper = self._values(spec, job_id)
        metadata = {
            MARK: "1",
            "model": spec.model,
            "training_file": spec.training_file,
            "validation_file": spec.validation_file or "",
            "suffix": spec.suffix or "",
            "seed": str(values["seed"]),
            "hyperparameters": json.dumps(hyper),
            "output": values["output"],
            **{f"user_{k}"[:60]: str(v)[:200] for k, v in spec.metadata.items()},
        }
        kwargs: dict[str, Any] = {
            "entrypoint": fill_entrypoint(self.entrypoint, values),
            "submission_id": job_id,
            "metadata": metadata,
            "runtime_env": self.runtime_env or None,
        }
        if self.num_gpus:
            kwargs["entrypoint_num_gpus"] = self.num_gpus
        if self.num_cpus:
            kwargs["entrypoint_num_cpus"] = self.num_cpus
        client = self._client()
        attempts = 1 + max(0, self.max_retries)
        for attempt in range(attempts):
            try:
                with translate_errors("job", self.address):
                    client.submit_job(**kwargs)
                return self.get_job(job_id)
            except ProviderInvalidRequest as exc:
                if "already exists" in exc.reason:
                    # The same start delivered again (or a retry after a lost answer): that job.
                    return self.get_job(job_id)
                raise
            except ProviderUnavailable as exc:
                # The submission may have reached the cluster before the answer was lost. Submitting
                # again is safe (Ray refuses a second job with this submission id), looking is cheaper.
                with contextlib.suppress(ProviderUnavailable):
                    existing = self.find_job_by_key(job_id)
                    if existing is not None:
                        return existing
                if attempt == attempts - 1:
                    if idempotency_key:
                        raise StartUnconfirmed(f"{NAME} did not confirm the job ({exc.reason}); it may have been made", status=exc.status) from exc
                    raise
                time.sleep(min(2.0, 0.5 * (attempt + 1)))
        raise AssertionError("unreachable")

    def estimate_price(self, spec: JobSpec) -> float | None:
        return None  # the team's own GPUs: ftbot has no price for them

    def find_job_by_key(self, idempotency_key: str) -> Job | None:
        try:
            return self.get_job(idempotency_key)
        except ProviderNotFound:
            return None

    def _job(self, d: Any) -> Job:
        raw = str(getattr(d.status, "value", d.status) or "")
        status = map_status(raw)
        meta = dict(d.metadata or {})
        try:
            hyper = json.loads(meta.get("hyperparameters") or "{}")
        except ValueError:
            hyper = {}
        error = None
        if raw == RayStatus.FAILED:
            error = JobError(code=str(d.error_type or "FAILED").lower(), message=_error_message(d.message, d.driver_exit_code))
        seed = meta.get("seed")
        job_id = d.submission_id or d.job_id or ""
        return Job(
            id=job_id,
            status=status,
            model=meta.get("model", ""),
            created_at=int((d.start_time or 0) / 1000),
            training_file=meta.get("training_file") or None,
            validation_file=meta.get("validation_file") or None,
            fine_tuned_model=self._uri(self.output_path(job_id)) if raw == RayStatus.SUCCEEDED else None,
            finished_at=int(d.end_time / 1000) if d.end_time and raw in FINAL_RAW else None,
            hyperparameters=hyper,
            suffix=meta.get("suffix") or None,
            seed=int(seed) if seed and seed.isdigit() else None,
            error=error,
            metadata={"ray_status": raw},
        )

    def list_jobs(self, *, limit: int = 20, after: str | None = None) -> JobPage:
        with translate_errors("job", self.address):
            details = self._client().list_jobs()
        ours = [d for d in details if (d.metadata or {}).get(MARK) == "1" and d.submission_id]
        ours.sort(key=lambda d: (d.start_time or 0, d.submission_id), reverse=True)
        jobs = [self._job(d) for d in ours]
        # Ray lists every job at once; `after` pages through it as OpenAI's cursor would.
        if after:
            ids = [j.id for j in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        return JobPage(jobs=jobs[:limit], has_more=len(jobs) > limit)

    def get_job(self, job_id: str) -> Job:
        with translate_errors("job", self.address):
            return self._job(self._client().get_job_info(job_id))

    def cancel_job(self, job_id: str) -> Job:
        with translate_errors("job", self.address):
            stopping = self._client().stop_job(job_id)
        job = self.get_job(job_id)
        if stopping and not job.is_final:
            # Ray stops the trainer asynchronously (SIGTERM, then SIGKILL): STOPPED follows.
            return Job(**{**{f: getattr(job, f) for f in job.__dataclass_fields__}, "status": "cancelling"})
        return job

    def pause_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(PAUSE_REASON)

    def resume_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(RESUME_REASON)

    # ---- events, metrics, checkpoints -------------------------------------------------------------

    def _log_lines(self, job_id: str) -> list[str]:
        with translate_errors("job", self.address):
            return ray_logs.complete_lines(self._client().get_job_logs(job_id))

    def _read(self, job_id: str, known_id: str | None) -> list[dict[str, Any]]:
        lines = self._log_lines(job_id)
        cached = self._cursors.get(job_id)
        if cached is not None and cached[0] == known_id and cached[1] <= len(lines):
            start, state = cached[1], cached[2]
        else:
            known_line = ray_logs.event_line(known_id)
            start = 0 if known_line is None else min(known_line + 1, len(lines))
            # Rebuild what the lines before `start` said (step, totals) without emitting them again.
            state = ray_logs.parse(lines[:start], 0, ray_logs.LogState(), emit=False).state
        parsed = ray_logs.parse(lines[start:], start, state)
        last = parsed.events[-1]["id"] if parsed.events else known_id
        self._cursors.pop(job_id, None)
        self._cursors[job_id] = (last, parsed.next_line, parsed.state)
        while len(self._cursors) > MAX_CURSORS:
            # Jobs not read for the longest time first (ended ones): a miss only means a re-parse.
            self._cursors.pop(next(iter(self._cursors)))
        return parsed.events

    @staticmethod
    def _event(e: Mapping[str, Any], at: int) -> JobEvent:
        return JobEvent(id=e["id"], created_at=at, level=e["level"], message=e["message"], type=e["type"], data=e["data"])

    def new_events(self, job_id: str, known_id: str | None, *, page_size: int = 100) -> list[JobEvent]:
        # Ray's job log has no time per line: a line is dated when ftbot first reads it.
        now = int(clock.timestamp())
        return [self._event(e, now) for e in self._read(job_id, known_id)]

    def list_events(self, job_id: str, *, limit: int = 20) -> list[JobEvent]:
        lines = self._log_lines(job_id)
        events = ray_logs.parse(lines, 0, ray_logs.LogState()).events
        now = int(clock.timestamp())
        return [self._event(e, now) for e in reversed(events)][:limit]

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        out = self.output_path(job_id)
        with self._storage_errors():
            if not self.fs.exists(out):
                return []
            entries = self.fs.ls(out, detail=True)
        found = []
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") != "directory" or not name.startswith("checkpoint-") or not name[11:].isdigit():
                continue
            created = entry.get("mtime") or entry.get("created") or 0
            if hasattr(created, "timestamp"):
                created = created.timestamp()
            found.append(Checkpoint(id=f"{job_id}:{name}", created_at=int(float(created or 0)), step_number=int(name[11:]), model=self._uri(f"{out}/{name}"), job_id=job_id))
        return sorted(found, key=lambda c: c.step_number)

    # ---- models -------------------------------------------------------------------------------

    def _trained(self) -> list[tuple[Model, str]]:
        """Each model with the submission id whose output folder it is. The id is the folder ftbot
        checked, never the job's metadata: any job on the cluster can claim ftbot=1 and any output."""
        with translate_errors("job", self.address):
            details = self._client().list_jobs()
        found = []
        for d in details:
            meta = d.metadata or {}
            if meta.get(MARK) != "1" or str(getattr(d.status, "value", d.status)) != RayStatus.SUCCEEDED:
                continue
            path = self.output_path(d.submission_id)
            with self._storage_errors():
                if not self.fs.exists(path):
                    continue
            found.append((Model(id=self._uri(path), created=int((d.end_time or 0) / 1000), owned_by="ray", fine_tuned=True), d.submission_id))
        return sorted(found, key=lambda m: m[0].created, reverse=True)

    def list_models(self) -> list[Model]:
        """Output folders of ftbot's jobs that succeeded and are still in the storage."""
        return [m for m, _ in self._trained()]

    def delete_model(self, model: str) -> bool:
        """Delete a trained model's output folder (checkpoints included) from the storage."""
        found = next((sid for m, sid in self._trained() if m.id == model), None)
        if found is None:
            raise ProviderNotFound(f"{NAME} has no trained model {model} in FTBOT_RAY_STORAGE", status=404)
        with self._storage_errors():
            self.fs.rm(self.output_path(found), recursive=True)
        return True

    def complete(self, model: str, prompt: str, *, max_tokens: int = 300) -> str:
        return self.chat(model, [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=None).content or ""

    def _inference_client(self) -> openai.OpenAI:
        """One client (and its connection pool) for every request: an evaluation asks hundreds."""
        if self._inference is None:
            self._inference = openai.OpenAI(base_url=self.inference_url, api_key=self.inference_key or "none", max_retries=self.max_retries, timeout=self.timeout)
        return self._inference

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
        if not self.inference_url:
            raise ProviderInvalidRequest(NO_INFERENCE.format(model=model))
        client = self._inference_client()
        where = f"the inference server at {self.inference_url}"
        try:
            resp = client.chat.completions.create(model=model, messages=[dict(m) for m in messages], max_tokens=max_tokens, **request_options(tools, temperature, seed))  # type: ignore[misc]
        except openai.APIConnectionError as exc:
            raise ProviderUnavailable(f"{where} does not answer, try again in a minute") from exc
        except openai.AuthenticationError as exc:
            raise ProviderAuthError(f"{where} refused the key (check FTBOT_RAY_INFERENCE_KEY)", status=401) from exc
        except openai.NotFoundError as exc:
            raise ProviderInvalidRequest(f"{where} does not serve `{model}`: load it there (vLLM: `vllm serve {model}`) and try again.", status=404) from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code == 429:
                raise ProviderUnavailable(f"{where} is having trouble ({exc.status_code}), try again in a minute", status=exc.status_code) from exc
            raise ProviderInvalidRequest(f"{where} refused: {str(exc.message)[:300]}", status=exc.status_code) from exc
        return chat_reply(resp)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent | None:
        raise WebhookRejected("Ray sends no webhooks")
