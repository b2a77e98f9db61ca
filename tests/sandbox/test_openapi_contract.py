"""The OpenAI sandbox held against OpenAI's published API description (tests/data/
openai-openapi-finetuning.json: the fine-tuning part of openai/openai-openapi, its source commit and
the places where it is stricter than the live API inside).

Every route the sandbox serves is called over HTTP; every answer, success or error, is validated
against the document's schema for that operation (errors against its ErrorResponse). Request bodies
the document refuses (checked with the document itself first, so a case cannot be wrong) must be
refused with OpenAI's error shape: 400, invalid_request_error, the offending parameter named.
Bodies it accepts must be accepted. The document's stricter-than-live places are relaxed here, each
one named, and nothing else.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.sandbox.server import ROUTES
from bot.sandbox.webhooks import ENDED_TYPES, job_event_body
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, dpo_jsonl

DOC = json.loads((Path(__file__).parents[1] / "data" / "openai-openapi-finetuning.json").read_text())
MODEL = "gpt-4o-mini-2024-07-18"

# The sandbox's endpoints and the document's operations they serve.
OPERATIONS: dict[str, tuple[str, str] | None] = {
    "create_file": ("/files", "post"),
    "list_files": ("/files", "get"),
    "get_file": ("/files/{file_id}", "get"),
    "delete_file": ("/files/{file_id}", "delete"),
    "file_content": ("/files/{file_id}/content", "get"),
    "create_upload": ("/uploads", "post"),
    "add_part": ("/uploads/{upload_id}/parts", "post"),
    "complete_upload": ("/uploads/{upload_id}/complete", "post"),
    "cancel_upload": ("/uploads/{upload_id}/cancel", "post"),
    "create_job": ("/fine_tuning/jobs", "post"),
    "list_jobs": ("/fine_tuning/jobs", "get"),
    "get_job": ("/fine_tuning/jobs/{fine_tuning_job_id}", "get"),
    "cancel_job": ("/fine_tuning/jobs/{fine_tuning_job_id}/cancel", "post"),
    "pause_job": ("/fine_tuning/jobs/{fine_tuning_job_id}/pause", "post"),
    "resume_job": ("/fine_tuning/jobs/{fine_tuning_job_id}/resume", "post"),
    "list_events": ("/fine_tuning/jobs/{fine_tuning_job_id}/events", "get"),
    "list_checkpoints": ("/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", "get"),
    "list_models": ("/models", "get"),
    "get_model": ("/models/{model}", "get"),
    "delete_model": ("/models/{model}", "delete"),
    # Not in the document (it covers files, uploads, fine-tuning and models): its errors are still
    # checked against ErrorResponse and its answer against what ftbot reads.
    "chat": None,
}


def _relaxed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with its stricter-than-live places (its own x-stricter-than-the-live-api notes,
    plus one it does not note) loosened to what the live API answers."""
    notes = doc["x-stricter-than-the-live-api"]
    assert len(notes) == 4, "the document's notes changed: review the relaxations below"
    d = copy.deepcopy(doc)
    s = d["components"]["schemas"]
    # 1. "File.expires_at and File.status_details are typed non-null, yet the live API answers null"
    assert "File.expires_at and File.status_details" in notes[0]
    s["OpenAIFile"]["properties"]["expires_at"]["type"] = ["integer", "null"]
    s["OpenAIFile"]["properties"]["status_details"]["type"] = ["string", "null"]
    # 2. "List answers' first_id / last_id are typed string, yet an empty page has none (null)."
    assert "first_id / last_id" in notes[1]
    for key in ("first_id", "last_id"):
        s["ListFilesResponse"]["properties"][key]["type"] = ["string", "null"]
    # 3. "Checkpoint metrics (valid_loss, ...) are typed number, yet a job without a validation file has none"
    assert "Checkpoint metrics" in notes[2]
    for key in ("valid_loss", "valid_mean_token_accuracy", "full_valid_loss", "full_valid_mean_token_accuracy"):
        s["FineTuningJobCheckpoint"]["properties"]["metrics"]["properties"][key]["type"] = ["number", "null"]
    # 4. "FineTuningJob.status lists ...; OpenAI's API reference also documents pausing and paused"
    assert "pausing and paused" in notes[3]
    s["FineTuningJob"]["properties"]["status"]["enum"] += ["pausing", "paused"]
    # Not noted: files may be created with purpose "evals" (CreateFileRequest), yet the File object's
    # purpose enum omits it; the live API answers the purpose it was given.
    assert "evals" in s["CreateFileRequest"]["properties"]["purpose"]["enum"]
    assert "evals" not in s["OpenAIFile"]["properties"]["purpose"]["enum"]
    s["OpenAIFile"]["properties"]["purpose"]["enum"].append("evals")
    return d


