"""Vertex AI's settings: what enables it, and one line naming whatever is missing or wrong."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.provider.base import JobSpec
from bot.provider.factory import make_providers
from bot.provider.vertex_adapter import VertexProvider
from bot.settings import SettingsError, load_settings

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1-secretvalue", "SLACK_SIGNING_SECRET": "shh-signing"}
VERTEX = {"GOOGLE_CLOUD_PROJECT": "acme-ml", "FTBOT_VERTEX_LOCATION": "us-central1", "FTBOT_VERTEX_BUCKET": "gs://acme-ftbot/data"}


def _service_account_file(tmp_path) -> str:  # noqa: ANN001
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": "acme-ml", "private_key_id": "k1", "private_key": pem,
        "client_email": "ftbot@acme-ml.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",  # never called: start-up only checks the file
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return str(path)


def test_vertex_settings_are_read_and_enable_it(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", _service_account_file(tmp_path))
    s = load_settings({**SLACK, **VERTEX, "FTBOT_VERTEX_PRICE_PER_MTOK": "3.5"})
    assert s.enabled_providers == ("vertex",) and s.provider_default == "vertex"
    assert (s.vertex_project, s.vertex_location, s.vertex_bucket, s.vertex_price_per_mtok) == ("acme-ml", "us-central1", "gs://acme-ftbot/data", 3.5)
    s.require_for("serve")  # nothing missing: the key file is a usable service account
    # GOOGLE_CLOUD_PROJECT alone (many Google Cloud hosts set it) does not turn Vertex on.
    assert load_settings({**SLACK, "OPENAI_API_KEY": "sk-x", "GOOGLE_CLOUD_PROJECT": "acme-ml"}).enabled_providers == ("openai",)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"FTBOT_VERTEX_LOCATION": "us-east1"}, "FTBOT_VERTEX_LOCATION must be a region where Gemini tuning runs (us-central1 or europe-west4), got 'us-east1'"),
        ({"FTBOT_VERTEX_BUCKET": "acme-ftbot"}, "FTBOT_VERTEX_BUCKET must be a gs:// URI such as gs://my-bucket or gs://my-bucket/ftbot, got 'acme-ftbot'"),
        ({"FTBOT_VERTEX_BUCKET": "gs://Bad_Bucket!"}, "FTBOT_VERTEX_BUCKET 'Bad_Bucket!' is not a valid Cloud Storage bucket name, got 'gs://Bad_Bucket!'"),
        ({"FTBOT_VERTEX_PRICE_PER_MTOK": "free"}, "FTBOT_VERTEX_PRICE_PER_MTOK must be a number, got 'free'"),
    ],
)
def test_a_wrong_vertex_setting_stops_loading_with_one_line(env, line) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError) as err:
        load_settings({**SLACK, **VERTEX, **env})
    assert str(err.value) == line


def test_missing_vertex_settings_and_credentials_are_named(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nowhere.json"))
    s = load_settings({**SLACK, "FTBOT_VERTEX_BUCKET": "gs://acme-ftbot"})
    with pytest.raises(SettingsError) as err:
        s.require_for("worker")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("GOOGLE_CLOUD_PROJECT and FTBOT_VERTEX_LOCATION are required but not set; ")
    assert "GOOGLE_APPLICATION_CREDENTIALS names" in msg and "not a readable file" in msg
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "authorized_user"}')
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(bad))
    with pytest.raises(SettingsError, match="^GOOGLE_APPLICATION_CREDENTIALS is not a usable credentials file"):
        load_settings({**SLACK, **VERTEX}).require_for("serve")
    # The sandbox stands in for all of it.
    load_settings({**SLACK, "FTBOT_SANDBOX": "1", "FTBOT_VERTEX_LOCATION": "europe-west4"}).require_for("serve")


def test_sandbox_mode_builds_vertex_on_its_sandbox(tmp_path) -> None:  # noqa: ANN001
    s = load_settings({**SLACK, "FTBOT_SANDBOX": "1", "FTBOT_VERTEX_LOCATION": "europe-west4", "OPENAI_API_KEY": "sk-x", "FTBOT_DEFAULT_PROVIDER": "openai"})
    providers, servers = make_providers(s, max_retries=0, timeout=5)
    try:
        vertex = providers["vertex"]
        assert isinstance(vertex, VertexProvider) and vertex.location == "europe-west4"
        f = vertex.upload_file(b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n', "t.jsonl")
        job = vertex.create_job(JobSpec(model="gemini-3.5-flash-lite", training_file=f.id), idempotency_key="k")
        assert vertex.get_job(job.id).status in {"queued", "running"}
    finally:
        for server in servers:
            server.stop()
