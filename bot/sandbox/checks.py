"""The sandbox's request checks: what OpenAI's published API description refuses, the sandbox refuses,
with OpenAI's error shape (400, invalid_request_error, the offending parameter in `param`).

Written by hand from the document (tests/data/openai-openapi-finetuning.json), not generated from
it, so the contract test (tests/sandbox/test_openapi_contract.py) is a real cross-check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.errors import ApiError

FILE_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision"})
METHODS = frozenset({"supervised", "dpo", "reinforcement"})
GRADER_TYPES = frozenset({"string_check", "text_similarity", "python", "score_model", "multi"})
REASONING_EFFORTS = frozenset({"default", "low", "medium", "high"})
SEED_MAX = 2**31 - 1


def bad(param: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid value for '{param}': {message}", param=param)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def require_object(body: Any, param: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad(param, "expected an object.")
    return body


def refuse_unknown(body: Mapping[str, Any], known: set[str], prefix: str = "") -> None:
    for key in body:
        if key not in known:
            raise ApiError(400, f"Unrecognized request argument supplied: {prefix}{key}", param=f"{prefix}{key}")


def required_string(body: Mapping[str, Any], key: str, prefix: str = "") -> str:
    if key not in body or body[key] is None:
        raise ApiError(400, f"Missing required parameter: '{prefix}{key}'.", param=f"{prefix}{key}")
    if not isinstance(body[key], str):
        raise bad(f"{prefix}{key}", "expected a string.")
    return body[key]


def optional_string(body: Mapping[str, Any], key: str, prefix: str = "", *, nullable: bool = True) -> str | None:
    v = body.get(key)
    if v is None:
        if key in body and not nullable:
            raise bad(f"{prefix}{key}", "expected a string, got null.")
        return None
    if not isinstance(v, str):
        raise bad(f"{prefix}{key}", "expected a string.")
    return v


def expires_after(v: Any, param: str = "expires_after") -> None:
    v = require_object(v, param)
    refuse_unknown(v, {"anchor", "seconds"}, f"{param}.")
    if v.get("anchor") != "created_at":
        raise bad(f"{param}.anchor", "the only supported anchor is 'created_at'.")
    seconds = v.get("seconds")
    if not is_int(seconds) or not 3600 <= seconds <= 2_592_000:
        raise bad(f"{param}.seconds", "must be an integer from 3600 (1 hour) to 2592000 (30 days).")


def file_purpose(purpose: Any) -> str:
    if purpose is None or purpose == "":
        raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
    if purpose not in FILE_PURPOSES:
        raise bad("purpose", f"{str(purpose)[:60]!r} is not one of {sorted(FILE_PURPOSES)}.")
    return purpose


def form_expires_after(form: Mapping[str, str]) -> None:
    """Multipart bodies carry the object as `expires_after[anchor]` / `expires_after[seconds]`."""
    keys = {k for k in form if k.startswith("expires_after")}
    if not keys:
        return
    if not keys <= {"expires_after[anchor]", "expires_after[seconds]"}:
        raise bad("expires_after", "expected expires_after[anchor] and expires_after[seconds].")
    raw = form.get("expires_after[seconds]")
    try:
        seconds: Any = int(raw) if raw is not None else None
    except ValueError:
        seconds = raw
    expires_after({"anchor": form.get("expires_after[anchor]"), "seconds": seconds})


def create_upload(body: dict[str, Any]) -> None:
    refuse_unknown(body, {"filename", "purpose", "bytes", "mime_type", "expires_after"})
    for key in ("bytes", "filename", "mime_type", "purpose"):
        if key not in body:
            raise ApiError(400, f"Missing required parameter: '{key}'.", param=key)
    required_string(body, "filename")
    required_string(body, "mime_type")
    if body["purpose"] not in UPLOAD_PURPOSES:
        raise bad("purpose", f"{str(body['purpose'])[:60]!r} is not one of {sorted(UPLOAD_PURPOSES)}.")
    if not is_int(body["bytes"]) or body["bytes"] <= 0 or body["bytes"] > 8 * 1024**3:
        raise ApiError(400, "bytes must be between 1 and 8 GB", param="bytes")
    if "expires_after" in body:
        expires_after(body["expires_after"])


def complete_upload(body: dict[str, Any]) -> list[str]:
    refuse_unknown(body, {"part_ids", "md5"})
    part_ids = body.get("part_ids")
    if part_ids is None:
        raise ApiError(400, "Missing required parameter: 'part_ids'.", param="part_ids")
    if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
        raise bad("part_ids", "expected a list of part ids.")
    if not part_ids:
        raise ApiError(400, "part_ids must be a non-empty list", param="part_ids")
    optional_string(body, "md5", nullable=False)
    return part_ids


def _auto_or(v: Any, param: str, ok: bool, rule: str) -> None:
    if v != "auto" and not ok:
        raise ApiError(400, f"Invalid hyperparameter {param.rsplit('.', 1)[-1]}: {rule}", param=param)


def hyperparameters(hyper: Any, mtype: str, prefix: str) -> dict[str, Any]:
    """One method's hyperparameters, each "auto" or in its range (the document's oneOf)."""
    hyper = require_object(hyper, prefix.rstrip("."))
    n = hyper.get("n_epochs", "auto")
    _auto_or(n, f"{prefix}n_epochs", is_int(n) and 1 <= n <= 50, "must be an integer from 1 to 50 or 'auto'")
    b = hyper.get("batch_size", "auto")
    _auto_or(b, f"{prefix}batch_size", is_int(b) and 1 <= b <= 256, "must be an integer from 1 to 256 or 'auto'")
    lr = hyper.get("learning_rate_multiplier", "auto")
    _auto_or(lr, f"{prefix}learning_rate_multiplier", is_number(lr) and lr > 0, "must be a number above 0 or 'auto'")
    if mtype == "dpo":
        beta = hyper.get("beta", "auto")
        _auto_or(beta, f"{prefix}beta", is_number(beta) and 0 < beta <= 2, "must be a number in (0, 2] or 'auto'")
    if mtype == "reinforcement":
        cm = hyper.get("compute_multiplier", "auto")
        _auto_or(cm, f"{prefix}compute_multiplier", is_number(cm) and 1e-5 < cm <= 10, "must be a number in (0.00001, 10] or 'auto'")
        for key in ("eval_interval", "eval_samples"):
            v = hyper.get(key, "auto")
            _auto_or(v, f"{prefix}{key}", is_int(v) and v >= 1, "must be a whole number from 1 or 'auto'")
        effort = hyper.get("reasoning_effort", "default")
        if effort not in REASONING_EFFORTS:
            raise bad(f"{prefix}reasoning_effort", f"must be one of {sorted(REASONING_EFFORTS)}.")
    return hyper


def method(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method type, its hyperparameters) from `method`, or the deprecated top-level hyperparameters."""
    if body.get("method") is None:
        hyper = body.get("hyperparameters")
        return "supervised", dict(hyperparameters(hyper, "supervised", "hyperparameters.")) if hyper is not None else {}
    m = require_object(body["method"], "method")
    mtype = m.get("type")
    if mtype is None:
        raise ApiError(400, "Missing required parameter: 'method.type'.", param="method.type")
    if mtype not in METHODS:
        raise ApiError(400, f"Invalid method type: {str(mtype)[:60]}", param="method.type")
    detail = m.get(mtype)
    detail = require_object(detail, f"method.{mtype}") if detail is not None else {}
    if mtype == "reinforcement":
        grader = detail.get("grader")
        if grader is None:
            raise ApiError(400, "Missing required parameter: 'method.reinforcement.grader'.", param="method.reinforcement.grader")
        if not isinstance(grader, dict) or grader.get("type") not in GRADER_TYPES:
            raise bad("method.reinforcement.grader", f"a grader object whose type is one of {sorted(GRADER_TYPES)}.")
    hyper = detail.get("hyperparameters")
    if body.get("hyperparameters") is not None:
        hyperparameters(body["hyperparameters"], "supervised", "hyperparameters.")
    if hyper is None:
        return mtype, {}
    return mtype, dict(hyperparameters(hyper, mtype, f"method.{mtype}.hyperparameters."))