def _registry(doc: dict[str, Any]) -> Registry:
    return Registry().with_resource("urn:spec", Resource.from_contents(doc, default_specification=DRAFT202012))


STRICT = _registry(DOC)
RELAXED = _registry(_relaxed(DOC))


def _pointer(*parts: str) -> str:
    return "urn:spec#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _validator(ref: str, registry: Registry = RELAXED) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry)


def _answer_schema(endpoint: str) -> Draft202012Validator:
    path, method = OPERATIONS[endpoint]  # type: ignore[misc]
    return _validator(_pointer("paths", path, method, "responses", "200", "content", "application/json", "schema"))


def _request_schema(endpoint: str, registry: Registry = STRICT) -> Draft202012Validator:
    path, method = OPERATIONS[endpoint]  # type: ignore[misc]
    content = DOC["paths"][path][method]["requestBody"]["content"]
    ctype = next(iter(content))
    return _validator(_pointer("paths", path, method, "requestBody", "content", ctype, "schema"), registry)


ERROR = _validator("urn:spec#/components/schemas/ErrorResponse", STRICT)


class Contract:
    """Calls the sandbox over HTTP and checks every answer against the document."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"Authorization": "Bearer sk-contract"}, timeout=10)
        self.seen: set[tuple[str, str]] = set()  # (endpoint, "ok" | "error")

    def call(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        endpoint, _ = ROUTES.bind("sandbox").match(path, method=method)
        r = self.http.request(method, path, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text[:500])
        if status == 200:
            self.seen.add((endpoint, "ok"))
            if endpoint == "file_content":
                return r.content
            body = r.json()
            if OPERATIONS[endpoint] is not None:
                errors = sorted(_answer_schema(endpoint).iter_errors(body), key=str)
                assert not errors, f"{method} {path}: {[e.message for e in errors[:5]]}"
            return body
        self.seen.add((endpoint, "error"))
        body = r.json()
        ERROR.validate(body)
        return body["error"]

    def refused(self, method: str, path: str, param: str, *, status: int = 400, **kw: Any) -> dict[str, Any]:
        """A 400 (or `status`) in OpenAI's shape naming `param` (or a parameter inside it)."""
        err = self.call(method, path, status, **kw)
        assert err["type"] == "invalid_request_error", err
        assert err["param"] == param or (err["param"] or "").startswith((param + ".", param + "[")), (param, err)
        return err


# The coverage check at the end reads what every test of this module saw: one process runs them all
# (pytest-xdist's --dist loadfile, set in pyproject.toml, keeps a file's tests together and in order).
SEEN: list[set[tuple[str, str]]] = []


@pytest.fixture
def api(sandbox) -> Contract:  # noqa: ANN001
    contract = Contract(sandbox.url.removesuffix("/v1"))
    SEEN.append(contract.seen)
    yield contract
    contract.http.close()


def _upload(api: Contract, content: bytes = b"", purpose: str = "fine-tune", name: str = "train.jsonl") -> dict[str, Any]:
    return api.call("POST", "/v1/files", files={"file": (name, content or chat_jsonl(12))}, data={"purpose": purpose})


# ---- files and uploads ----------------------------------------------------------------------


