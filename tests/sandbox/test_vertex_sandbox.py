"""The Vertex sandbox over plain HTTP: Google's JSON conventions, the states, paging, and each
refusal Vertex makes (the adapter tests drive it through the real google-genai client)."""

from __future__ import annotations

import re

import httpx
import pytest

from bot.sandbox.vertex_state import PROJECT
from tests.conftest import wait_for
from tests.vertex_sandbox import FLASH, _vertex_server, gemini_chat, vertex_sandbox  # noqa: F401

AUTH = {"Authorization": "Bearer sandbox"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _base(server, location: str = "us-central1", version: str = "v1beta1") -> str:  # noqa: ANN001
    return f"{server.base}/{version}/projects/{PROJECT}/locations/{location}"


def _put(server, name: str, content: bytes) -> str:  # noqa: ANN001
    """An object in the sandbox bucket, written through the emulator's own upload route."""
    r = httpx.post(f"{server.storage_url}/upload/storage/v1/b/{server.bucket}/o", params={"uploadType": "media", "name": name}, content=content)
    assert r.status_code == 200, r.text
    return f"gs://{server.bucket}/{name}"


def _body(uri: str, **hyper) -> dict:  # noqa: ANN003
    return {"baseModel": FLASH, "supervisedTuningSpec": {"trainingDatasetUri": uri, "hyperParameters": {"epochCount": "2", **hyper}}, "labels": {"team": "ml"}}


def _create(server, body: dict, location: str = "us-central1") -> httpx.Response:  # noqa: ANN001
    return httpx.post(f"{_base(server, location)}/tuningJobs", json=body, headers=AUTH)


def _google_error(r: httpx.Response, http: int, status: str) -> str:
    assert r.status_code == http, r.text
    err = r.json()["error"]
    assert set(err) == {"code", "message", "status"} and err["code"] == http and err["status"] == status
    return err["message"]


def test_a_job_in_googles_json_conventions_through_its_states(vertex_sandbox) -> None:  # noqa: ANN001, F811
    t = vertex_sandbox.world.timing
    t.queued_seconds, t.validating_seconds, t.step_seconds = 10, 20, 5
    uri = _put(vertex_sandbox, "raw/train.jsonl", gemini_chat(16))
    httpx.post(f"{vertex_sandbox.base}/_sandbox/clock", json={})  # time moves only when told
    r = _create(vertex_sandbox, _body(uri, adapterSize="ADAPTER_SIZE_EIGHT"))
    assert r.status_code == 200
    job = r.json()
    assert re.fullmatch(r"projects/\d+/locations/us-central1/tuningJobs/\d+", job["name"])
    assert job["state"] == "JOB_STATE_PENDING" and job["tuningJobState"] == "TUNING_JOB_STATE_WAITING_FOR_QUOTA"
    assert RFC3339.match(job["createTime"]) and job["labels"] == {"team": "ml"}
    assert job["supervisedTuningSpec"]["hyperParameters"] == {"epochCount": "2", "learningRateMultiplier": 1.0, "adapterSize": "ADAPTER_SIZE_EIGHT"}
    url = f"{vertex_sandbox.base}/v1/{job['name']}"

    def after(seconds: float) -> dict:
        httpx.post(f"{vertex_sandbox.base}/_sandbox/clock", json={"advance": seconds})
        return httpx.get(url, headers=AUTH).json()

    j = after(10)
    assert (j["state"], j["tuningJobState"]) == ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_PROCESSING_DATASET") and RFC3339.match(j["startTime"])
    j = after(20)
    assert (j["state"], j["tuningJobState"]) == ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_WAITING_FOR_CAPACITY")
    j = after(10 + 5)  # one step of 4 (16 examples, 8 a step, 2 epochs)
    assert (j["tuningJobState"], j["tuningJobMetadata"]) == ("TUNING_JOB_STATE_TUNING", {"completedEpochCount": "0", "completedStepCount": "1"})
    j = after(5)
    assert j["tuningJobMetadata"] == {"completedEpochCount": "1", "completedStepCount": "2"}
    j = after(10)
    assert (j["state"], j["tuningJobState"]) == ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_POST_PROCESSING") and "tunedModel" not in j
    j = after(10)
    assert j["state"] == "JOB_STATE_SUCCEEDED"
    stats = j["tuningDataStats"]["supervisedTuningDataStats"]
    assert stats["tuningDatasetExampleCount"] == "16" and stats["tuningStepCount"] == "4"
    assert all(isinstance(stats[k], str) and stats[k].isdigit() for k in ("totalBillableTokenCount", "tuningStepCount"))
    assert j["tuningJobMetadata"] == {"completedEpochCount": "2", "completedStepCount": "4"}
    assert RFC3339.match(j["endTime"]) and RFC3339.match(j["startTime"]) and "tuningJobState" not in j
    tuned = j["tunedModel"]
    assert tuned["model"].endswith("@1") and [c["step"] for c in tuned["checkpoints"]] == ["2", "4"]
    # The tuned endpoint answers in generateContent's shape.
    r = httpx.post(f"{vertex_sandbox.base}/v1beta1/{tuned['endpoint']}:generateContent", json={"contents": [{"role": "user", "parts": [{"text": "g 3"}]}]}, headers=AUTH)
    body = r.json()
    assert body["candidates"][0]["content"]["role"] == "model" and body["candidates"][0]["finishReason"] == "STOP"
    assert set(body["usageMetadata"]) == {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}
    # Deleting the model: the endpoint answers no more.
    mid = tuned["model"].split("/")[-1].split("@")[0]
    assert httpx.delete(f"{_base(vertex_sandbox)}/models/{mid}", headers=AUTH).status_code == 200
    _google_error(httpx.post(f"{vertex_sandbox.base}/v1beta1/{tuned['endpoint']}:generateContent", json={"contents": [{"role": "user", "parts": [{"text": "g 3"}]}]}, headers=AUTH), 404, "NOT_FOUND")
    _google_error(httpx.delete(f"{_base(vertex_sandbox)}/models/{mid}", headers=AUTH), 404, "NOT_FOUND")


def test_cancel_answers_empty_then_cancelling_then_cancelled(vertex_sandbox) -> None:  # noqa: ANN001, F811
    vertex_sandbox.world.timing.queued_seconds = 10
    httpx.post(f"{vertex_sandbox.base}/_sandbox/clock", json={})
    job = _create(vertex_sandbox, _body(_put(vertex_sandbox, "raw/c.jsonl", gemini_chat(4)))).json()
    r = httpx.post(f"{vertex_sandbox.base}/v1beta1/{job['name']}:cancel", headers=AUTH)
    assert r.status_code == 200 and r.json() == {}
    assert httpx.get(f"{vertex_sandbox.base}/v1beta1/{job['name']}", headers=AUTH).json()["state"] == "JOB_STATE_CANCELLING"
    httpx.post(f"{vertex_sandbox.base}/_sandbox/clock", json={"advance": 10})
    j = httpx.get(f"{vertex_sandbox.base}/v1beta1/{job['name']}", headers=AUTH).json()
    assert j["state"] == "JOB_STATE_CANCELLED"
    assert j["error"]["code"] == 1 and "tunedModel" not in j
    _google_error(httpx.post(f"{vertex_sandbox.base}/v1beta1/{job['name']}:cancel", headers=AUTH), 400, "FAILED_PRECONDITION")


def test_list_pages_newest_first_and_filters_by_labels(vertex_sandbox) -> None:  # noqa: ANN001, F811
    assert httpx.get(f"{_base(vertex_sandbox)}/tuningJobs", headers=AUTH).json() == {}
    uri = _put(vertex_sandbox, "raw/l.jsonl", gemini_chat(3))
    names = []
    for i in range(5):
        body = _body(uri)
        body["labels"] = {"ftbot_key": f"k{i}"}
        names.append(_create(vertex_sandbox, body).json()["name"])
    got, token = [], None
    while True:
        params = {"pageSize": 2} | ({"pageToken": token} if token else {})
        page = httpx.get(f"{_base(vertex_sandbox)}/tuningJobs", params=params, headers=AUTH).json()
        assert len(page["tuningJobs"]) <= 2
        got += [j["name"] for j in page["tuningJobs"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert got == names[::-1]
    found = httpx.get(f"{_base(vertex_sandbox)}/tuningJobs", params={"filter": 'labels.ftbot_key="k3"'}, headers=AUTH).json()
    assert [j["name"] for j in found["tuningJobs"]] == [names[3]]
    _google_error(httpx.get(f"{_base(vertex_sandbox)}/tuningJobs", params={"pageToken": "garbage!"}, headers=AUTH), 400, "INVALID_ARGUMENT")


# ---- what Vertex refuses --------------------------------------------------------------------


def test_refuses_an_unknown_base_model(vertex_sandbox) -> None:  # noqa: ANN001, F811
    body = _body(_put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3)))
    for base in ("gemini-2.5-flash", "gpt-4o-mini-2024-07-18"):
        body["baseModel"] = base
        assert "not supported for supervised tuning" in _google_error(_create(vertex_sandbox, body), 400, "INVALID_ARGUMENT")
    assert vertex_sandbox.world.jobs == {}


def test_refuses_data_not_in_cloud_storage(vertex_sandbox) -> None:  # noqa: ANN001, F811
    for uri in ("https://example.com/train.jsonl", "file-abc123", "/tmp/train.jsonl"):
        assert "gs://" in _google_error(_create(vertex_sandbox, _body(uri)), 400, "INVALID_ARGUMENT")
    body = _body(_put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3)))
    body["supervisedTuningSpec"]["validationDatasetUri"] = "s3://bucket/val.jsonl"
    assert "validationDatasetUri" in _google_error(_create(vertex_sandbox, body), 400, "INVALID_ARGUMENT")
    assert vertex_sandbox.world.jobs == {}


