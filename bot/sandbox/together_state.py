"""Together AI's view of the sandbox: its files, fine-tunes, events, metrics and model registry.

The training itself is the OpenAI sandbox's simulation (bot.sandbox.state.SandboxState): each
Together fine-tune drives one simulated job there, and everything Together-shaped (statuses, event
types, the metrics rows, checkpoints, output names) is read off that simulation when asked for. So
both sandboxes train the same way, and a test can slow, speed up or break either through the same
controls.

Together-only behaviour simulated here: the two-step upload (a 302 to a storage URL, a PUT, then
`preprocess`), `cancel` answering `cancel_requested` with `cancelled` a moment later, the
compressing and uploading phases after training, an event list without ids or cursor, per-step
metrics from their own endpoint, a project-scoped model registry, and fine-tuned models that answer
at once when they are LoRA adapters on a serverless-LoRA base (bot/provider/together_models.py), else
only once deployed on a dedicated endpoint (a control route deploys one, optionally under an
endpoint name that then answers as the model).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot import clock
from bot.provider.together_models import serverless
from bot.sandbox.state import ApiError, SandboxState

ACCOUNT = "sandbox"
PROJECT_ID = "proj_sandbox"
ORGANIZATION_ID = "org_sandbox"
# name -> (default LoRA rank, supports full training, sandbox price in USD per million training tokens)
BASE_MODELS: dict[str, tuple[int, bool, float]] = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": (64, True, 0.48),
    "meta-llama/Llama-3.3-70B-Instruct-Reference": (64, False, 2.90),
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference": (64, False, 2.90),
    "Qwen/Qwen2.5-7B-Instruct": (64, True, 0.48),
    "Qwen/Qwen2.5-72B-Instruct": (64, False, 2.90),
    "openai/gpt-oss-20b": (16, False, 0.48),
}
MAX_SUFFIX = 40
FILE_TYPES = {"jsonl"}  # csv and parquet are accepted by Together, not simulated here


def iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class PendingUpload:
    fid: str
    filename: str
    purpose: str
    file_type: str
    checksum: str
    created: float


@dataclass
class TogetherJob:
    id: str
    sim_id: str
    created: float
    model: str
    lora: dict[str, Any] | None  # None: full training
    method: dict[str, Any]
    n_epochs: int
    batch_size: int | str
    learning_rate: float
    suffix: str | None
    seed: int | None
    output_name: str
    n_checkpoints: int
    n_evals: int = 0
    cancel_requested_at: float | None = None
    status_override: str | None = None  # test hook: a status this sandbox would never produce itself
    extra_events: list[dict[str, Any]] = field(default_factory=list)
    model_registered: bool = False
    trained_at: float | None = None  # when training was first seen finished: compressing starts then


class TogetherWorld:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.reset()

    def reset(self) -> None:
        with self.state.lock:
            self.files: dict[str, dict[str, Any]] = {}
            self.pending: dict[str, PendingUpload] = {}  # storage token -> upload waiting for its PUT
            self.jobs: dict[str, TogetherJob] = {}
            self.models: dict[str, dict[str, Any]] = {}  # registry id -> model
            self.deployed: set[str] = set()  # model names with a dedicated endpoint
            self.endpoints: dict[str, str] = {}  # dedicated endpoint name -> the model it serves

    @property
    def timing(self):  # noqa: ANN201
        return self.state.timing

    # ---- files ------------------------------------------------------------------------------

    def start_upload(self, form: dict[str, str]) -> tuple[str, str]:
        """The first step: returns (file id, storage token). The bytes come by PUT to the token."""
        for key in ("purpose", "file_name", "file_type"):
            if not form.get(key):
                raise ApiError(400, f"Missing required form field: {key!r}", param=key)
        if form["purpose"] not in {"fine-tune", "eval", "batch-api", "calibration"}:
            raise ApiError(400, f"Invalid purpose: {form['purpose']!r}", param="purpose")
        if form["file_type"] not in FILE_TYPES:
            raise ApiError(400, f"The sandbox stores jsonl files only, not {form['file_type']!r}", param="file_type")
        fid = f"file-{uuid.uuid4()}"
        token = secrets.token_urlsafe(16)
        with self.state.lock:
            self.pending[token] = PendingUpload(
                fid, form["file_name"], form["purpose"], form["file_type"], form.get("checksum", ""), clock.timestamp()
            )
        return fid, token

    def put_content(self, token: str, content: bytes) -> None:
        with self.state.lock:
            up = self.pending.pop(token, None)
        if up is None:
            raise ApiError(404, "No upload is waiting at this URL (it was used already or never issued)")
        if up.checksum and hashlib.sha256(content).hexdigest() != up.checksum:
            raise ApiError(400, "The uploaded bytes do not match the checksum given when the upload began")
        filename = up.filename if up.filename.endswith(".jsonl") else up.filename + ".jsonl"
        with self.state.lock:
            self.state.add_file(filename, content, "fine-tune", fid=up.fid)
            self.files[up.fid] = {
                "id": up.fid,
                "object": "file",
                "bytes": len(content),
                "created_at": int(clock.timestamp()),
                "filename": up.filename,
                "FileType": up.file_type,
                "purpose": up.purpose,
                "processing_status": "PENDING",
            }

    def preprocess(self, fid: str) -> dict[str, Any]:
        with self.state.lock:
            f = self.get_file(fid)
            content = self.state.file_content.get(fid, b"")
            lines = [ln for ln in content.decode("utf-8", "replace").splitlines() if ln.strip()]
            valid = all(_is_json_object(ln) for ln in lines) and bool(lines)
            f["processing_status"] = "COMPLETED" if valid else "INVALID_FORMAT"
            f["validation_report"] = {"valid": valid, "file_id": fid, "nlines": len(lines)}
            if not valid:
                f["validation_report"].update(error_type="INVALID_FORMAT", error="every line must be a JSON object")
            return dict(f)

    def get_file(self, fid: str) -> dict[str, Any]:
        with self.state.lock:
            if fid not in self.files:
                raise ApiError(404, f"File {fid} not found", code="file_not_found")
            return self.files[fid]

    def list_files(self) -> dict[str, Any]:
        with self.state.lock:
            return {"data": [dict(f) for f in self.files.values()]}

    def file_content(self, fid: str) -> bytes:
        with self.state.lock:
            self.get_file(fid)
            return self.state.file_content.get(fid, b"")

    def delete_file(self, fid: str) -> dict[str, Any]:
        with self.state.lock:
            self.get_file(fid)
            del self.files[fid]
            self.state.delete_file(fid)
        return {"id": fid, "deleted": True}

    # ---- limits and prices ------------------------------------------------------------------

    def limits(self, model: str) -> dict[str, Any]:
        if model not in BASE_MODELS:
            raise ApiError(404, f"Model {model} is not available for fine-tuning", code="model_not_found")
        rank, full, _ = BASE_MODELS[model]
        out: dict[str, Any] = {
            "model_name": model,
            "default_gradient_accumulation_steps": 1,
            "lora_training": {
                "default_rank": rank, "max_rank": rank, "max_batch_size": 128, "max_batch_size_dpo": 64,
                "min_batch_size": 1, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            },
            "max_learning_rate": 1.0, "min_learning_rate": 1e-8, "max_num_checkpoints": 10,
            "max_num_epochs": 20, "max_num_evals": 100, "max_seq_length_sft": 131072,
            "max_seq_length_dpo": 65536, "min_max_seq_length": 1024, "merge_output_lora": True,
            "supports_full_training": full, "supports_reasoning": False, "supports_tools": True,
            "supports_vision": False,
        }
        if full:
            out["full_training"] = {"max_batch_size": 96, "max_batch_size_dpo": 48, "min_batch_size": 8}
        return out

    def estimate_price(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model") or ""
        tf = body.get("training_file") or ""
        with self.state.lock:
            content = self.state.file_content.get(tf)
        if content is None:
            return {"estimation_available": False, "unavailable_reason": "train_file_not_validated"}
        tokens = max(1, len(content) // 4) * int(body.get("n_epochs") or 1)
        per_million = BASE_MODELS.get(model, (0, False, 0.48))[2]
        if (body.get("training_type") or {}).get("type") == "Full":
            per_million *= 2
        return {
            "estimation_available": True, "allowed_to_proceed": True, "user_limit": 1000.0,
            "estimated_train_token_count": float(tokens), "estimated_eval_token_count": 0.0,
            "estimated_total_price": round(tokens * per_million / 1e6, 6),
        }

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model")
        if not model:
            raise ApiError(400, "model is required (or from_checkpoint)", param="model")
        if model not in BASE_MODELS:
            raise ApiError(400, f"Model {model} is not available for fine-tuning", param="model", code="model_not_available")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > MAX_SUFFIX):
            raise ApiError(400, f"suffix must be at most {MAX_SUFFIX} characters", param="suffix")
        tf = body.get("training_file") or ""
        with self.state.lock:
            tfile = self.files.get(tf)
        if tfile is None:
            raise ApiError(400, f"training_file {tf} not found", param="training_file", code="invalid_file")
        if tfile.get("processing_status") not in {"COMPLETED", None}:
            raise ApiError(400, f"training_file {tf} did not pass validation", param="training_file")
        vf = body.get("validation_file") or None
        if vf and vf not in self.files:
            raise ApiError(400, f"validation_file {vf} not found", param="validation_file", code="invalid_file")
        method = body.get("training_method") or {"method": "sft"}
        mname = method.get("method", "sft")
        if mname not in {"sft", "dpo"}:
            raise ApiError(400, f"training_method must be sft or dpo, not {mname!r}", param="training_method")
        ttype = body.get("training_type") or {"type": "Lora", "lora_r": BASE_MODELS[model][0], "lora_alpha": 2 * BASE_MODELS[model][0]}
        if ttype.get("type") == "Full" and not BASE_MODELS[model][1]:
            raise ApiError(400, f"Full training is not supported for {model}", param="training_type")
        lr = body.get("learning_rate", 1e-5)
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not 0 < lr <= 1:
            raise ApiError(400, "learning_rate must be a number in (0, 1]", param="learning_rate")
        n_epochs = body.get("n_epochs", 1)
        batch = body.get("batch_size", "max")
        hyper: dict[str, Any] = {"n_epochs": n_epochs, "batch_size": "auto" if batch in (None, "max") else batch}
        sim_method: dict[str, Any] = {"type": "supervised", "supervised": {"hyperparameters": hyper}}
        if mname == "dpo":
            if method.get("dpo_beta") is not None:
                hyper["beta"] = method["dpo_beta"]
            sim_method = {"type": "dpo", "dpo": {"hyperparameters": hyper}}
        sim_body = {"model": model, "training_file": tf, "validation_file": vf, "method": sim_method, "seed": body.get("random_seed")}
        sim = self.state.create_job(sim_body, base_models=BASE_MODELS)
        jid = f"ft-{uuid.uuid4()}"
        tag = hashlib.sha256(jid.encode()).hexdigest()[:8]
        name = f"{ACCOUNT}/{model.split('/')[-1]}" + (f"-{suffix}" if suffix else "") + f"-{tag}"
        resolved_method = dict(method)
        if mname == "sft":
            resolved_method.setdefault("train_on_inputs", "auto")
        job = TogetherJob(
            id=jid, sim_id=sim["id"], created=clock.timestamp(), model=model,
            lora=None if ttype.get("type") == "Full" else dict(ttype), method=resolved_method,
            n_epochs=int(n_epochs), batch_size=sim["method"][sim["method"]["type"]]["hyperparameters"]["batch_size"],
            learning_rate=float(lr), suffix=suffix, seed=sim["seed"], output_name=name,
            n_checkpoints=int(body.get("n_checkpoints") or 1), n_evals=int(body.get("n_evals") or 0),
        )
        with self.state.lock:
            self.jobs[jid] = job
            return self._view(job)

    def _job(self, jid: str) -> TogetherJob:
        job = self.jobs.get(jid)
        if job is None:
            raise ApiError(404, f"Fine-tune job {jid} not found", code="not_found")
        return job

    def _status(self, job: TogetherJob, sim: dict[str, Any], now: float) -> str:
        if job.status_override:
            return job.status_override
        s = sim["status"]
        if job.cancel_requested_at is not None and s not in {"succeeded", "failed", "cancelled"}:
            if now < job.cancel_requested_at + self.timing.queued_seconds:
                return "cancel_requested"
            self.state.cancel_job(job.sim_id)
            return "cancelled"
        if s == "validating_files":
            return "pending"
        if s in {"queued", "running"}:
            return s
        if s == "cancelled":
            return "cancelled"
        if s == "failed":
            code = (sim.get("error") or {}).get("code") or ""
            return "user_error" if code.startswith("invalid_") else "error"
        if s == "succeeded":
            # The simulation keeps whole seconds; the phases after it need finer time.
            if job.trained_at is None:
                job.trained_at = max(now, float(sim["finished_at"] or now))
            done = job.trained_at
            phase = self.timing.queued_seconds
            if now < done + phase:
                return "compressing"
            if now < done + 2 * phase:
                return "uploading"
            self._register_model(job, done + 2 * phase)
            return "completed"
        return s  # paused: only through the OpenAI face of a shared state

    def _register_model(self, job: TogetherJob, at: float) -> None:
        if job.model_registered:
            return
        job.model_registered = True
        mid = f"ml_{secrets.token_hex(10)}"
        self.models[mid] = {
            "id": mid, "name": job.output_name, "organizationId": ORGANIZATION_ID, "projectId": PROJECT_ID,
            "visibility": "VISIBILITY_PRIVATE", "description": f"Fine-tuned from {job.model} by {job.id}",
            "weights": {"type": "WEIGHTS_TYPE_ADAPTER" if job.lora else "WEIGHTS_TYPE_DEFAULT", "architecture": "LlamaForCausalLM"},
            "baseModel": f"projects/together/models/{job.model}", "baseModelId": job.model,
            "createTime": iso(at),
        }

    def _view(self, job: TogetherJob, *, truncated: bool = False) -> dict[str, Any]:
        now = clock.timestamp()
        sim = self.state.get_job(job.sim_id)
        status = self._status(job, sim, now)
        sj = self.state.jobs[job.sim_id]
        ttype = {"type": "Full"} if job.lora is None else job.lora
        updated = sim["finished_at"] or now
        obj: dict[str, Any] = {
            "id": job.id, "status": status, "created_at": iso(job.created), "updated_at": iso(updated),
            "started_at": iso(job.created), "user_id": "user_sandbox", "owner_address": "0xsandbox",
            "model": job.model, "model_output_name": job.output_name,
            "training_file": sim["training_file"], "validation_file": sim["validation_file"] or "",
            "n_epochs": job.n_epochs, "batch_size": job.batch_size, "learning_rate": job.learning_rate,
            "n_checkpoints": job.n_checkpoints, "n_evals": job.n_evals, "suffix": job.suffix, "random_seed": job.seed,
            "training_type": ttype, "training_method": job.method,
            "lr_scheduler": {"lr_scheduler_type": "cosine", "lr_scheduler_args": {"min_lr_ratio": 0.0, "num_cycles": 0.5}},
            "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 1.0, "packing": True,
            "token_count": sj.total_steps * 120 if status == "completed" else None,
            "total_price": None,
        }
        if not truncated:
            obj.update(
                total_steps=sj.total_steps, steps_completed=sj.step,
                epochs_completed=sj.step // max(1, sj.steps_per_epoch),
                model_object_name=job.output_name if status == "completed" else None,
                adapter_object_name=f"{job.output_name}-adapter" if status == "completed" and job.lora else None,
                trainingfile_numlines=sj.examples,
            )
            if status == "running":
                obj["progress"] = {"estimate_available": True, "seconds_remaining": int(max(0, (sim["estimated_finish"] or now) - now))}
        return obj

    def get_job(self, jid: str) -> dict[str, Any]:
        with self.state.lock:
            return self._view(self._job(jid))

    def list_jobs(self) -> dict[str, Any]:
        with self.state.lock:
            return {"data": [self._view(j, truncated=True) for j in reversed(list(self.jobs.values()))]}

    def cancel_job(self, jid: str) -> dict[str, Any]:
        with self.state.lock:
            job = self._job(jid)
            view = self._view(job)
            if view["status"] in {"completed", "cancelled", "error", "user_error", "compressing", "uploading"}:
                raise ApiError(400, f"Fine-tune job {jid} is {view['status']} and cannot be cancelled")
            if job.cancel_requested_at is None:
                job.cancel_requested_at = clock.timestamp()
                # In the simulation's own log, so it sorts before the job_stopped that follows.
                self.state._event(self.state.jobs[job.sim_id], job.cancel_requested_at, "Cancel requested by user")
            return self._view(job, truncated=True)

    def delete_job(self, jid: str) -> dict[str, Any]:
        with self.state.lock:
            self._job(jid)
            del self.jobs[jid]
        return {"message": f"Fine-tune job {jid} deleted"}

    # ---- events, metrics, checkpoints -------------------------------------------------------

    def events(self, jid: str) -> dict[str, Any]:
        with self.state.lock:
            job = self._job(jid)
            view = self._view(job)
            sj = self.state.jobs[job.sim_id]
            out = _translate(sj.events, sj, job)
            if view["status"] in {"compressing", "uploading", "completed"}:
                done = job.trained_at or clock.timestamp()
                phase = self.timing.queued_seconds
                out.append(_ev(done, "model_compressing", "Compressing output model"))
                if view["status"] != "compressing":
                    out.append(_ev(done + phase, "model_compression_complete", "Model compression complete"))
                    out.append(_ev(done + phase, "model_uploading", "Uploading output model"))
                if view["status"] == "completed":
                    out.append(_ev(done + 2 * phase, "model_upload_complete", f"Model upload complete: {job.output_name}", model_path=job.output_name))
                    out.append(_ev(done + 2 * phase, "job_complete", f"Fine-tuning job completed; your model is {job.output_name}"))
            out += job.extra_events
            out.sort(key=lambda e: e["_at"])  # stable: same-second events keep their order
            return {"data": [{k: v for k, v in e.items() if k != "_at"} for e in out]}

    def add_events(self, jid: str, *, message: str, count: int, type: str = "warning") -> None:
        """Test hook: identical events in the same second, which only their position tells apart."""
        with self.state.lock:
            job = self._job(jid)
            at = float(int(clock.timestamp()))
            for _ in range(count):
                job.extra_events.append(_ev(at, type, message, level="warning" if type == "warning" else "info"))

    def metrics(self, jid: str, *, step_from: int | None = None, step_to: int | None = None) -> dict[str, Any]:
        with self.state.lock:
            job = self._job(jid)
            self._view(job)
            sj = self.state.jobs[job.sim_id]
            at = {int(e["data"]["step"]): e["created_at"] for e in sj.events if e["type"] == "metrics"}
            rows = []
            for r in sj.metrics_rows:
                step = int(r["step"])
                if (step_from is not None and step < step_from) or (step_to is not None and step > step_to):
                    continue
                progress = step / max(1, sj.total_steps)
                row = {
                    "train/global_step": float(step), "train/loss": r["train_loss"],
                    "train/epoch": round(step / max(1, sj.steps_per_epoch), 4),
                    "train/learning_rate": job.learning_rate * 0.5 * (1 + math.cos(math.pi * progress)),
                    "timestamp": float(at.get(step, 0)),
                }
                if job.n_evals and r.get("valid_loss") is not None:  # Together evaluates only when asked
                    row["eval/loss"] = r["valid_loss"]
                rows.append(row)
            return {"metrics": rows}

    def checkpoints(self, jid: str) -> dict[str, Any]:
        """What Together lists: the intermediate checkpoints, then, once the model is shipped, the final
        ones at the shipped model's step: *Final Merged* (the merged model) and *Final Adapter* for a
        LoRA job, *Final* for full training. `checkpoint` is the download selector: "adapter" for a
        LoRA job's weights, "model" for a full model."""
        with self.state.lock:
            job = self._job(jid)
            view = self._view(job)
            sj = self.state.jobs[job.sim_id]
            data = []
            for c in sj.checkpoints:
                if c["step_number"] >= sj.total_steps:
                    continue  # the last step's weights are the final model, listed once shipped
                data.append({
                    "checkpoint_type": f"Intermediate (step {c['step_number']})",
                    "created_at": iso(c["created_at"]), "step": c["step_number"],
                    "path": f"s3://sandbox/{job.id}/checkpoint-{c['step_number']}",
                    "checkpoint": "adapter" if job.lora else "model",
                    "object_name": f"{job.output_name}-step-{c['step_number']}",
                })
            if view["status"] == "completed":
                at = iso((job.trained_at or clock.timestamp()) + 2 * self.timing.queued_seconds)
                finals = [("Final Merged", "model", job.output_name), ("Final Adapter", "adapter", f"{job.output_name}-adapter")] if job.lora else [("Final", "model", job.output_name)]
                for label, kind, name in finals:
                    data.append({
                        "checkpoint_type": label, "created_at": at, "step": sj.total_steps,
                        "path": f"s3://sandbox/{job.id}/{'adapter' if kind == 'adapter' else 'model'}",
                        "checkpoint": kind, "object_name": name,
                    })
            return {"data": data}

    def set_status(self, jid: str, status: str | None) -> None:
        with self.state.lock:
            self._job(jid).status_override = status

    # ---- models and chat --------------------------------------------------------------------

    def _project(self, project_id: str) -> None:
        if project_id != PROJECT_ID:
            raise ApiError(404, f"Project {project_id} not found", code="project_not_found")

    def list_models(self, project_id: str) -> dict[str, Any]:
        with self.state.lock:
            self._project(project_id)
            for j in list(self.jobs.values()):
                self._view(j)
            data = [{k: v for k, v in m.items() if not k.startswith("_")} for m in self.models.values()]
        return {"data": data, "next_cursor": None}

    def delete_model(self, project_id: str, mid: str) -> dict[str, Any]:
        with self.state.lock:
            self._project(project_id)
            if mid not in self.models:
                raise ApiError(404, f"Model {mid} not found", code="model_not_found")
            if self.models[mid]["name"] in self.deployed:
                raise ApiError(400, f"Model {self.models[mid]['name']} is in use by an active deployment; delete the endpoint first")
            del self.models[mid]
        return {}

    def deploy(self, name: str, deployed: bool = True, *, endpoint: str | None = None) -> None:
        with self.state.lock:
            if not any(m["name"] == name for m in self.models.values()):
                raise ApiError(404, f"Model {name} not found")
            (self.deployed.add if deployed else self.deployed.discard)(name)
            if endpoint and deployed:
                self.endpoints[endpoint] = name
            elif not deployed:
                self.endpoints = {e: m for e, m in self.endpoints.items() if m != name}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body.get("model") or ""
        with self.state.lock:
            # A dedicated endpoint's name asks the model it serves.
            model = self.endpoints.get(model, model)
            custom = any(m["name"] == model for m in self.models.values())
            deployed = model in self.deployed
            job = next((j for j in self.jobs.values() if j.output_name == model), None)
            # Together's serverless LoRA inference: an adapter on a listed base needs no endpoint.
            on_serverless = job is not None and serverless(job.model, lora=job.lora is not None)
        if model not in BASE_MODELS and not custom:
            raise ApiError(404, f"Unable to access model {model}. Please visit https://api.together.ai/models to view the list of supported models.", code="model_not_available")
        if custom and not deployed and not on_serverless:
            raise ApiError(
                400,
                f"Unable to access non-serverless model {model}. Please visit https://api.together.ai/models/{model} "
                "to create and start a new dedicated endpoint for the model.",
                code="model_not_available",
            )
        messages = body.get("messages") or []
        if not messages:
            raise ApiError(400, "messages must be a non-empty array", param="messages")
        from bot.sandbox import learned
        bad = learned.unknown_message_key(messages)
        if bad is not None:
            raise ApiError(400, f"Additional properties are not allowed ('{bad[1]}' was unexpected) - 'messages.{bad[0]}'", param=f"messages[{bad[0]}].{bad[1]}")

        with self.state.lock:
            self.state.memory.count(model, messages)
        if self.state.chat_reply is not None:
            prompt = learned._text(messages[-1].get("content")) if isinstance(messages[-1], dict) else ""
            choice = {"message": {"role": "assistant", "content": self.state.chat_reply.replace("{prompt}", prompt)}, "finish_reason": "stop"}
        else:
            choice = learned.reply(model, messages, self._lessons(model) if custom else None, self.state.memory.noise)
        return {
            "id": f"chat-{secrets.token_hex(8)}", "object": "chat.completion", "created": int(clock.timestamp()), "model": model,
            "choices": [{"index": 0, "message": choice["message"], "finish_reason": choice["finish_reason"]}],
            "usage": learned.usage(messages, choice["message"]),
        }

    def _lessons(self, model: str) -> dict[str, Any] | None:
        with self.state.lock:
            for job in self.jobs.values():
                if job.output_name == model:
                    tf = self.state.jobs[job.sim_id].obj.get("training_file")
                    return self.state.memory.of_file(tf, self.state.file_content.get(tf))
        return None


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _ev(at: float, type: str, message: str, *, level: str = "info", **extra: Any) -> dict[str, Any]:
    e = {"object": "fine-tune-event", "created_at": iso(at), "level": level, "message": message, "type": type, "_at": at}
    e.update({k: v for k, v in extra.items() if v is not None})
    return e