def test_files_and_their_refusals(api: Contract) -> None:
    f = _upload(api)
    evals = _upload(api, purpose="evals", name="evals.jsonl")  # the document takes it, so must the sandbox
    assert evals["purpose"] == "evals"
    expiring = api.call(
        "POST", "/v1/files", files={"file": ("b.jsonl", b"{}")}, data={"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}
    )
    assert api.call("GET", "/v1/files")["data"][0]["id"] == expiring["id"]
    assert [x["id"] for x in api.call("GET", "/v1/files", params={"purpose": "evals"})["data"]] == [evals["id"]]
    assert api.call("GET", "/v1/files", params={"purpose": "vision"}) == {"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}
    api.refused("GET", "/v1/files", "order", params={"order": "newest"})
    api.refused("GET", "/v1/files", "limit", params={"limit": "all"})
    assert api.call("GET", f"/v1/files/{f['id']}")["bytes"] == len(chat_jsonl(12))
    assert api.call("GET", f"/v1/files/{f['id']}/content") == chat_jsonl(12)
    assert api.call("DELETE", f"/v1/files/{f['id']}") == {"id": f["id"], "object": "file", "deleted": True}
    for method, path in (("GET", f"/v1/files/{f['id']}"), ("DELETE", f"/v1/files/{f['id']}"), ("GET", f"/v1/files/{f['id']}/content")):
        api.refused(method, path, "id", status=404)
    # Multipart bodies: the document's CreateFileRequest refuses each of these.
    create_file = _request_schema("create_file")
    for form, param in (
        ({}, "purpose"),
        ({"purpose": "fine-tunes"}, "purpose"),
        ({"purpose": "fine-tune", "colour": "blue"}, "colour"),
        ({"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"}, "expires_after"),
        ({"purpose": "batch", "expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"}, "expires_after"),
    ):
        as_doc = {k: v for k, v in form.items() if not k.startswith("expires_after")} | {"file": "bytes"}
        if "expires_after[anchor]" in form:
            as_doc["expires_after"] = {"anchor": form["expires_after[anchor]"], "seconds": int(form["expires_after[seconds]"])}
        assert not create_file.is_valid(as_doc), form
        api.refused("POST", "/v1/files", param, files={"file": ("t.jsonl", chat_jsonl(12))}, data=form)
    api.refused("POST", "/v1/files", "file", data={"purpose": "fine-tune"})


def test_uploads_and_their_refusals(api: Contract) -> None:
    data = chat_jsonl(12)
    good = {"filename": "big.jsonl", "purpose": "fine-tune", "bytes": len(data), "mime_type": "text/jsonl"}
    create = _request_schema("create_upload")
    assert create.is_valid(good)
    up = api.call("POST", "/v1/uploads", json=good)
    assert up["status"] == "pending" and up["file"] is None
    part = api.call("POST", f"/v1/uploads/{up['id']}/parts", files={"data": ("blob", data)})
    complete = _request_schema("complete_upload")
    for body, param in (({"part_ids": ["part_nope"]}, "part_ids"), ({"part_ids": [part["id"]], "sha": "x"}, "sha"), ({"part_ids": "x"}, "part_ids"), ({}, "part_ids")):
        if body.get("part_ids") != ["part_nope"]:  # an unknown id is well-formed: refused by the API, not the document
            assert not complete.is_valid(body), body
        api.refused("POST", f"/v1/uploads/{up['id']}/complete", param, json=body)
    done = api.call("POST", f"/v1/uploads/{up['id']}/complete", json={"part_ids": [part["id"]], "md5": "d41d8cd98f00b204e9800998ecf8427e"})
    assert done["status"] == "completed" and done["file"]["bytes"] == len(data)
    api.refused("POST", f"/v1/uploads/{up['id']}/cancel", "upload_id")  # completed already
    api.refused("POST", f"/v1/uploads/{up['id']}/parts", "upload_id", files={"data": ("blob", b"x")})
    api.refused("POST", "/v1/uploads/upload_nope/parts", "upload_id", status=404, files={"data": ("blob", b"x")})
    other = api.call("POST", "/v1/uploads", json=good)
    api.refused("POST", f"/v1/uploads/{other['id']}/parts", "data", files={"blob": ("blob", b"x")})
    assert api.call("POST", f"/v1/uploads/{other['id']}/cancel")["status"] == "cancelled"
    for change, param in (
        ({"purpose": "evals"}, "purpose"),  # files take evals, uploads do not (CreateUploadRequest's enum)
        ({"purpose": None}, "purpose"),
        ({"bytes": "12"}, "bytes"),
        ({"mime_type": None}, "mime_type"),
        ({"filename": 7}, "filename"),
        ({"colour": "blue"}, "colour"),
        ({"expires_after": {"anchor": "created_at", "seconds": 10}}, "expires_after"),
        ({"expires_after": {"anchor": "created_at"}}, "expires_after"),
    ):
        body = {k: v for k, v in (good | change).items() if v is not None}
        assert not create.is_valid(body), change
        api.refused("POST", "/v1/uploads", param, json=body)


# ---- fine-tuning jobs -----------------------------------------------------------------------

GRADER = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.answer}}", "operation": "eq"}

