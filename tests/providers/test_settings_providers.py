"""Which providers the settings enable, the default one, and the one-line errors when one is half set."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.provider.factory import make_providers
from bot.settings import SettingsError, load_settings

SLACK = {"SLACK_BOT_TOKEN": "xoxb-1-secretvalue", "SLACK_SIGNING_SECRET": "shh-signing"}
OPENAI = {"OPENAI_API_KEY": "sk-secret-openai"}
AZURE = {"AZURE_OPENAI_ENDPOINT": "https://acme.openai.azure.com", "AZURE_OPENAI_API_KEY": "azure-secret-key"}
TOGETHER = {"TOGETHER_API_KEY": "together-secret-key"}
SECRETS = ("sk-secret-openai", "azure-secret-key", "together-secret-key", "xoxb-1-secretvalue")


def test_openai_alone_works_as_before() -> None:
    s = load_settings({**SLACK, **OPENAI})
    s.require_for("serve")
    assert s.enabled_providers == ("openai",) and s.provider_default == "openai"
    # Nothing set at all: OpenAI, as before several providers existed (the key is then required).
    bare = load_settings(SLACK)
    assert bare.enabled_providers == ("openai",)
    with pytest.raises(SettingsError, match="^OPENAI_API_KEY is required but not set$"):
        bare.require_for("worker")
    load_settings({**SLACK, "FTBOT_SANDBOX": "1"}).require_for("serve")


def test_every_provider_setting_is_read() -> None:
    s = load_settings({**SLACK, **OPENAI, **AZURE, **TOGETHER, "TOGETHER_BASE_URL": "http://127.0.0.1:9", "TOGETHER_PROJECT_ID": "proj-1", "FTBOT_DEFAULT_PROVIDER": "Azure"})
    assert s.enabled_providers == ("openai", "azure", "together")
    assert (s.azure_endpoint, s.together_base_url, s.together_project_id, s.default_provider) == ("https://acme.openai.azure.com", "http://127.0.0.1:9", "proj-1", "azure")
    assert not any(secret in repr(s) for secret in SECRETS)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({**OPENAI, **AZURE}, "FTBOT_DEFAULT_PROVIDER is required when several providers are enabled (openai, azure)"),
        ({**OPENAI, "FTBOT_DEFAULT_PROVIDER": "together"}, "FTBOT_DEFAULT_PROVIDER is 'together' but that provider is not enabled (enabled: openai)"),
        ({**OPENAI, "FTBOT_DEFAULT_PROVIDER": "mistral"}, "FTBOT_DEFAULT_PROVIDER must be one of openai, azure, together, ray, vertex, got 'mistral'"),
        ({**OPENAI, "AZURE_OPENAI_ENDPOINT": "acme.openai.azure.com", "FTBOT_DEFAULT_PROVIDER": "openai"}, "AZURE_OPENAI_ENDPOINT must be an http(s) URL, got 'acme.openai.azure.com'"),
    ],
)
def test_bad_provider_settings_stop_loading_with_one_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as exc:
        load_settings({**SLACK, **env})
    assert str(exc.value) == line


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"AZURE_OPENAI_API_KEY": "azure-secret-key"}, "AZURE_OPENAI_ENDPOINT is required when AZURE_OPENAI_API_KEY is set"),
        ({"AZURE_OPENAI_ENDPOINT": "https://acme.openai.azure.com"}, "AZURE_OPENAI_API_KEY is required (or install ftbot[azure] to sign in with Entra ID)"),
        ({"TOGETHER_BASE_URL": "https://api.together.xyz"}, "TOGETHER_API_KEY is required when TOGETHER_BASE_URL or TOGETHER_PROJECT_ID is set"),
        ({**AZURE, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "FTBOT_DEFAULT_PROVIDER": "azure"}, "OPENAI_API_KEY is required but not set"),
    ],
)
def test_an_enabled_provider_missing_a_setting_stops_start_up(env: dict[str, str], line: str) -> None:
    s = load_settings({**SLACK, **env})
    with pytest.raises(SettingsError) as exc:
        s.require_for("worker")
    assert str(exc.value) == line
    assert not any(secret in str(exc.value) for secret in SECRETS)
    # The built-in sandbox stands in for keys and endpoints.
    load_settings({**SLACK, **env, "FTBOT_SANDBOX": "1"}).require_for("worker")


def test_sandbox_runs_every_enabled_provider_against_its_own_sandbox() -> None:
    s = load_settings({**SLACK, "FTBOT_SANDBOX": "1", "AZURE_OPENAI_API_KEY": "x", "OPENAI_API_KEY": "sk-x", "FTBOT_DEFAULT_PROVIDER": "azure"})
    providers, servers = make_providers(s, max_retries=0, timeout=5)
    try:
        assert list(providers) == ["openai", "azure"] and len(servers) == 2
        assert str(providers["azure"].client.base_url).endswith("/openai/v1/")
        for p in providers.values():
            f = p.upload_file(b'{"messages": []}\n', "t.jsonl")
            assert p.get_file(f.id).id == f.id
        # Separate sandboxes: a file at one provider is not at the other.
        assert {f.id for f in providers["openai"].list_files()}.isdisjoint({f.id for f in providers["azure"].list_files()})
    finally:
        for server in servers:
            server.stop()


def test_cli_names_the_missing_provider_setting(tmp_path) -> None:  # noqa: ANN001
    env = {"PATH": "/usr/bin:/bin", **SLACK, "AZURE_OPENAI_API_KEY": "azure-secret-key"}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "worker"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "ftbot: AZURE_OPENAI_ENDPOINT is required when AZURE_OPENAI_API_KEY is set"
    assert "azure-secret-key" not in out.stderr + out.stdout