def _translate(sim_events: list[dict[str, Any]], sj: Any, job: TogetherJob) -> list[dict[str, Any]]:
    """The simulation's OpenAI-style messages as the events Together would have logged."""
    out: list[dict[str, Any]] = []
    for e in sim_events:
        at, msg = float(e["created_at"]), e["message"]
        if e["type"] == "metrics":
            continue  # Together reports these through the metrics endpoint, not as events
        if msg.startswith("Created fine-tuning job"):
            out.append(_ev(at, "job_pending", f"Fine tune request created: {job.id}"))
        elif msg.startswith("Files validated"):
            out.append(_ev(at, "training_data_download_complete", "Training data downloaded"))
            if sj.has_validation:
                out.append(_ev(at, "validation_data_download_complete", "Validation data downloaded"))
        elif msg.startswith("Training file validation failed"):
            out.append(_ev(at, "job_error", msg.replace("Training file validation failed", "Data validation failed"), level="error"))
        elif msg.startswith("Fine-tuning job started"):
            out.append(_ev(at, "job_start", "Job started"))
            out.append(_ev(at, "model_download_complete", f"Model {job.model} downloaded"))
            out.append(_ev(at, "training_start", "Training started", total_steps=sj.total_steps))
        elif msg.startswith("Checkpoint created at step"):
            step = int(msg.rsplit(" ", 1)[-1])
            if step % sj.steps_per_epoch == 0:
                out.append(_ev(at, "epoch_complete", f"Epoch {step // sj.steps_per_epoch} completed at step {step}", step=step, total_steps=sj.total_steps))
            out.append(_ev(at, "checkpoint_save", f"Checkpoint saved at step {step}", step=step, total_steps=sj.total_steps))
        elif msg.startswith("New fine-tuned model created"):
            out.append(_ev(at, "training_complete", "Training completed", total_steps=sj.total_steps))
        elif msg == "Cancel requested by user":
            out.append(_ev(at, "cancel_requested", msg))
        elif msg == "Fine-tuning job cancelled":
            out.append(_ev(at, "job_stopped", "Job stopped by user"))
        elif msg.startswith(("Validating training file", "The job has successfully")):
            continue
        else:
            out.append(_ev(at, "warning", msg, level="warning"))
    return out