def test_refuses_a_bad_adapter_size(vertex_sandbox) -> None:  # noqa: ANN001, F811
    uri = _put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3))
    for size in ("ADAPTER_SIZE_THREE", "ADAPTER_SIZE_THIRTY_TWO", 4):
        assert "adapterSize" in _google_error(_create(vertex_sandbox, _body(uri, adapterSize=size)), 400, "INVALID_ARGUMENT")
    assert vertex_sandbox.world.jobs == {}


def test_refuses_a_region_that_does_not_tune(vertex_sandbox) -> None:  # noqa: ANN001, F811
    body = _body(_put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3)))
    for region in ("us-east1", "asia-northeast1", "global"):
        assert "not supported in location" in _google_error(_create(vertex_sandbox, body, region), 400, "INVALID_ARGUMENT")
    assert _create(vertex_sandbox, body, "europe-west4").status_code == 200


def test_refuses_bad_hyperparameters_and_labels(vertex_sandbox) -> None:  # noqa: ANN001, F811
    uri = _put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3))
    _google_error(_create(vertex_sandbox, _body(uri, epochCount="0")), 400, "INVALID_ARGUMENT")
    _google_error(_create(vertex_sandbox, _body(uri, learningRateMultiplier=-1)), 400, "INVALID_ARGUMENT")
    body = _body(uri)
    body["labels"] = {"Team": "ML"}
    _google_error(_create(vertex_sandbox, body), 400, "INVALID_ARGUMENT")


