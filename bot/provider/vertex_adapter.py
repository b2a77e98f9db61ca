"""Gemini supervised tuning on Google Vertex AI behind ftbot's Provider interface.

The only module in ftbot that imports `google.genai` and `google.cloud.storage`. What differs from
OpenAI, and how it is bridged:

- Data lives in a Cloud Storage bucket (FTBOT_VERTEX_BUCKET), not behind a files API: a "file" is a
  `gs://` URI. An upload checks the whole file first (bot.datasets.gemini_format, every unusable line
  named), then streams it, converted from OpenAI's chat format to Gemini's when needed, into the
  bucket; nothing is uploaded from a file that cannot be used. The object's name carries the
  source's SHA-256, so uploading the same file twice writes one object.
- Ids: a job is known by the number at the end of its resource name
  (`projects/P/locations/L/tuningJobs/ID`; the full name is accepted too); a tuned model by its
  resource name `projects/P/locations/L/models/ID` (Vertex's `@version` dropped: deletion and the
  models list name the model without it). A tuned model answers from its endpoint: `chat` finds it.
- States: JOB_STATE_* map onto ftbot's statuses (bot.provider.vertex_models.STATE_MAP); Vertex's own
  state, the detail `tuning_job_state`, completed epochs and steps, dataset statistics, billable
  tokens, the experiment and the cost (or why it is unknown) are in `Job.metadata["vertex_…"]`.
- No events endpoint: events are made from what the job object says, each with an id that encodes
  its place in the job's life ("vx<phase><n>-<what>"), so `new_events` hands back exactly those past
  the last one the caller has, whatever a poll missed in between.
- No loss curve through this API: Vertex publishes the training loss and next-token accuracy in the
  Vertex AI Experiments run the job names (`experiment`), readable only through
  google-cloud-aiplatform's metadata/TensorBoard services, which ftbot does not use. The job says so
  (`metadata["vertex_metrics"]` and one event), rather than drawing nothing silently.
- No idempotency key: the key goes into the job's labels (hashed to fit a label's alphabet), and
  a creation whose answer was lost is found again by a labels filter before trying again.
- No pause or resume: those raise ProviderUnsupported.
- Price: Google publishes no per-token tuning price ftbot could read; the cost is unknown unless
  FTBOT_VERTEX_PRICE_PER_MTOK is set (then billable tokens x epochs x that price).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import httpx2
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import storage
from google.genai import Client, errors, types

from bot.datasets import gemini_format
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
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderUnsupported,
)
from bot.provider.vertex_models import (
    ADAPTER_SIZES,
    STATE_MAP,
    TUNABLE_MODELS,
    TUNING_JOB_STATE_TEXT,
    TUNING_JOB_STATES,
    TUNING_LOCATIONS,
    bucket_and_prefix,
)

log = logging.getLogger(__name__)
# google-genai marks tunings.tune() experimental with a warning on every call; the API it calls is GA.
warnings.filterwarnings("ignore", message="The SDK's tuning implementation is experimental")

NAME = "Vertex AI"
MAX_SUFFIX = 40
DEFAULT_MODEL = "gemini-3.5-flash"
KEY_LABEL = "ftbot_key"
SUFFIX_LABEL = "ftbot_suffix"
MANAGED_LABEL = "ftbot"
DATASETS_DIR = "datasets"
MAX_URI = 128  # the longest file id ftbot's tables store
UPLOAD_CHUNK = 8 * 1024 * 1024  # resumable upload chunk (a multiple of 256 KB)
RETRYABLE_STATUS = [408, 429, 500, 502, 503, 504]
# ftbot's start options -> the CreateTuningJobConfig field
HYPERPARAMETERS = {
    "n_epochs": "epoch_count",
    "epochs": "epoch_count",
    "learning_rate_multiplier": "learning_rate_multiplier",
    "lr": "learning_rate_multiplier",
    "adapter_size": "adapter_size",
    "adapter": "adapter_size",
}
PAUSE_REASON = f"{NAME} cannot pause a tuning job; cancel it and start a new one."
RESUME_REASON = f"{NAME} cannot pause or resume a tuning job; start a new one."
METRICS_UNAVAILABLE = (
    "Vertex AI publishes this job's training loss and accuracy in its Vertex AI Experiments run{where}, "
    "not through the tuning API ftbot reads: the card shows progress by epoch and step, without a loss chart."
)
PHASES = {state: 10 + 2 * i for i, state in enumerate(TUNING_JOB_STATES)}
# Dataset statistics show up once Vertex has processed the data (at the latest before tuning).
PHASE_DATASET = PHASES["TUNING_JOB_STATE_WAITING_FOR_CAPACITY"] + 1
PHASE_EPOCHS = PHASES["TUNING_JOB_STATE_TUNING"] + 1
PHASE_END = 30
# Events that may first show up after a later one has been handed out (they depend on statistics
# Vertex fills in when it likes): always handed back; the poller stores an event id once.
LATE_EVENTS = ("-dataset", "-metrics-unavailable")
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}


def _status_of(exc: errors.APIError) -> str:
    return str(getattr(exc, "status", "") or "")


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn the clients' exceptions into ours, with a reason a person can read."""
    try:
        yield
    except errors.APIError as exc:
        code = int(getattr(exc, "code", 0) or 0)
        message = str(getattr(exc, "message", "") or exc)[:500]
        if code == 401:
            raise ProviderAuthError(f"{NAME} rejected the credentials (check GOOGLE_APPLICATION_CREDENTIALS or the workload identity)", status=401) from exc
        if code == 403:
            raise ProviderPermissionError(f"{NAME} refused: {message} (the service account needs Vertex AI User)", status=403) from exc
        if code == 404:
            raise ProviderNotFound(f"{NAME} has no such {what}", status=404) from exc
        if code == 429:
            raise ProviderRateLimited(f"{NAME} is rate limiting us or the tuning quota is used up, try again in a minute", status=429) from exc
        if code >= 500:
            raise ProviderUnavailable(f"{NAME} is having trouble (server error), try again in a minute", status=code) from exc
        if code in {400, 409, 412}:
            raise ProviderInvalidRequest(f"{NAME} refused: {message}", code=_status_of(exc) or None, status=code) from exc
        raise ProviderError(f"{NAME} answered {code}: {message}", status=code) from exc
    except (httpx.TimeoutException, httpx2.TimeoutException) as exc:
        raise ProviderUnavailable(f"{NAME} did not answer in time ({what})") from exc
    except (httpx.TransportError, httpx2.TransportError) as exc:
        raise ProviderUnavailable(f"{NAME} is unreachable, try again in a minute") from exc
    except (auth_exc.DefaultCredentialsError, auth_exc.RefreshError) as exc:
        raise ProviderAuthError(f"{NAME}: no usable Google credentials ({str(exc)[:200]})") from exc


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    try:
        yield
    except gexc.NotFound as exc:
        raise ProviderNotFound(f"Cloud Storage has no such {what}", status=404) from exc
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise ProviderPermissionError(f"Cloud Storage refused ({what}): the service account needs Storage Object Admin on the bucket", status=403) from exc
    except gexc.TooManyRequests as exc:
        raise ProviderRateLimited("Cloud Storage is rate limiting us, try again in a minute", status=429) from exc
    except (gexc.ServerError, gexc.RetryError) as exc:
        raise ProviderUnavailable("Cloud Storage is having trouble, try again in a minute") from exc
    except gexc.GoogleAPICallError as exc:
        raise ProviderError(f"Cloud Storage refused ({what}): {str(exc)[:300]}") from exc
    except (auth_exc.DefaultCredentialsError, auth_exc.RefreshError) as exc:
        raise ProviderAuthError(f"Cloud Storage: no usable Google credentials ({str(exc)[:200]})") from exc
    except OSError as exc:  # requests' connection errors are OSErrors
        raise ProviderUnavailable(f"Cloud Storage is unreachable ({type(exc).__name__}), try again in a minute") from exc