# (change to a valid body, parameter named in the refusal): the document refuses every one.
REFUSED_JOB_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"suffix": ""}, "suffix"),
    ({"suffix": "x" * 65}, "suffix"),
    ({"suffix": 7}, "suffix"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**31}, "seed"),
    ({"seed": "7"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"model": None}, "model"),
    ({"model": 4}, "model"),
    ({"training_file": None}, "training_file"),
    ({"training_file": ["file-1"]}, "training_file"),
    ({"validation_file": 5}, "validation_file"),
    ({"metadata": {"team": 5}}, "metadata"),
    ({"metadata": "team"}, "metadata"),
    ({"integrations": "wandb"}, "integrations"),
    ({"integrations": [{"type": "slack", "wandb": {"project": "p"}}]}, "integrations"),
    ({"integrations": [{"type": "wandb"}]}, "integrations"),
    ({"integrations": [{"type": "wandb", "wandb": {}}]}, "integrations"),
    ({"integrations": [{"type": "wandb", "wandb": {"project": "p", "tags": "t"}}]}, "integrations"),
    ({"method": {}}, "method"),
    ({"method": "supervised"}, "method"),
    ({"method": {"type": "rl"}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 51}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "three"}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": True}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 0}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 257}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": "max"}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 0}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": "fast"}}}}, "method"),
    ({"method": {"type": "supervised", "supervised": "fast"}}, "method"),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0}}}}, "method"),
    ({"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 2.5}}}}, "method"),
    ({"method": {"type": "reinforcement", "reinforcement": {}}}, "method"),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {"compute_multiplier": 11}}}}, "method"),
    ({"method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {"reasoning_effort": "max"}}}}, "method"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters"),
    ({"hyperparameters": {"learning_rate_multiplier": -1}}, "hyperparameters"),
]

