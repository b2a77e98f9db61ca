"""The sandbox's world: files, uploads, jobs moving through their lifecycle, models.

Jobs advance lazily from the clock (bot/clock.py) each time they are looked at, so the sandbox needs no
background thread and a paused job simply stops accumulating time. All objects are plain dicts in
the exact shape of OpenAI's API, so serving them is `json.dumps`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import secrets
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bot import clock
from bot.sandbox import checks
from bot.sandbox.billing import billed_tokens_per_epoch
from bot.sandbox.errors import ApiError

ORG = "org-sandbox"
BASE_MODELS = (
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-3.5-turbo-0125",
    "babbage-002",
    "davinci-002",
)
# What OpenAI's models list says today (`shutdown_date`, "YYYY-MM-DD", null when not announced):
# the reported 2027-01-14 for the GPT-4o and GPT-4.1 families, the October retirements. Fine-tuned
# models report their base's date, as they stop with it.
SHUTDOWN_DATES = {
    "gpt-4.1-2025-04-14": "2027-01-14",
    "gpt-4.1-mini-2025-04-14": "2027-01-14",
    "gpt-4.1-nano-2025-04-14": "2026-10-23",
    "gpt-4o-2024-08-06": "2027-01-14",
    "gpt-4o-mini-2024-07-18": "2027-01-14",
    "gpt-3.5-turbo-0125": "2026-10-23",
}
MAX_PART = 64 * 1024 * 1024
# OpenAI's API reference documents both for a paused job (its schema and the openai package list neither).
RESUMABLE = frozenset({"paused", "pausing"})
PHASE_STATUS = {"validating": "validating_files", "queued": "queued", "running": "running"}
UPLOAD_TTL = 3600


@dataclass
class Timing:
    """How fast simulated jobs move. Tests use tiny values; the demo and FTBOT_SANDBOX=1 larger ones."""

    validating_seconds: float = 1.0
    queued_seconds: float = 1.0
    step_seconds: float = 0.5
    # How many steps between validation-loss measurements (when a validation file is given).
    eval_every: int = 10


@dataclass
class Faults:
    """Injected trouble: a fraction of matching requests answer with an error or answer slowly."""

    rate: float = 0.0
    # "500"/"503"/...: that status; "429": rate limited with Retry-After; "slow": answer after
    # slow_seconds; "lost": do the work, then answer 500 (the answer to a POST lost on the way);
    # "drop": do the work, then close the connection without answering
    kinds: tuple[str, ...] = ("500",)
    path_contains: str | None = None
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    remaining: int | None = None  # stop after this many injected faults
    latency: float = 0.0  # added to every request (benchmarks)
    method: str | None = None  # only requests with this HTTP method (e.g. DELETE of a model, not its GET)
    path_exact: str | None = None  # only this path (a create, not the routes under it), with any /openai prefix removed


def _id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _now() -> float:
    # The sandbox dates its answers as OpenAI does, by the clock the app reads (bot/clock.py).
    return clock.timestamp()


@dataclass
class SimJob:
    obj: dict[str, Any]
    examples: int
    invalid_reason: str | None
    total_steps: int
    steps_per_epoch: int
    has_validation: bool
    rng: random.Random
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    phase: str = "validating"  # validating | queued | running | done
    step: int = 0
    run_base_step: int = 0
    active: float = 0.0  # seconds spent not paused
    last_tick: float = 0.0
    phase_started: float = 0.0  # `active` value when the current phase began
    metrics_rows: list[dict[str, Any]] = field(default_factory=list)
    # Test controls: a crafted metric stream (per-step lists, index 0 = step 1, None = not reported)
    # replacing the built-in curve, a stall (running, yet no step advances) and the billed tokens.
    curve: dict[str, list[Any]] | None = None
    stalled: bool = False
    trained_tokens: int | None = None
    billed_per_epoch: int = 0  # the training file's billed tokens for one epoch
    # Test control: the job reports this status (any text, e.g. "pausing" or one no client knows)
    # and stands still until released.
    held_status: str | None = None


class SandboxState:
    def __init__(self, *, timing: Timing | None = None, api_key: str | None = None, daily_job_limit: int = 0):
        self.lock = threading.RLock()
        self.timing = timing or Timing()
        self.faults = Faults()
        self.fault_rng = random.Random(7)
        self.api_key = api_key
        self.daily_job_limit = daily_job_limit  # 0 = no limit
        from bot.sandbox.webhooks import WebhookSender

        self.webhooks = WebhookSender(self)  # signed webhooks when jobs end, once configured
        from bot.sandbox.learned import Memory

        self.memory = Memory()  # what fine-tuned models learned (bot.sandbox.learned)
        from bot.sandbox.refusals import Refusals

        self.refusals = Refusals()  # test controls: prompts and job creations refused (bot.sandbox.refusals)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.files: dict[str, dict[str, Any]] = {}
            self.file_content: dict[str, bytes] = {}
            self.uploads: dict[str, dict[str, Any]] = {}
            self.parts: dict[str, bytes] = {}
            self.jobs: dict[str, SimJob] = {}
            self._billed: dict[tuple[str, str], int] = {}
            self.models: dict[str, dict[str, Any]] = {
                m: {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system", "shutdown_date": SHUTDOWN_DATES.get(m)}
                for m in BASE_MODELS
            }
            self.requests: dict[str, int] = {}
            self.faults = Faults()
            # A canned chat answer ("{prompt}" stands for the prompt), as a model that echoes or
            # says something hostile would; None: the usual "You asked: …" answer.
            self.chat_reply: str | None = None
            self.memory.reset()
            self.webhooks.reset()
            self.refusals.clear()

    # ---- files ------------------------------------------------------------------------------

    def add_file(self, filename: str, content: bytes, purpose: str, *, fid: str | None = None) -> dict[str, Any]:
        """`fid`: an id reserved earlier (Together's upload names the file before its bytes arrive)."""
        if purpose != "fine-tune-results":  # the purpose of the files jobs write; nobody uploads one
            checks.file_purpose(purpose)
        if purpose == "fine-tune" and not filename.endswith(".jsonl"):
            raise ApiError(400, "Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
        fid = fid or _id("file-")
        obj = {
            "id": fid,
            "object": "file",
            "bytes": len(content),
            "created_at": int(_now()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        with self.lock:
            self.files[fid] = obj
            self.file_content[fid] = content
        return obj

    def get_file(self, fid: str) -> dict[str, Any]:
        with self.lock:
            if fid not in self.files:
                raise ApiError(404, f"No such File object: {fid}", param="id")
            return self.files[fid]

    def list_files(self, *, purpose: str | None, after: str | None, limit: int, order: str) -> dict[str, Any]:
        with self.lock:
            items = [f for f in self.files.values() if purpose is None or f["purpose"] == purpose]
        # insertion order is creation order
        if order != "asc":
            items = list(reversed(items))
        return _page(items, after, limit)

    def delete_file(self, fid: str) -> dict[str, Any]:
        with self.lock:
            self.get_file(fid)
            del self.files[fid]
            self.file_content.pop(fid, None)
        return {"id": fid, "object": "file", "deleted": True}

    # ---- uploads ----------------------------------------------------------------------------

    def create_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        checks.create_upload(body)
        uid = _id("upload_")
        now = int(_now())
        obj = {
            "id": uid,
            "object": "upload",
            "bytes": body["bytes"],
            "created_at": now,
            "expires_at": now + UPLOAD_TTL,
            "filename": body["filename"],
            "purpose": body["purpose"],
            "status": "pending",
            "file": None,
            "_parts": [],
        }
        with self.lock:
            self.uploads[uid] = obj
        return _public(obj)

    def _pending_upload(self, uid: str) -> dict[str, Any]:
        up = self.uploads.get(uid)
        if up is None:
            raise ApiError(404, f"No such Upload: {uid}", param="upload_id")
        if up["status"] == "pending" and _now() > up["expires_at"]:
            up["status"] = "expired"
        if up["status"] != "pending":
            raise ApiError(400, f"Upload {uid} is {up['status']}", param="upload_id")
        return up

    def add_part(self, uid: str, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_PART:
            raise ApiError(400, "A part may be at most 64 MB", param="data")
        with self.lock:
            up = self._pending_upload(uid)
            pid = _id("part_")
            self.parts[pid] = data
            up["_parts"].append(pid)
        return {"id": pid, "object": "upload.part", "created_at": int(_now()), "upload_id": uid}

    def complete_upload(self, uid: str, part_ids: list[str]) -> dict[str, Any]:
        with self.lock:
            up = self._pending_upload(uid)
            unknown = [p for p in part_ids if p not in up["_parts"]]
            if unknown:
                raise ApiError(400, f"Unknown part ids: {', '.join(unknown)}", param="part_ids")
            content = b"".join(self.parts[p] for p in part_ids)
            if len(content) != up["bytes"]:
                raise ApiError(
                    400,
                    f"The parts add up to {len(content)} bytes, the upload was created for {up['bytes']}",
                    param="part_ids",
                )
            f = self.add_file(up["filename"], content, up["purpose"])
            up["status"] = "completed"
            up["file"] = f
            for p in up["_parts"]:
                self.parts.pop(p, None)
        return _public(up)

    def cancel_upload(self, uid: str) -> dict[str, Any]:
        with self.lock:
            up = self._pending_upload(uid)
            up["status"] = "cancelled"
        return _public(up)

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(self, body: dict[str, Any], *, base_models: Collection[str] = BASE_MODELS) -> dict[str, Any]:
        """`base_models`: what may be trained (the Together sandbox drives this same simulation)."""
        mtype, hyper = checks.create_job(body)
        model = body["model"]
        if model not in base_models and not (model.startswith("ft:") and model in self.models):
            raise ApiError(400, f"Model {model} is not available for fine-tuning or does not exist.", param="model", code="model_not_available")
        tf = body["training_file"]
        with self.lock:
            tfile = self.files.get(tf)
        if tfile is None:
            raise ApiError(400, f"invalid training_file: {tf}", param="training_file", code="invalid_file")
        if tfile["purpose"] != "fine-tune":
            raise ApiError(400, f"File {tf} has purpose {tfile['purpose']}, not fine-tune", param="training_file")
        vf = body.get("validation_file")
        if vf and vf not in self.files:
            raise ApiError(400, f"invalid validation_file: {vf}", param="validation_file", code="invalid_file")
        suffix = body.get("suffix")
        metadata = body.get("metadata") or {}

        if self.daily_job_limit:
            since = _now() - 86400
            with self.lock:
                today = sum(1 for j in self.jobs.values() if j.obj["model"] == model and j.obj["created_at"] >= since)
            if today >= self.daily_job_limit:
                raise ApiError(
                    429,
                    f"This organization has reached its daily limit of {self.daily_job_limit} fine-tuning jobs for {model}.",
                    type="requests",
                    code="daily_rate_limit_exceeded",
                )

        with self.lock:
            content = self.file_content.get(tf, b"")
        examples, invalid = _inspect_training_file(content, mtype)
        if vf and invalid is None:
            _, vinvalid = _inspect_training_file(self.file_content.get(vf, b""), mtype, minimum=1)
            if vinvalid:
                invalid = ("validation_file", vinvalid)
        # Counted before the job exists (and outside the lock): a big file takes a moment to count.
        per_epoch = 0
        if invalid is None:
            key = (tf, model)  # a file's bytes never change: count them once per model
            per_epoch = self._billed.get(key)
            if per_epoch is None:
                per_epoch = self._billed[key] = billed_tokens_per_epoch(content, model)
        n_epochs = hyper.get("n_epochs", "auto")
        batch = hyper.get("batch_size", "auto")
        epochs = 3 if n_epochs == "auto" else int(n_epochs)
        bsize = max(1, min(8, examples // 50) or 1) if batch == "auto" else int(batch)
        steps_per_epoch = max(1, math.ceil(max(examples, 1) / bsize))
        resolved = {
            "n_epochs": epochs,
            "batch_size": bsize,
            "learning_rate_multiplier": 1.8 if hyper.get("learning_rate_multiplier", "auto") == "auto" else float(hyper["learning_rate_multiplier"]),
        }
        if mtype == "dpo":
            resolved["beta"] = 0.1 if hyper.get("beta", "auto") == "auto" else float(hyper["beta"])
        now = _now()
        jid = _id("ftjob-")
        seed = body.get("seed")
        if seed is None:
            seed = random.randint(0, 2**31 - 1)
        obj = {
            "id": jid,
            "object": "fine_tuning.job",
            "created_at": int(now),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {k: v for k, v in resolved.items() if k != "beta"},
            "model": model,
            "organization_id": ORG,
            "result_files": [],
            "seed": seed,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": tf,
            "validation_file": vf,
            "estimated_finish": None,
            "integrations": [],
            "metadata": metadata or None,
            "method": {"type": mtype, mtype: {"hyperparameters": resolved} | ({"grader": body["method"]["reinforcement"]["grader"]} if mtype == "reinforcement" else {})},
            "user_provided_suffix": suffix,
        }
        job = SimJob(
            obj=obj,
            examples=examples,
            invalid_reason=None if invalid is None else json.dumps(invalid),
            total_steps=epochs * steps_per_epoch,
            steps_per_epoch=steps_per_epoch,
            has_validation=bool(vf),
            rng=random.Random(seed),
            last_tick=now,
            billed_per_epoch=per_epoch,
        )
        self._event(job, now, f"Created fine-tuning job: {jid}")
        self._event(job, now, f"Validating training file: {tf}" + (f" and validation file: {vf}" if vf else ""))
        with self.lock:
            self.jobs[jid] = job
        return _public(obj)

    def _event(self, job: SimJob, at: float, message: str, *, level: str = "info", type: str = "message", data: dict | None = None) -> None:
        job.events.append(
            {
                "id": _id("ftevent-"),
                "object": "fine_tuning.job.event",
                "created_at": int(at),
                "level": level,
                "message": message,
                "type": type,
                "data": data if data is not None else {},
            }
        )

    def _job(self, jid: str) -> SimJob:
        job = self.jobs.get(jid)
        if job is None:
            raise ApiError(404, f"Could not find fine tune: {jid}", param="fine_tune_id", code="fine_tune_not_found")
        self._advance(job, _now())
        return job

    def _advance(self, job: SimJob, now: float) -> None:
        """Move the job along by the active time passed since it was last looked at."""
        status = job.obj["status"]
        if job.held_status is not None or status in {"succeeded", "failed", "cancelled", "paused"}:
            job.last_tick = now
            return
        if job.stalled and job.phase == "running":
            job.last_tick = now  # silent while "running": no time passes for its steps
            return
        job.active += max(0.0, now - job.last_tick)
        job.last_tick = now
        t = self.timing

        def at(offset: float) -> float:
            # wall time at which the job reached `offset` seconds of active time
            return now - (job.active - offset)

        while True:
            if job.phase == "validating":
                end = job.phase_started + t.validating_seconds
                if job.active < end:
                    break
                if job.invalid_reason:
                    param, reason = json.loads(job.invalid_reason)
                    self._event(job, at(end), f"Training file validation failed: {reason}", level="error")
                    self._finish(job, at(end), "failed", error={"code": "invalid_training_file" if param == "training_file" else "invalid_validation_file", "message": reason, "param": param})
                    return
                self._event(job, at(end), "Files validated, moving job to queued state")
                job.obj["status"] = "queued"
                job.phase, job.phase_started = "queued", end
            elif job.phase == "queued":
                end = job.phase_started + t.queued_seconds
                if job.active < end:
                    break
                self._event(job, at(end), "Fine-tuning job started")
                job.obj["status"] = "running"
                job.phase, job.phase_started = "running", end
                job.run_base_step = job.step  # after a resume, training goes on from the step reached
            elif job.phase == "running":
                nxt = job.phase_started + (job.step - job.run_base_step + 1) * t.step_seconds
                if job.active < nxt:
                    break
                job.step += 1
                self._metrics(job, at(nxt))
                if job.step % job.steps_per_epoch == 0 or job.step == job.total_steps:
                    self._checkpoint(job, at(nxt))
                if job.step >= job.total_steps:
                    self._succeed(job, at(nxt))
                    return
            else:
                break
        if job.obj["status"] == "running":
            remaining = (job.total_steps - job.step) * t.step_seconds
            job.obj["estimated_finish"] = int(now + remaining) + 1

    def _metrics(self, job: SimJob, at: float) -> None:
        k, total = job.step, job.total_steps
        noise = job.rng.uniform(-0.04, 0.04)
        train_loss = round(max(0.02, 1.9 * math.exp(-3.0 * k / total) + 0.12 + noise), 4)
        data: dict[str, Any] = {
            "step": k,
            "total_steps": total,
            "train_loss": train_loss,
            "train_mean_token_accuracy": round(min(1.0, 1.0 - train_loss / 3.0), 4),
        }
        if job.curve is not None:
            self._crafted_metrics(job, at, data)
            return
        msg = f"Step {k}/{total}: training loss={train_loss:.2f}"
        if job.has_validation and (k % self.timing.eval_every == 0 or k == total):
            valid_loss = round(train_loss + 0.08 + job.rng.uniform(0, 0.05), 4)
            data["valid_loss"] = valid_loss
            data["valid_mean_token_accuracy"] = round(min(1.0, 1.0 - valid_loss / 3.0), 4)
            msg += f", validation loss={valid_loss:.2f}"
            if k == total:
                data["full_valid_loss"] = round(valid_loss + 0.02, 4)
                data["full_valid_mean_token_accuracy"] = round(min(1.0, 1.0 - data["full_valid_loss"] / 3.0), 4)
                msg += f", full validation loss={data['full_valid_loss']:.2f}"
        job.metrics_rows.append(data)
        self._event(job, at, msg, type="metrics", data=data)

    def _crafted_metrics(self, job: SimJob, at: float, data: dict[str, Any]) -> None:
        """This step's values from the crafted stream; a list that ran out leaves the built-in value
        (training loss) or nothing (validation losses)."""
        assert job.curve is not None
        k = job.step
        for key in ("train_loss", "valid_loss", "full_valid_loss"):
            values = job.curve.get(key)
            if values is None:
                continue
            if k - 1 < len(values):
                v = values[k - 1]
                if v is None:
                    data.pop(key, None)
                else:
                    data[key] = float(v)
            elif key != "train_loss":
                data.pop(key, None)
        msg = f"Step {k}/{job.total_steps}: training loss={data['train_loss']:.2f}"
        for key, label in (("valid_loss", "validation loss"), ("full_valid_loss", "full validation loss")):
            if key in data:
                msg += f", {label}={data[key]:.2f}"
                data[key.replace("loss", "mean_token_accuracy")] = round(min(1.0, 1.0 - data[key] / 3.0), 4) if math.isfinite(data[key]) else data[key]
        if math.isfinite(data["train_loss"]):
            data["train_mean_token_accuracy"] = round(min(1.0, max(0.0, 1.0 - data["train_loss"] / 3.0)), 4)
        job.metrics_rows.append(data)
        self._event(job, at, msg, type="metrics", data=data)

    def _model_name(self, job: SimJob) -> str:
        suffix = job.obj.get("user_provided_suffix") or ""
        return f"ft:{job.obj['model']}:{ORG[4:]}:{suffix}:{job.obj['id'][-8:]}"

    def _checkpoint(self, job: SimJob, at: float) -> None:
        last = job.metrics_rows[-1]
        ck = {
            "id": _id("ftckpt_"),
            "object": "fine_tuning.job.checkpoint",
            "created_at": int(at),
            "fine_tuned_model_checkpoint": f"{self._model_name(job)}:ckpt-step-{job.step}",
            "fine_tuning_job_id": job.obj["id"],
            "step_number": job.step,
            "metrics": {
                "step": float(job.step),
                "train_loss": last["train_loss"],
                "train_mean_token_accuracy": last["train_mean_token_accuracy"],
                "valid_loss": last.get("valid_loss"),
                "valid_mean_token_accuracy": last.get("valid_mean_token_accuracy"),
                "full_valid_loss": last.get("full_valid_loss"),
                "full_valid_mean_token_accuracy": last.get("full_valid_mean_token_accuracy"),
            },
        }
        job.checkpoints.append(ck)
        del job.checkpoints[:-3]  # OpenAI keeps the last three
        self._event(job, at, f"Checkpoint created at step {job.step}")

    def _succeed(self, job: SimJob, at: float) -> None:
        name = self._model_name(job)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
        for r in job.metrics_rows:
            w.writerow([r["step"], r["train_loss"], r["train_mean_token_accuracy"], r.get("valid_loss", ""), r.get("valid_mean_token_accuracy", "")])
        result = self.add_file("step_metrics.csv", buf.getvalue().encode(), "fine-tune-results")
        job.obj["result_files"] = [result["id"]]
        job.obj["fine_tuned_model"] = name
        epochs = job.obj["method"][job.obj["method"]["type"]]["hyperparameters"]["n_epochs"]
        job.obj["trained_tokens"] = job.trained_tokens if job.trained_tokens is not None else job.billed_per_epoch * epochs
        self.models[name] = {"id": name, "object": "model", "created": int(at), "owned_by": ORG, "shutdown_date": None}
        self._event(job, at, f"New fine-tuned model created: {name}")
        self._event(job, at, "The job has successfully completed")
        self._finish(job, at, "succeeded")

    def _finish(self, job: SimJob, at: float, status: str, error: dict | None = None) -> None:
        job.held_status = None
        job.obj["status"] = status
        job.obj["finished_at"] = int(at)
        job.obj["estimated_finish"] = None
        job.obj["error"] = error
        job.phase = "done"
        self.webhooks.job_ended(job.obj)

    def get_job(self, jid: str) -> dict[str, Any]:
        with self.lock:
            return _public(self._job(jid).obj)

    def list_jobs(self, *, after: str | None, limit: int, metadata: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            now = _now()
            matching = [
                job for job in reversed(list(self.jobs.values()))
                if all((job.obj.get("metadata") or {}).get(k) == v for k, v in metadata.items())
            ]
            # Only the page's jobs are advanced and copied: a long list stays cheap to page through.
            page = _page([{"id": j.obj["id"], "_job": j} for j in matching], after, limit)
            for i, ref in enumerate(page["data"]):
                self._advance(ref["_job"], now)
                page["data"][i] = _public(ref["_job"].obj)
        return page

    def cancel_job(self, jid: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            if job.obj["status"] in {"succeeded", "failed", "cancelled"}:
                raise ApiError(400, f"Job {jid} has already {job.obj['status']}; it cannot be cancelled.", param="fine_tune_id")
            self._event(job, _now(), "Fine-tuning job cancelled")
            self._finish(job, _now(), "cancelled")
            return _public(job.obj)

    def pause_job(self, jid: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            if job.obj["status"] != "running":
                raise ApiError(400, f"Only a running job can be paused; {jid} is {job.obj['status']}.", param="fine_tune_id")
            job.obj["status"] = "paused"
            job.obj["estimated_finish"] = None
            self._event(job, _now(), "Fine-tuning job paused")
            return _public(job.obj)

    def resume_job(self, jid: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            if job.obj["status"] not in RESUMABLE:
                raise ApiError(400, f"Only a paused job can be resumed; {jid} is {job.obj['status']}.", param="fine_tune_id")
            # Resuming goes back through the queue, as at OpenAI.
            job.held_status = None
            job.obj["status"] = "queued"
            job.phase, job.phase_started = "queued", job.active
            job.last_tick = _now()
            self._event(job, _now(), "Fine-tuning job resumed")
            return _public(job.obj)

    def list_events(self, jid: str, *, after: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            newest_first = list(reversed(job.events))
        return _page(newest_first, after, limit)

    def list_checkpoints(self, jid: str, *, after: str | None, limit: int) -> dict[str, Any]:
        with self.lock:
            job = self._job(jid)
            newest_first = list(reversed(job.checkpoints))
        return _page(newest_first, after, limit)

    def hold_status(self, jid: str, status: str | None) -> dict[str, Any]:
        """Test hook: the job reports `status` (any text) and stands still; None: it goes on from
        where it stood, in the status of its phase. A held "paused" or "pausing" job resumes as a
        paused one does."""
        with self.lock:
            job = self._job(jid)
            if job.phase == "done":
                raise ApiError(400, f"{jid} has ended ({job.obj['status']}): nothing to hold")
            if status is None:
                if job.held_status is not None:
                    job.held_status = None
                    job.obj["status"] = PHASE_STATUS[job.phase]
                    job.last_tick = _now()
                    self._advance(job, _now())
            else:
                job.held_status = status
                job.obj["status"] = status
                job.obj["estimated_finish"] = None
            return _public(job.obj)

    def forget_job(self, jid: str) -> None:
        """Test hook: the job disappears, as one deleted at the provider or owned by another project."""
        with self.lock:
            self._job(jid)
            del self.jobs[jid]

    def set_curve(self, jid: str, curve: dict[str, Any]) -> dict[str, Any]:
        """Test hook: the job's metrics from now on follow these per-step lists (see SimJob.curve)."""
        unknown = set(curve) - {"train_loss", "valid_loss", "full_valid_loss", "trained_tokens"}
        if unknown:
            raise ApiError(400, f"unknown curve keys: {sorted(unknown)}")
        lists: dict[str, list[Any]] = {}
        for key in ("train_loss", "valid_loss", "full_valid_loss"):
            if key not in curve:
                continue
            values = curve[key]
            if not isinstance(values, list) or not all(v is None or _number_like(v) for v in values):
                raise ApiError(400, f"{key} must be a list of numbers, nulls or 'NaN' / 'Infinity'")
            lists[key] = [None if v is None else float(v) for v in values]
        tokens = curve.get("trained_tokens")
        if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0):
            raise ApiError(400, "trained_tokens must be a whole number")
        with self.lock:
            job = self._job(jid)
            job.curve = lists
            if tokens is not None:
                job.trained_tokens = tokens
            return {"id": jid, "steps": job.total_steps, "curve": {k: len(v) for k, v in lists.items()}}

    def set_stalled(self, jid: str, stalled: bool) -> dict[str, Any]:
        """Test hook: a running job stops producing steps (or starts again) while its status stays."""
        with self.lock:
            job = self._job(jid)
            job.stalled = stalled
            return {"id": jid, "stalled": stalled, "status": job.obj["status"], "step": job.step}

    def add_events(self, jid: str, count: int) -> None:
        """Test hook: a burst of message events, as a busy job produces between two polls."""
        with self.lock:
            job = self._job(jid)
            now = _now()
            for i in range(count):
                self._event(job, now, f"Burst event {i + 1}/{count}")

    # ---- models and completions -------------------------------------------------------------

    def _shown(self, m: dict[str, Any]) -> dict[str, Any]:
        """A model as listed: a fine-tune carries its base model's shutdown date."""
        if not m["id"].startswith("ft:"):
            return m
        base = self.models.get(m["id"].split(":")[1])
        return {**m, "shutdown_date": base.get("shutdown_date") if base else None}

    def list_models(self) -> dict[str, Any]:
        with self.lock:
            return {"object": "list", "data": [self._shown(m) for m in self.models.values()]}

    def get_model(self, mid: str) -> dict[str, Any]:
        with self.lock:
            if mid not in self.models:
                raise ApiError(404, f"The model '{mid}' does not exist", code="model_not_found", param="model")
            return self._shown(self.models[mid])

    def set_shutdown_date(self, mid: str, when: str | None) -> dict[str, Any]:
        """Control: the date a base model (and so its fine-tunes) is said to shut down."""
        with self.lock:
            if mid not in self.models:
                raise ApiError(404, f"The model '{mid}' does not exist", code="model_not_found", param="model")
            self.models[mid]["shutdown_date"] = when
            return self._shown(self.models[mid])

    def delete_model(self, mid: str) -> dict[str, Any]:
        with self.lock:
            model = self.get_model(mid)
            if model["owned_by"] == "system":
                raise ApiError(403, "You have insufficient permissions to delete this model.", type="invalid_request_error", code="insufficient_permissions")
            del self.models[mid]
        return {"id": mid, "object": "model", "deleted": True}

    def lessons_for(self, model: str) -> dict[str, Any] | None:
        """What a fine-tuned model learned: the trained answers of its job's training file (a
        checkpoint model learned the same); None for a base model."""
        from bot.sandbox.learned import Lesson  # noqa: F401 - the values' type

        with self.lock:
            for job in self.jobs.values():
                name = job.obj.get("fine_tuned_model")
                if name and (model == name or model.startswith(name + ":ckpt-step-")):
                    tf = job.obj.get("training_file")
                    return self.memory.of_file(tf, self.file_content.get(tf))
        return None

    def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        from bot.sandbox import learned

        model = body.get("model")
        self.get_model(model or "")
        messages = body.get("messages") or []
        if not messages:
            raise ApiError(400, "messages must be a non-empty array", param="messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) and m.get("role") for m in messages):
            raise ApiError(400, "Invalid 'messages': each message must be an object with a 'role'.", param="messages")
        bad = learned.unknown_message_key(messages)
        if bad is not None:
            raise ApiError(400, f"Additional properties are not allowed ('{bad[1]}' was unexpected) - 'messages.{bad[0]}'", param=f"messages[{bad[0]}].{bad[1]}")
        with self.lock:
            self.memory.count(model, messages)
        if self.chat_reply is not None:
            prompt = learned._text(messages[-1].get("content"))
            choice = {"message": {"role": "assistant", "content": self.chat_reply.replace("{prompt}", prompt)}, "finish_reason": "stop"}
        else:
            choice = learned.reply(model, messages, self.lessons_for(model), self.memory.noise)
        choice["message"].setdefault("refusal", None)
        return {
            "id": _id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(_now()),
            "model": model,
            "choices": [{"index": 0, "message": choice["message"], "finish_reason": choice["finish_reason"], "logprobs": None}],
            "usage": learned.usage(messages, choice["message"]),
        }


def _number_like(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in {"nan", "inf", "-inf", "infinity", "-infinity"}
    return isinstance(v, int | float) and not isinstance(v, bool)


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_") and k != "user_provided_suffix"}


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """OpenAI cursor pagination: `after` is the id of the last item of the previous page."""
    start = 0
    if after:
        ids = [i["id"] for i in items]
        if after not in ids:
            start = len(items)  # an unknown cursor yields an empty page, as OpenAI's does
        else:
            start = ids.index(after) + 1
    chunk = items[start : start + limit]
    return {
        "object": "list",
        "data": chunk,
        "has_more": start + limit < len(items),
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }


def _inspect_training_file(content: bytes, mtype: str, minimum: int = 10) -> tuple[int, tuple[str, str] | None]:
    """Count examples and find the first problem, as OpenAI's file validation would."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return 0, ("training_file", "the file is not UTF-8 text")
    count = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ex = json.loads(line)
        except json.JSONDecodeError:
            return count, ("training_file", f"line {n} is not valid JSON")
        if not isinstance(ex, dict):
            return count, ("training_file", f"line {n} is not a JSON object")
        if mtype == "dpo":
            ok = isinstance(ex.get("input"), dict) and "preferred_output" in ex and "non_preferred_output" in ex
            if not ok:
                return count, ("training_file", f"line {n} is not a preference example (input, preferred_output, non_preferred_output)")
        elif "messages" in ex:
            msgs = ex["messages"]
            if not isinstance(msgs, list) or not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
                return count, ("training_file", f"line {n} has no assistant message")
        elif not ("prompt" in ex and "completion" in ex):
            return count, ("training_file", f"line {n} has neither 'messages' nor 'prompt'/'completion'")
        count += 1
    if count < minimum:
        return count, ("training_file", f"the file has {count} examples; at least {minimum} are required")
    return count, None