def key_label(idempotency_key: str) -> str:
    """The idempotency key as a label value (labels take only lowercase letters, digits, _ and -)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def short_id(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _unix(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    return None


def _enum(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _label_safe(value: str) -> str | None:
    v = value.lower()
    return v if re.fullmatch(r"[a-z0-9_-]{1,64}", v) else None


class VertexProvider:
    """Provider over the official `google-genai` client (Vertex mode) and `google-cloud-storage`."""

    name = "vertex"
    max_suffix_length = MAX_SUFFIX
    default_model = DEFAULT_MODEL
    # Why a job here has no estimate without FTBOT_VERTEX_PRICE_PER_MTOK (the budget gate's note).
    unpriced = "Google publishes no per-token Gemini tuning price ftbot can read; FTBOT_VERTEX_PRICE_PER_MTOK sets one"

    def __init__(
        self,
        *,
        project: str,
        location: str,
        bucket: str,
        credentials: Any | None = None,
        sandbox_token: str | None = None,
        base_url: str | None = None,
        storage_endpoint: str | None = None,
        price_per_mtok: float | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
    ) -> None:
        if location not in TUNING_LOCATIONS:
            raise ValueError(f"location must be one of {', '.join(TUNING_LOCATIONS)}")
        self.project = project
        self.location = location
        self.bucket_name, self.prefix = bucket_and_prefix(bucket)
        self.price_per_mtok = price_per_mtok
        self.timeout = timeout
        self.max_retries = max_retries
        self.base_url = base_url
        if sandbox_token is not None:
            # A local stand-in: a fixed bearer token (google-auth cannot refresh it, nor needs to).
            from google.oauth2.credentials import Credentials

            credentials = Credentials(token=sandbox_token)
        self.credentials = credentials
        self._clients: dict[tuple[str, bool], Client] = {}
        self.client = self._client(location)
        if storage_endpoint:
            from google.auth.credentials import AnonymousCredentials

            self.storage = storage.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": storage_endpoint})
        else:
            self.storage = storage.Client(project=project, credentials=credentials)
        # tuned model resource name -> its endpoint (fixed once the model exists)
        self._endpoints: dict[str, str] = {}

    def _client(self, location: str, *, retries: bool = True) -> Client:
        key = (location, retries)
        if key not in self._clients:
            options = types.HttpOptions(
                timeout=int(self.timeout * 1000),
                retry_options=types.HttpRetryOptions(
                    attempts=(self.max_retries + 1) if retries else 1, initial_delay=0.5, max_delay=8.0,
                    http_status_codes=RETRYABLE_STATUS,
                ),
            )
            if self.base_url:
                options.base_url = self.base_url
            self._clients[key] = Client(vertexai=True, project=self.project, location=location, credentials=self.credentials, http_options=options)
        return self._clients[key]

    def steer_refusal(self, action: str, job: Job, trained_steps: int | None) -> str | None:
        return {"pause": PAUSE_REASON, "resume": RESUME_REASON}.get(action)

    # ---- files (objects in the bucket) ------------------------------------------------------

    def _object_name(self, filename: str, digest: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name) or "data.jsonl"
        if not safe.endswith(".jsonl"):
            safe += ".jsonl"
        parts = [p for p in (self.prefix, DATASETS_DIR, digest[:24]) if p]
        # ftbot stores a file id in 128 characters: the name is shortened (its hash keeps it unique).
        room = MAX_URI - len(self._uri("/".join(parts) + "/"))
        if len(safe) > room:
            safe = safe[: max(1, room - len(".jsonl"))] + ".jsonl"
        return "/".join([*parts, safe])

    def _uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{name}"

    def _blob_name(self, uri: str) -> str:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or bucket != self.bucket_name or not name:
            raise ProviderNotFound(f"{uri[:200]} is not an object in ftbot's bucket gs://{self.bucket_name}")
        return name

    def upload_file(self, data: BinaryIO | bytes | Path, filename: str, *, purpose: str = "fine-tune", validation: bool = False) -> ProviderFile:
        with tempfile.TemporaryDirectory(prefix="ftbot-vertex-") as tmp:
            path = Path(tmp) / "source.jsonl"
            if isinstance(data, Path):
                path = data
            elif isinstance(data, bytes | bytearray):
                path.write_bytes(data)
            else:
                with path.open("wb") as out:
                    while chunk := data.read(1 << 20):
                        out.write(chunk)
            checked = gemini_format.check(path, validation=validation)
            if not checked.ok:
                raise ProviderInvalidRequest(f"{filename} cannot be used for Gemini tuning: " + "; ".join(
                    (f"line {p.line}: {p.reason}" if p.line else p.reason) for p in checked.problems[:10]
                ) + (f" (and {checked.problem_count - 10} more)" if checked.problem_count > 10 else ""))
            digest = _sha256(path)
            name = self._object_name(filename, digest)
            blob = self.storage.bucket(self.bucket_name).blob(name)
            blob.metadata = {"ftbot_source": Path(filename).name[:200], "ftbot_format": checked.format or ""}
            with storage_errors("bucket"):
                with blob.open("wb", chunk_size=UPLOAD_CHUNK, content_type="application/jsonl") as out:
                    written = gemini_format.write_converted(path, out)
        return ProviderFile(id=self._uri(name), filename=filename, bytes=written, purpose=purpose, created_at=int(time.time()), status="processed")

    def _file(self, blob: Any) -> ProviderFile:
        meta = blob.metadata or {}
        return ProviderFile(
            id=self._uri(blob.name),
            filename=meta.get("ftbot_source") or blob.name.rsplit("/", 1)[-1],
            bytes=int(blob.size or 0),
            purpose="fine-tune",
            created_at=_unix(blob.time_created) or 0,
            status="processed",
        )

    def list_files(self, *, purpose: str | None = None, limit: int = 100) -> list[ProviderFile]:
        prefix = "/".join(p for p in (self.prefix, DATASETS_DIR) if p) + "/"
        with storage_errors("bucket"):
            return [self._file(b) for b in self.storage.list_blobs(self.bucket_name, prefix=prefix, max_results=limit)]

    def get_file(self, file_id: str) -> ProviderFile:
        blob = self.storage.bucket(self.bucket_name).blob(self._blob_name(file_id))
        with storage_errors("file"):
            blob.reload()
        return self._file(blob)

    def file_content(self, file_id: str) -> bytes:
        with storage_errors("file"):
            return self.storage.bucket(self.bucket_name).blob(self._blob_name(file_id)).download_as_bytes()

    def download_file(self, file_id: str, dest: Path) -> int:
        with storage_errors("file"):
            self.storage.bucket(self.bucket_name).blob(self._blob_name(file_id)).download_to_filename(str(dest))
        return dest.stat().st_size

    def delete_file(self, file_id: str) -> bool:
        with storage_errors("file"):
            self.storage.bucket(self.bucket_name).blob(self._blob_name(file_id)).delete()
        return True

    # ---- jobs -------------------------------------------------------------------------------

    def _job_name(self, job_id: str) -> str:
        if job_id.startswith("projects/"):
            return job_id
        if not re.fullmatch(r"[0-9]{1,30}", job_id):
            raise ProviderNotFound(f"{NAME} has no tuning job {job_id[:80]!r} (a job id is a number)")
        return f"projects/{self.project}/locations/{self.location}/tuningJobs/{job_id}"

    def _config(self, spec: JobSpec, idempotency_key: str | None) -> dict[str, Any]:
        if spec.model not in TUNABLE_MODELS:
            raise ProviderInvalidRequest(f"{NAME} tunes {', '.join(TUNABLE_MODELS)}, not {spec.model!r}.")
        if spec.method != "supervised":
            raise ProviderInvalidRequest(f"{NAME} does supervised tuning of Gemini only, not {spec.method!r}.")
        for what, uri in (("training", spec.training_file), ("validation", spec.validation_file)):
            if uri is not None and not uri.startswith("gs://"):
                raise ProviderInvalidRequest(f"The {what} data must be a gs:// object (upload it through ftbot first), not {uri[:100]!r}.")
        if spec.seed is not None:
            raise ProviderInvalidRequest(f"{NAME}'s tuning takes no random seed: start it without seed=.")
        if spec.suffix is not None and len(spec.suffix) > MAX_SUFFIX:
            raise ProviderInvalidRequest(f"{NAME} takes a suffix of at most {MAX_SUFFIX} characters here.")
        config: dict[str, Any] = {}
        for key, value in spec.hyperparameters.items():
            if value is None or value == "auto":
                continue
            if key not in HYPERPARAMETERS:
                raise ProviderInvalidRequest(f"{NAME} does not take {key}; it takes epochs, lr (learning_rate_multiplier) and adapter (1, 2, 4, 8 or 16).")
            field = HYPERPARAMETERS[key]
            if field == "adapter_size":
                try:
                    size = int(value)
                except (TypeError, ValueError):
                    size = -1
                if size not in ADAPTER_SIZES:
                    raise ProviderInvalidRequest(f"adapter must be 1, 2, 4, 8 or 16, not {str(value)[:20]!r}.")
                config[field] = ADAPTER_SIZES[size]
            elif field == "epoch_count":
                try:
                    config[field] = int(value)
                except (TypeError, ValueError):
                    raise ProviderInvalidRequest(f"epochs must be a whole number, not {str(value)[:20]!r}.") from None
            else:
                try:
                    config[field] = float(value)
                except (TypeError, ValueError):
                    raise ProviderInvalidRequest(f"lr must be a number (a multiplier of Vertex's default), not {str(value)[:20]!r}.") from None
        labels = {MANAGED_LABEL: "1"}
        for k, v in spec.metadata.items():
            lk, lv = _label_safe(str(k)), _label_safe(str(v))
            if lk and lv and lk not in {KEY_LABEL, MANAGED_LABEL, SUFFIX_LABEL}:
                labels[lk] = lv
        if idempotency_key:
            labels[KEY_LABEL] = key_label(idempotency_key)
        if spec.suffix:
            safe = _label_safe(spec.suffix)
            if safe:
                labels[SUFFIX_LABEL] = safe
        config["labels"] = labels
        config["tuned_model_display_name"] = f"{spec.model}-{spec.suffix}" if spec.suffix else f"{spec.model}-ftbot"
        if spec.validation_file:
            config["validation_dataset"] = types.TuningValidationDataset(gcs_uri=spec.validation_file)
        return config

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None) -> Job:
        config = self._config(spec, idempotency_key)
        # Creating a job is not idempotent, so the client must not retry it blindly: a timeout may
        # hide a job that was made. Retry ourselves, looking the key up first.
        client = self._client(self.location, retries=False)
        attempts = 3
        for attempt in range(attempts):
            try:
                with translate_errors("tuning job"):
                    made = client.tunings.tune(
                        base_model=spec.model,
                        training_dataset=types.TuningDataset(gcs_uri=spec.training_file),
                        config=types.CreateTuningJobConfig(**config),
                    )
                return self._job(made)
            except (ProviderUnavailable, ProviderRateLimited):
                if attempt == attempts - 1:
                    raise
                if idempotency_key:
                    existing = self.find_job_by_key(idempotency_key)
                    if existing is not None:
                        return existing
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def find_job_by_key(self, idempotency_key: str) -> Job | None:
        wanted = key_label(idempotency_key)
        with translate_errors("tuning job"):
            for tj in self.client.tunings.list(config={"page_size": 10, "filter": f'labels.{KEY_LABEL}="{wanted}"'}):
                if (tj.labels or {}).get(KEY_LABEL) == wanted:
                    return self._job(tj)
        return None

    def list_jobs(self, *, limit: int = 20, after: str | None = None) -> JobPage:
        out: list[Job] = []
        seen_after = after is None
        with translate_errors("tuning job"):
            for tj in self.client.tunings.list(config={"page_size": min(100, limit + 1)}):
                jid = short_id(tj.name or "")
                if not seen_after:
                    seen_after = jid == after or tj.name == after
                    continue
                out.append(self._job(tj))
                if len(out) > limit:
                    break
        return JobPage(jobs=out[:limit], has_more=len(out) > limit)

    def _get(self, job_id: str) -> Any:
        with translate_errors("tuning job"):
            return self.client.tunings.get(name=self._job_name(job_id))

    def get_job(self, job_id: str) -> Job:
        return self._job(self._get(job_id))

    def cancel_job(self, job_id: str) -> Job:
        with translate_errors("tuning job"):
            self.client.tunings.cancel(name=self._job_name(job_id))
        return self.get_job(job_id)

    def pause_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(PAUSE_REASON)

    def resume_job(self, job_id: str) -> Job:
        raise ProviderUnsupported(RESUME_REASON)

    def estimate_price(self, spec: JobSpec) -> float | None:
        """USD at FTBOT_VERTEX_PRICE_PER_MTOK for the training file's approximate tokens x epochs;
        None when no price is set (Google publishes none ftbot could read: the cost is unknown)."""
        if self.price_per_mtok is None:
            return None
        epochs = int(spec.hyperparameters.get("n_epochs") or spec.hyperparameters.get("epochs") or 0)
        if epochs <= 0:
            return None  # Vertex picks the epochs itself: not known before the job runs
        with tempfile.TemporaryDirectory(prefix="ftbot-vertex-") as tmp:
            dest = Path(tmp) / "train.jsonl"
            self.download_file(spec.training_file, dest)
            tokens = gemini_format.check(dest).total_tokens
        return round(tokens * epochs * self.price_per_mtok / 1e6, 4)

    def _job(self, tj: Any) -> Job:
        state = _enum(tj.state)
        status = STATE_MAP.get(state, state.removeprefix("JOB_STATE_").lower() or "unknown")
        detail = _enum(tj.tuning_job_state)
        spec = tj.supervised_tuning_spec
        hp = getattr(spec, "hyper_parameters", None)
        hyper: dict[str, Any] = {}
        if hp is not None:
            if hp.epoch_count is not None:
                hyper["n_epochs"] = int(hp.epoch_count)
            if hp.learning_rate_multiplier is not None:
                hyper["learning_rate_multiplier"] = float(hp.learning_rate_multiplier)
            size = _enum(hp.adapter_size)
            inverse = {v: k for k, v in ADAPTER_SIZES.items()}
            if size in inverse:
                hyper["adapter_size"] = inverse[size]
        stats = getattr(getattr(tj, "tuning_data_stats", None), "supervised_tuning_data_stats", None)
        progress = tj.tuning_job_metadata
        labels = dict(tj.labels or {})
        meta: dict[str, str] = {"vertex_state": state, "vertex_job_name": tj.name or ""}
        if detail:
            meta["vertex_tuning_job_state"] = detail
            meta["vertex_progress"] = TUNING_JOB_STATE_TEXT.get(detail, detail)
        if progress is not None:
            if progress.completed_epoch_count is not None:
                meta["vertex_completed_epochs"] = str(progress.completed_epoch_count)
            if progress.completed_step_count is not None:
                meta["vertex_completed_steps"] = str(progress.completed_step_count)
        billable = None
        if stats is not None:
            for attr, key in (
                ("tuning_dataset_example_count", "vertex_dataset_examples"),
                ("total_billable_token_count", "vertex_billable_tokens"),
                ("tuning_step_count", "vertex_total_steps"),
                ("total_truncated_example_count", "vertex_truncated_examples"),
            ):
                value = getattr(stats, attr, None)
                if value is not None:
                    meta[key] = str(value)
            billable = stats.total_billable_token_count
        if tj.experiment:
            meta["vertex_experiment"] = tj.experiment
        if tj.gcs_metrics_uri:
            meta["vertex_gcs_metrics_uri"] = tj.gcs_metrics_uri
        meta["vertex_metrics"] = "unavailable: " + METRICS_UNAVAILABLE.format(where=f" ({tj.experiment})" if tj.experiment else "")
        epochs = hyper.get("n_epochs")
        trained = int(billable) * int(epochs) if billable is not None and epochs else None
        if trained is not None and self.price_per_mtok is not None:
            meta["vertex_cost"] = f"{trained * self.price_per_mtok / 1e6:.2f} USD ({trained:,} billable tokens x FTBOT_VERTEX_PRICE_PER_MTOK={self.price_per_mtok:g})"
        else:
            meta["vertex_cost"] = "unknown: Google publishes no per-token tuning price ftbot can read; set FTBOT_VERTEX_PRICE_PER_MTOK"
        if KEY_LABEL in labels:
            meta["vertex_key_label"] = labels[KEY_LABEL]
        tuned = tj.tuned_model
        fine_tuned = None
        if status == "succeeded" and tuned is not None and tuned.model:
            fine_tuned = tuned.model.split("@", 1)[0]
            meta["vertex_model_version"] = tuned.model
            if tuned.endpoint:
                meta["vertex_endpoint"] = tuned.endpoint
                self._endpoints[fine_tuned] = tuned.endpoint
        error = None
        if status == "failed":
            err = tj.error
            code = getattr(err, "code", None)
            error = JobError(code=str(code) if code is not None else state, message=(getattr(err, "message", None) or f"{NAME} reports {state}."))
        return Job(
            id=short_id(tj.name or ""),
            status=status,
            model=short_id(tj.base_model or "") if tj.base_model else "",
            created_at=_unix(tj.create_time) or 0,
            training_file=getattr(spec, "training_dataset_uri", None),
            validation_file=getattr(spec, "validation_dataset_uri", None),
            fine_tuned_model=fine_tuned,
            finished_at=_unix(tj.end_time) if status in {"succeeded", "failed", "cancelled"} else None,
            trained_tokens=trained if status == "succeeded" else None,
            method="supervised",
            hyperparameters=hyper,
            suffix=labels.get(SUFFIX_LABEL),
            error=error,
            metadata=meta,
        )

    # ---- events and checkpoints -------------------------------------------------------------

    def _events(self, tj: Any) -> list[JobEvent]:
        """The job's story so far, from the job object alone, oldest first."""
        job = self._job(tj)
        meta = job.metadata
        created = job.created_at
        updated = _unix(tj.update_time) or created
        out: list[JobEvent] = []

        def add(phase: int, n: int, what: str, at: int, message: str, level: str = "info", data: dict[str, Any] | None = None, type: str = "message") -> None:  # noqa: A002
            out.append(JobEvent(id=f"vx{phase:02d}{n:06d}-{what}", created_at=at, level=level, message=message, type=type, data=data))

        hp = job.hyperparameters
        add(0, 0, "created", created, f"Tuning job created: {job.model}, {hp.get('n_epochs', 'default')} epochs, adapter size {hp.get('adapter_size', 'default')}.")
        detail = meta.get("vertex_tuning_job_state")
        started = _unix(tj.start_time)
        if detail in PHASES:
            add(PHASES[detail], 0, detail.removeprefix("TUNING_JOB_STATE_").lower(), started if detail != TUNING_JOB_STATES[0] and started else updated, f"Vertex AI: {TUNING_JOB_STATE_TEXT[detail]}.")
        if "vertex_dataset_examples" in meta:
            add(PHASE_DATASET, 0, "dataset", started or updated, (
                f"Dataset processed: {meta['vertex_dataset_examples']} examples, {int(meta.get('vertex_billable_tokens', '0')):,} billable tokens an epoch, "
                f"{meta.get('vertex_total_steps', '?')} steps in all."
            ), data={"examples": int(meta["vertex_dataset_examples"]), "billable_tokens": int(meta.get("vertex_billable_tokens", "0"))})
            add(PHASE_EPOCHS, 0, "metrics-unavailable", started or updated, METRICS_UNAVAILABLE.format(where=f" ({tj.experiment})" if tj.experiment else ""))
        total = int(meta["vertex_total_steps"]) if meta.get("vertex_total_steps", "").isdigit() else None
        epochs = int(hp.get("n_epochs") or 0)
        done = int(meta.get("vertex_completed_epochs", "0") or 0)
        for e in range(1, min(done, epochs or done) + 1):
            step = total * e // epochs if total and epochs else None
            # A metrics event with a step and no loss: the card's progress moves, no loss is made up.
            add(PHASE_EPOCHS, e, "epoch", updated, f"Epoch {e}/{epochs or '?'} completed" + (f" (step {step}/{total})." if step else "."),
                data={"epoch": e, "step": step, "total_steps": total}, type="metrics" if step else "message")
        end = job.finished_at or updated
        if job.status == "succeeded":
            n = len(tj.tuned_model.checkpoints or []) if tj.tuned_model else 0
            add(PHASE_END, 0, "succeeded", end, f"Tuned model ready: {job.fine_tuned_model}, serving at {meta.get('vertex_endpoint', 'its endpoint')}; {n} checkpoint{'s' if n != 1 else ''} saved.")
        elif job.status == "failed":
            add(PHASE_END, 0, "failed", end, f"Tuning failed: {job.error.message if job.error else meta['vertex_state']}", level="error")
        elif job.status == "cancelled":
            add(PHASE_END, 0, "cancelled", end, "Tuning job cancelled.")
        return sorted(out, key=lambda e: e.id)

    def new_events(self, job_id: str, known_id: str | None, *, page_size: int = 100) -> list[JobEvent]:
        events = self._events(self._get(job_id))
        if known_id is None:
            return events
        # Ids sort in the order of the job's life: anything past the one the caller has is new.
        return [e for e in events if e.id > known_id or e.id.endswith(LATE_EVENTS)]

    def list_events(self, job_id: str, *, limit: int = 20) -> list[JobEvent]:
        return list(reversed(self._events(self._get(job_id))))[:limit]

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        tj = self._get(job_id)
        tuned = tj.tuned_model
        if tuned is None or not tuned.checkpoints:
            return []
        at = _unix(tj.end_time) or 0
        jid = short_id(tj.name or job_id)
        return [
            Checkpoint(
                id=f"{jid}:{c.checkpoint_id}",
                created_at=at,
                step_number=int(c.step or 0),
                model=c.endpoint or "",
                job_id=jid,
                label=f"Epoch {c.epoch}" if c.epoch is not None else None,
                adapter=True,
            )
            for c in tuned.checkpoints
        ]

    # ---- models -----------------------------------------------------------------------------

    def _model_name(self, model: str) -> str:
        model = model.split("@", 1)[0]
        if model.startswith("projects/"):
            return model
        if re.fullmatch(r"[0-9]{1,30}", model):
            return f"projects/{self.project}/locations/{self.location}/models/{model}"
        raise ProviderNotFound(f"{NAME} has no tuned model {model[:80]!r} (give its resource name, projects/…/models/ID)")

    def list_models(self) -> list[Model]:
        with translate_errors("model"):
            return [
                Model(id=(m.name or "").split("@", 1)[0], created=0, owned_by=self.project, fine_tuned=True)
                for m in self.client.models.list(config={"query_base": False})
            ]

    def delete_model(self, model: str) -> bool:
        name = self._model_name(model)
        with translate_errors("model"):
            self.client.models.delete(model=name)
        self._endpoints.pop(name, None)
        return True

    def _endpoint_for(self, model: str) -> str:
        """What answers for `model`: an endpoint as it is, a tuned model's endpoint, or the base model."""
        if "/endpoints/" in model:
            return model
        if not model.startswith("projects/"):
            return model  # a base model such as gemini-3.5-flash (the publisher's model)
        name = model.split("@", 1)[0]
        if name not in self._endpoints:
            with translate_errors("model"):
                for tj in self.client.tunings.list(config={"page_size": 100}):
                    tuned = tj.tuned_model
                    if tuned is not None and tuned.model and tuned.endpoint:
                        self._endpoints[tuned.model.split("@", 1)[0]] = tuned.endpoint
                    if name in self._endpoints:
                        break
        if name not in self._endpoints:
            raise ProviderNotFound(f"{NAME} has no endpoint serving {name}", status=404)
        return self._endpoints[name]

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
        if tools:
            raise ProviderInvalidRequest(f"ftbot does not send tool declarations to Gemini on {NAME} yet: ask without tools.")
        system, contents = _gemini_messages(messages)
        target = self._endpoint_for(model)
        located = re.match(r"projects/[^/]+/locations/([^/]+)/", target)
        client = self._client(located.group(1) if located else self.location)
        config = types.GenerateContentConfig(max_output_tokens=max_tokens, temperature=temperature, seed=seed, system_instruction=system or None)
        with translate_errors("model"):
            resp = client.models.generate_content(model=target, contents=contents, config=config)
        candidate = (resp.candidates or [None])[0]
        text = None
        if candidate is not None and candidate.content is not None:
            text = "".join(p.text or "" for p in candidate.content.parts or [] if getattr(p, "text", None)) or None
        usage = resp.usage_metadata
        reason = _enum(candidate.finish_reason) if candidate is not None else ""
        return ChatReply(
            content=text,
            prompt_tokens=getattr(usage, "prompt_token_count", None),
            completion_tokens=getattr(usage, "candidates_token_count", None),
            finish_reason=FINISH_REASONS.get(reason, reason.lower() or None),
        )


def _gemini_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[Any]]:
    """OpenAI chat messages as Gemini's system instruction and turns."""
    system: list[str] = []
    contents: list[Any] = []
    for m in messages:
        role = m.get("role")
        content = m.get("content")
        text = content if isinstance(content, str) else "".join(
            p.get("text", "") for p in content or [] if isinstance(p, Mapping) and p.get("type") == "text"
        )
        if role in {"system", "developer"}:
            system.append(text)
        elif role in {"user", "assistant"}:
            contents.append(types.Content(role="model" if role == "assistant" else "user", parts=[types.Part(text=text)]))
        else:
            raise ProviderInvalidRequest(f"{NAME}: ftbot does not send {role!r} messages to Gemini (tool results are not converted).")
    if not contents:
        raise ProviderInvalidRequest(f"{NAME}: a request needs at least one user message.")
    return "\n\n".join(system), contents


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