def test_refuses_without_credentials_or_for_another_project(vertex_sandbox) -> None:  # noqa: ANN001, F811
    body = _body(_put(vertex_sandbox, "raw/r.jsonl", gemini_chat(3)))
    _google_error(httpx.post(f"{_base(vertex_sandbox)}/tuningJobs", json=body), 401, "UNAUTHENTICATED")
    other = f"{vertex_sandbox.base}/v1beta1/projects/someone-else/locations/us-central1/tuningJobs"
    assert "denied" in _google_error(httpx.post(other, json=body, headers=AUTH), 403, "PERMISSION_DENIED")
    _google_error(httpx.get(f"{_base(vertex_sandbox)}/tuningJobs/123", headers=AUTH), 404, "NOT_FOUND")
    _google_error(httpx.get(f"{vertex_sandbox.base}/v1beta1/nothing/here", headers=AUTH), 404, "NOT_FOUND")


def test_a_bad_dataset_fails_the_job_while_processing(vertex_sandbox) -> None:  # noqa: ANN001, F811
    bad = _put(vertex_sandbox, "raw/openai.jsonl", b'{"messages": [{"role": "user", "content": "hi"}]}\n')
    job = _create(vertex_sandbox, _body(bad)).json()
    j = wait_for(lambda: (x := httpx.get(f"{vertex_sandbox.base}/v1beta1/{job['name']}", headers=AUTH).json())["state"] == "JOB_STATE_FAILED" and x)
    assert j["error"]["code"] == 3 and "no contents" in j["error"]["message"]


# ---- test controls --------------------------------------------------------------------------


def test_faults_answer_in_googles_shape_and_drop_closes_the_connection(vertex_sandbox) -> None:  # noqa: ANN001, F811
    body = _body(_put(vertex_sandbox, "raw/f.jsonl", gemini_chat(3)))
    httpx.post(f"{vertex_sandbox.base}/_sandbox/faults", json={"kind": "503", "path_contains": "/tuningJobs"})
    _google_error(_create(vertex_sandbox, body), 503, "UNAVAILABLE")
    assert vertex_sandbox.world.jobs == {}
    httpx.post(f"{vertex_sandbox.base}/_sandbox/faults", json={"kind": "drop", "method": "POST"})
    with pytest.raises(httpx.RemoteProtocolError):
        _create(vertex_sandbox, body)
    assert len(vertex_sandbox.world.jobs) == 1  # made, though nobody heard
    assert _create(vertex_sandbox, body).status_code == 200  # the fault was used up
    jid = next(iter(vertex_sandbox.world.jobs))
    failed = httpx.post(f"{vertex_sandbox.base}/_sandbox/tuningJobs/{jid}/fail", json={"message": "boom", "code": 13}).json()
    assert failed["state"] == "JOB_STATE_FAILED" and failed["error"] == {"code": 13, "message": "boom"}