def metadata(v: Any) -> dict[str, str]:
    if v is None:
        return {}
    v = require_object(v, "metadata")
    if len(v) > 16:
        raise bad("metadata", "at most 16 key-value pairs.")
    for k, val in v.items():
        if len(k) > 64:
            raise bad("metadata", "keys are at most 64 characters.")
        if not isinstance(val, str):
            raise bad(f"metadata.{k[:64]}", "values are strings.")
        if len(val) > 512:
            raise bad(f"metadata.{k[:64]}", "values are at most 512 characters.")
    return v


def integrations(v: Any) -> None:
    if v is None:
        return
    if not isinstance(v, list):
        raise bad("integrations", "expected an array.")
    for i, item in enumerate(v):
        p = f"integrations[{i}]"
        item = require_object(item, p)
        if item.get("type") != "wandb":
            raise bad(f"{p}.type", "the only integration is 'wandb'.")
        wandb = item.get("wandb")
        if wandb is None:
            raise ApiError(400, f"Missing required parameter: '{p}.wandb'.", param=f"{p}.wandb")
        wandb = require_object(wandb, f"{p}.wandb")
        required_string(wandb, "project", f"{p}.wandb.")
        optional_string(wandb, "name", f"{p}.wandb.")
        optional_string(wandb, "entity", f"{p}.wandb.")
        tags = wandb.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise bad(f"{p}.wandb.tags", "expected a list of strings.")


def create_job(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Every field of CreateFineTuningJobRequest; returns (method type, hyperparameters)."""
    required_string(body, "model")
    required_string(body, "training_file")
    optional_string(body, "validation_file")
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or not 1 <= len(suffix) <= 64):
        raise ApiError(400, "suffix must be a string of 1 to 64 characters", param="suffix")
    seed = body.get("seed")
    if seed is not None and (not is_int(seed) or not 0 <= seed <= SEED_MAX):
        raise ApiError(400, f"seed must be an integer from 0 to {SEED_MAX}", param="seed")
    integrations(body.get("integrations"))
    metadata(body.get("metadata"))
    return method(body)
