"""Settings: every variable of the contract, one-line errors, secrets kept out of sight."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.settings import SettingsError, load_settings

GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-secretvalue", "SLACK_SIGNING_SECRET": "shh-signing", "OPENAI_API_KEY": "sk-secret-key-abcdef"}


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///ftbot.db"
    assert s.port == 3000
    assert s.poll_interval == 30.0
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.approvals_required == 2
    assert s.approval_ttl_hours == 24.0
    assert s.job_budget_usd is None
    assert s.sandbox is False
    assert s.operators == () and s.approvers == ()
    assert (s.http_max_body_bytes, s.http_connection_limit, s.http_channel_timeout) == (1024 * 1024, 100, 30)


def test_every_variable_is_read() -> None:
    s = load_settings(
        {
            **GOOD,
            "SLACK_APP_TOKEN": "xapp-1-abc",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
            "OPENAI_BASE_URL": "http://127.0.0.1:8/v1",
            "DATABASE_URL": "postgres://u:p@db.example:5432/ft",
            "PORT": "8080",
            "FTBOT_POLL_INTERVAL": "5",
            "FTBOT_NOTIFY_CHANNEL": "C0123ABC",
            "FTBOT_OPERATORS": "U01, S02GROUP",
            "FTBOT_APPROVERS": "U03",
            "FTBOT_APPROVALS_REQUIRED": "3",
            "FTBOT_APPROVAL_CHANNEL": "C0999",
            "FTBOT_APPROVAL_TTL_HOURS": "12",
            "FTBOT_JOB_BUDGET_USD": "25.5",
            "FTBOT_SANDBOX": "1",
            "FTBOT_HTTP_MAX_BODY_BYTES": "262144",
            "FTBOT_HTTP_CONNECTION_LIMIT": "500",
            "FTBOT_HTTP_CHANNEL_TIMEOUT": "15",
        }
    )
    assert (s.http_max_body_bytes, s.http_connection_limit, s.http_channel_timeout) == (262144, 500, 15)
    assert s.database_url == "postgresql+psycopg://u:p@db.example:5432/ft"
    assert (s.port, s.poll_interval, s.notify_channel) == (8080, 5.0, "C0123ABC")
    assert s.operators == ("U01", "S02GROUP") and s.approvers == ("U03",)
    assert (s.approvals_required, s.approval_channel, s.approval_ttl_hours) == (3, "C0999", 12.0)
    assert s.job_budget_usd == 25.5 and s.sandbox is True


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"FTBOT_POLL_INTERVAL": "soon"}, "FTBOT_POLL_INTERVAL"),
        ({"FTBOT_POLL_INTERVAL": "0"}, "FTBOT_POLL_INTERVAL"),
        ({"FTBOT_APPROVALS_REQUIRED": "0"}, "FTBOT_APPROVALS_REQUIRED"),
        ({"FTBOT_APPROVALS_REQUIRED": "two"}, "FTBOT_APPROVALS_REQUIRED"),
        ({"FTBOT_APPROVAL_TTL_HOURS": "nan"}, "FTBOT_APPROVAL_TTL_HOURS"),
        ({"FTBOT_JOB_BUDGET_USD": "-1"}, "FTBOT_JOB_BUDGET_USD"),
        ({"FTBOT_SANDBOX": "maybe"}, "FTBOT_SANDBOX"),
        ({"FTBOT_NOTIFY_CHANNEL": "#general"}, "FTBOT_NOTIFY_CHANNEL"),
        ({"FTBOT_OPERATORS": "alice"}, "FTBOT_OPERATORS"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"DATABASE_URL": "not a url at all"}, "DATABASE_URL"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token-secret"}, "SLACK_BOT_TOKEN"),
        ({"FTBOT_HTTP_MAX_BODY_BYTES": "1mb"}, "FTBOT_HTTP_MAX_BODY_BYTES"),
        ({"FTBOT_HTTP_MAX_BODY_BYTES": "10"}, "FTBOT_HTTP_MAX_BODY_BYTES"),
        ({"FTBOT_HTTP_CONNECTION_LIMIT": "0"}, "FTBOT_HTTP_CONNECTION_LIMIT"),
        ({"FTBOT_HTTP_CHANNEL_TIMEOUT": "0.5"}, "FTBOT_HTTP_CHANNEL_TIMEOUT"),
    ],
)
def test_malformed_value_is_one_line_naming_it(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    msg = str(err.value)
    assert names in msg and "\n" not in msg
    assert "user-token-secret" not in msg  # a pasted secret is never echoed


def test_missing_required_names_the_variable() -> None:
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        s.require_for("serve")
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN"):
        s.require_for("socket")
    with pytest.raises(SettingsError, match="OPENAI_API_KEY"):
        s.require_for("worker")
    load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "FTBOT_SANDBOX": "1"}).require_for("worker")  # sandbox: no key


def test_secrets_are_not_in_repr() -> None:
    text = repr(load_settings(GOOD))
    for secret in GOOD.values():
        assert secret not in text


def test_dotenv_is_read_and_environment_wins(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nFTBOT_POLL_INTERVAL=7\n")
    monkeypatch.setenv("PORT", "5000")
    monkeypatch.delenv("FTBOT_POLL_INTERVAL", raising=False)
    s = load_settings(dotenv_path=env_file)
    assert (s.port, s.poll_interval) == (5000, 7.0)


def _ftbot(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def test_cli_help_lists_the_processes(tmp_path) -> None:  # noqa: ANN001
    out = _ftbot("--help", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert out.returncode == 0
    for process in ("serve", "socket", "worker", "sandbox", "demo", "db"):
        assert process in out.stdout


def test_cli_bad_setting_gives_one_line_and_exit_2(tmp_path) -> None:  # noqa: ANN001
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-1-secret", "PORT": "eighty"}
    out = _ftbot("serve", env=env, cwd=tmp_path)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == ["ftbot: PORT must be a whole number, got 'eighty'"]
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-1-secret"}
    out = _ftbot("serve", env=env, cwd=tmp_path)
    # Every missing setting at once, not one per attempt.
    assert out.returncode == 2 and out.stderr.strip() == "ftbot: SLACK_SIGNING_SECRET and OPENAI_API_KEY are required but not set"
    assert "xoxb-1-secret" not in out.stderr + out.stdout


def test_everything_missing_is_named_in_one_message() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({}, dotenv_path=None).require_for("serve")
    assert str(err.value) == "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and OPENAI_API_KEY are required but not set"
    with pytest.raises(SettingsError) as err:
        load_settings({"TOGETHER_PROJECT_ID": "proj_1"}, dotenv_path=None).require_for("socket")
    assert str(err.value) == "SLACK_BOT_TOKEN and SLACK_APP_TOKEN are required but not set; TOGETHER_API_KEY is required when TOGETHER_BASE_URL or TOGETHER_PROJECT_ID is set"


def test_with_ray_on_every_missing_setting_is_named_in_one_message() -> None:
    env = {"RAY_ADDRESS": "http://127.0.0.1:8265", "FTBOT_RAY_STORAGE": "/shared/ftbot"}
    with pytest.raises(SettingsError) as err:
        load_settings(env, dotenv_path=None).require_for("worker")
    assert str(err.value).startswith("SLACK_BOT_TOKEN is required but not set; FTBOT_RAY_ENTRYPOINT is required when RAY_ADDRESS is set"), str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings({"RAY_ADDRESS": "http://127.0.0.1:8265", "OPENAI_API_KEY": "", "FTBOT_DEFAULT_PROVIDER": "ray"}, dotenv_path=None).check_providers()
    assert "FTBOT_RAY_ENTRYPOINT is required" in str(err.value) and "FTBOT_RAY_STORAGE is required" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SettingsError) as err:
        load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "OPENAI_API_KEY": "sk-x", "FTBOT_RAY_STORAGE": "/x", "FTBOT_RAY_INFERENCE_URL": "http://v:8000/v1"}, dotenv_path=None).require_for("worker")
    assert "FTBOT_RAY_STORAGE is set but RAY_ADDRESS is not" in str(err.value) and "FTBOT_RAY_INFERENCE_URL is set but RAY_ADDRESS is not" in str(err.value)


def test_cli_version_and_each_commands_help_describes_it_and_its_settings(tmp_path) -> None:  # noqa: ANN001
    from importlib.metadata import version

    from bot.cli import build_parser

    out = _ftbot("--version", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"ftbot {version('ftbot')}"
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert parser.description and len(parser.description) > 20, name  # every command, whoever added it
    needs = {
        "serve": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "TOGETHER_API_KEY", "DATABASE_URL", "PORT"),
        "socket": ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "OPENAI_API_KEY", "DATABASE_URL"),
        "worker": ("SLACK_BOT_TOKEN", "OPENAI_API_KEY", "DATABASE_URL"),
        "sandbox": ("none",),
        "demo": ("none",),
        "validate": ("none", "FTBOT_PRICE_TABLE", "FTBOT_RETIREMENTS"),
        "db": ("DATABASE_URL",),
    }
    for name, settings in needs.items():
        text = _ftbot(name, "--help", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path).stdout
        assert "Settings it needs:" in text, name
        for setting in settings:
            assert setting in text.split("Settings it needs:")[1], (name, setting)
    assert "DATABASE_URL" in _ftbot("db", "upgrade", "--help", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path).stdout
