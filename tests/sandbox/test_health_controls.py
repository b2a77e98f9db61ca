"""The sandbox's crafted-curve and stall controls refuse what they cannot honour."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import chat_jsonl


def _post(sandbox, path: str, body: object) -> tuple[int, dict]:  # noqa: ANN001
    req = urllib.request.Request(f"{sandbox.base}{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def job_id(sandbox) -> str:  # noqa: ANN001
    f = sandbox.state.add_file("t.jsonl", chat_jsonl(10), "fine-tune")
    return sandbox.state.create_job({"model": "gpt-4o-mini-2024-07-18", "training_file": f["id"]})["id"]


def test_curve_and_stall_controls_validate_their_input(sandbox, job_id: str) -> None:  # noqa: ANN001
    assert _post(sandbox, f"/_sandbox/jobs/{job_id}/curve", {"train_loss": [1.0, "NaN", None], "trained_tokens": 5})[0] == 200
    for bad in ({"loss": [1.0]}, {"train_loss": "1.0"}, {"valid_loss": [1.0, "abc"]}, {"train_loss": [True]}, {"trained_tokens": -1}):
        status, body = _post(sandbox, f"/_sandbox/jobs/{job_id}/curve", bad)
        assert status == 400 and body["error"]["message"], bad
    assert _post(sandbox, "/_sandbox/jobs/ftjob-nope/curve", {"train_loss": [1.0]})[0] == 404
    assert _post(sandbox, "/_sandbox/jobs/ftjob-nope/stall", {})[0] == 404
    status, body = _post(sandbox, f"/_sandbox/jobs/{job_id}/stall", {})
    assert status == 200 and body["stalled"] is True