# Bodies the document accepts that the sandbox must take too (edges of each range, nulls, "auto").
ACCEPTED_JOB_BODIES: list[dict[str, Any]] = [
    {"suffix": "x" * 64, "seed": 0},
    {"suffix": None, "seed": None, "validation_file": None, "integrations": None, "metadata": None},
    {"seed": 2**31 - 1, "metadata": {"team": "ml", "ftbot_suffix": "s"}},
    {"integrations": [{"type": "wandb", "wandb": {"project": "p", "name": None, "entity": None, "tags": ["a"]}}]},
    {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 50, "batch_size": 256, "learning_rate_multiplier": 0.01}}}},
    {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}}}},
    {"method": {"type": "supervised"}},
    {"hyperparameters": {"n_epochs": 1, "batch_size": 1}},
    {"method": {"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {"compute_multiplier": 10, "reasoning_effort": "low", "eval_interval": 1}}}},
]


def test_job_bodies_the_document_refuses_are_refused_and_the_ones_it_takes_are_taken(api: Contract) -> None:
    fid = _upload(api)["id"]
    dpo = _upload(api, dpo_jsonl(12), name="dpo.jsonl")["id"]
    create = _request_schema("create_job")
    base = {"model": MODEL, "training_file": fid}
    for change, param in REFUSED_JOB_BODIES:
        body = {k: v for k, v in (base | change).items() if v is not None}
        assert not create.is_valid(body), f"the document accepts {change}: not a refusal case"
        api.refused("POST", "/v1/fine_tuning/jobs", param, json=body)
    for change in ACCEPTED_JOB_BODIES:
        body = base | change
        assert create.is_valid(body), change
        job = api.call("POST", "/v1/fine_tuning/jobs", json=body)
        assert job["status"] == "validating_files" and job["seed"] >= 0
    beta = {"model": MODEL, "training_file": dpo, "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 2}}}}
    assert create.is_valid(beta)
    assert api.call("POST", "/v1/fine_tuning/jobs", json=beta)["method"]["dpo"]["hyperparameters"]["beta"] == 2
    # well-formed, refused by the API all the same
    api.refused("POST", "/v1/fine_tuning/jobs", "model", json={"model": "gpt-0", "training_file": fid})
    api.refused("POST", "/v1/fine_tuning/jobs", "training_file", json={"model": MODEL, "training_file": "file-nope"})
    api.refused("POST", "/v1/fine_tuning/jobs", "validation_file", json=base | {"validation_file": "file-nope"})
    err = api.call("POST", "/v1/fine_tuning/jobs", 400, content=b"{not json", headers={"Content-Type": "application/json"})
    assert err["type"] == "invalid_request_error"


def test_a_job_through_its_lifecycle_every_answer_as_documented(api: Contract, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.5
    fid = _upload(api)["id"]
    val = _upload(api, chat_jsonl(4), name="val.jsonl")["id"]
    job = api.call(
        "POST", "/v1/fine_tuning/jobs",
        json={"model": MODEL, "training_file": fid, "validation_file": val, "suffix": "contract", "seed": 3, "metadata": {"k": "v"},
              "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}}},
    )
    jid = job["id"]
    api.refused("POST", f"/v1/fine_tuning/jobs/{jid}/resume", "fine_tune_id")  # not paused
    running = wait_for(lambda: api.call("GET", f"/v1/fine_tuning/jobs/{jid}")["status"] == "running", timeout=20)
    assert running
    paused = api.call("POST", f"/v1/fine_tuning/jobs/{jid}/pause")
    assert paused["status"] == "paused"  # valid only with the reference's statuses added (note 4)
    assert not _validator(_pointer("components", "schemas", "FineTuningJob"), STRICT).is_valid(paused)
    api.refused("POST", f"/v1/fine_tuning/jobs/{jid}/pause", "fine_tune_id")  # paused already
    assert api.call("POST", f"/v1/fine_tuning/jobs/{jid}/resume")["status"] == "queued"
    page = api.call("GET", "/v1/fine_tuning/jobs", params={"limit": 5, "metadata[k]": "v"})
    assert [j["id"] for j in page["data"]] == [jid]
    assert api.call("GET", "/v1/fine_tuning/jobs", params={"metadata[k]": "w"})["data"] == []
    api.refused("GET", "/v1/fine_tuning/jobs", "limit", params={"limit": 0})
    done = wait_for(lambda: (j := api.call("GET", f"/v1/fine_tuning/jobs/{jid}"))["status"] == "succeeded" and j, timeout=30)
    assert done["fine_tuned_model"].startswith(f"ft:{MODEL}:") and ":contract:" in done["fine_tuned_model"]
    assert done["trained_tokens"] > 0 and done["result_files"]
    events = api.call("GET", f"/v1/fine_tuning/jobs/{jid}/events", params={"limit": 100})
    assert {"message", "metrics"} <= {e["type"] for e in events["data"]}
    older = api.call("GET", f"/v1/fine_tuning/jobs/{jid}/events", params={"after": events["data"][0]["id"], "limit": 2})
    assert older["data"][0]["id"] == events["data"][1]["id"]
    checkpoints = api.call("GET", f"/v1/fine_tuning/jobs/{jid}/checkpoints")
    assert checkpoints["data"] and checkpoints["data"][0]["step_number"] == 6
    api.refused("POST", f"/v1/fine_tuning/jobs/{jid}/cancel", "fine_tune_id")  # ended already
    for action in ("get", "cancel", "pause", "resume", "events", "checkpoints"):
        method, path = ("GET", "/v1/fine_tuning/jobs/ftjob-nope") if action == "get" else (
            ("GET" if action in {"events", "checkpoints"} else "POST"), f"/v1/fine_tuning/jobs/ftjob-nope/{action}"
        )
        assert api.call(method, path, 404)["code"] == "fine_tune_not_found"
    # a job without a validation file: its checkpoints carry null validation metrics (note 3)
    plain = api.call("POST", "/v1/fine_tuning/jobs", json={"model": MODEL, "training_file": fid, "hyperparameters": {"n_epochs": 1, "batch_size": 12}})
    sandbox.state.timing.step_seconds = 0.01
    wait_for(lambda: api.call("GET", f"/v1/fine_tuning/jobs/{plain['id']}")["status"] == "succeeded", timeout=20)
    assert api.call("GET", f"/v1/fine_tuning/jobs/{plain['id']}/checkpoints")["data"][0]["metrics"]["valid_loss"] is None
    cancelled = api.call("POST", "/v1/fine_tuning/jobs", json={"model": MODEL, "training_file": fid})
    assert api.call("POST", f"/v1/fine_tuning/jobs/{cancelled['id']}/cancel")["status"] == "cancelled"
    # models: the fine-tuned one is listed, read and deleted; a base model cannot be
    models = api.call("GET", "/v1/models")
    assert done["fine_tuned_model"] in {m["id"] for m in models["data"]}
    assert api.call("GET", f"/v1/models/{done['fine_tuned_model']}")["owned_by"] != "system"
    chat = api.call("POST", "/v1/chat/completions", json={"model": done["fine_tuned_model"], "messages": [{"role": "user", "content": "hi"}]})
    assert chat["choices"][0]["message"]["content"]
    api.refused("POST", "/v1/chat/completions", "messages", json={"model": done["fine_tuned_model"], "messages": []})
    assert api.call("DELETE", f"/v1/models/{done['fine_tuned_model']}")["deleted"] is True
    api.refused("GET", f"/v1/models/{done['fine_tuned_model']}", "model", status=404)
    api.refused("DELETE", f"/v1/models/{done['fine_tuned_model']}", "model", status=404)
    assert api.call("DELETE", f"/v1/models/{MODEL}", 403)["code"] == "insufficient_permissions"


@pytest.mark.parametrize("status", ["pausing", "paused", "rebalancing_shards"])
def test_a_held_status_is_served_as_the_reference_answers_it(api: Contract, status: str) -> None:
    """pausing / paused validate against the document with the reference's statuses added; any other
    text is served as it is (what ftbot must take as text), and only the statuses outside the
    reference's list fail the document."""
    fid = _upload(api)["id"]
    jid = api.call("POST", "/v1/fine_tuning/jobs", json={"model": MODEL, "training_file": fid})["id"]
    held = api.http.post(f"/_sandbox/jobs/{jid}/status", json={"status": status}).json()
    assert held["status"] == status
    got = api.http.get(f"/v1/fine_tuning/jobs/{jid}").json()
    assert got["status"] == status
    relaxed = _validator(_pointer("components", "schemas", "FineTuningJob"))
    assert relaxed.is_valid(got) == (status in {"pausing", "paused"})
    if status in {"pausing", "paused"}:
        assert api.call("POST", f"/v1/fine_tuning/jobs/{jid}/resume")["status"] == "queued"
    else:
        api.refused("POST", f"/v1/fine_tuning/jobs/{jid}/resume", "fine_tune_id")
        api.http.delete(f"/_sandbox/jobs/{jid}/status")
        assert api.call("GET", f"/v1/fine_tuning/jobs/{jid}")["status"] in {"validating_files", "queued", "running", "succeeded"}


def test_errors_before_the_route_are_documented_errors_too(api: Contract, sandbox) -> None:  # noqa: ANN001
    r = api.http.get("/v1/fine_tuning/nothing")
    assert r.status_code == 404
    ERROR.validate(r.json())
    r = httpx.get(f"{sandbox.url}/files")  # no key
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    ERROR.validate(r.json())
    sandbox.state.faults.rate, sandbox.state.faults.kinds = 1.0, ("429",)
    assert api.call("GET", "/v1/models", 429)["code"] == "rate_limit_exceeded"


def test_the_webhooks_it_sends_are_the_documented_payloads() -> None:
    names = {"succeeded": "WebhookFineTuningJobSucceeded", "failed": "WebhookFineTuningJobFailed", "cancelled": "WebhookFineTuningJobCancelled"}
    assert set(names) == set(ENDED_TYPES)
    for status, event_type in ENDED_TYPES.items():
        _validator(f"urn:spec#/components/schemas/{names[status]}", STRICT).validate(json.loads(job_event_body(event_type, "ftjob-1")))


def test_every_route_is_covered_and_every_documented_operation_served() -> None:
    """Runs last in this module (pytest keeps file order): what the tests above saw."""
    served = {rule.endpoint for rule in ROUTES.iter_rules() if not rule.endpoint.startswith("ctl_")}
    assert served == set(OPERATIONS)
    documented = {(p, m) for p, ops in DOC["paths"].items() for m in ops if m in {"get", "post", "delete"}}
    assert documented == {op for op in OPERATIONS.values() if op is not None}
    if len(SEEN) < 8:
        pytest.skip("checks what the module's other tests saw: run it with them (the whole file)")
    seen = set().union(*SEEN)
    missing_ok = sorted(e for e in served if (e, "ok") not in seen)
    missing_error = sorted(e for e in served if (e, "error") not in seen)
    assert not missing_ok and not missing_error, (missing_ok, missing_error)

