"""The shipped price table and FTBOT_PRICE_TABLE; `ftbot validate` as a process (exit codes, --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.datasets.pricing import price_for, shipped
from bot.settings import SettingsError, load_settings

TOY = Path(__file__).parent.parent / "data" / "toy_chat_fine_tuning.jsonl"


def test_shipped_table_has_a_date_and_source_and_prefix_matching() -> None:
    table, date, source = shipped()
    assert date and source and table["gpt-4o-mini"] > 0
    assert price_for("gpt-4o-mini-2024-07-18").usd_per_million == table["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06").usd_per_million == table["gpt-4o"]
    assert price_for("ft:gpt-4.1-mini-2025-04-14:acme::x1").usd_per_million == table["gpt-4.1-mini"]
    assert price_for("llama-3") is None
    assert price_for("gpt-4o-mini-2024-07-18", {"gpt-4o-mini-2024-07-18": 1.0}).usd_per_million == 1.0


def test_price_table_setting(tmp_path: Path) -> None:
    good = tmp_path / "prices.json"
    good.write_text('{"gpt-4o-mini": 2.5, "my-model": 1}')
    s = load_settings({"FTBOT_PRICE_TABLE": str(good)}, dotenv_path=None)
    assert dict(s.price_table) == {"gpt-4o-mini": 2.5, "my-model": 1.0}
    for content, words in (("not json", "not valid JSON"), ("[1]", "JSON object"), ('{"m": "cheap"}', "must be a number")):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(SettingsError) as exc:
            load_settings({"FTBOT_PRICE_TABLE": str(bad)}, dotenv_path=None)
        assert str(exc.value).startswith("FTBOT_PRICE_TABLE: ") and words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({"FTBOT_PRICE_TABLE": str(tmp_path / "missing.json")}, dotenv_path=None)


def ftbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_validate_exit_codes_and_json(tmp_path: Path) -> None:
    out = ftbot("validate", str(TOY), "--model", "gpt-3.5-turbo-0125")
    assert out.returncode == 1, out.stderr
    assert "5 examples: the provider requires at least 10" in out.stdout and "No system message — line 3" in out.stdout

    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}) for i in range(12)))
    prices = tmp_path / "p.json"
    prices.write_text('{"gpt-4o-mini": 1000}')
    out = ftbot("validate", str(clean), "--json", env={"FTBOT_PRICE_TABLE": str(prices)})
    assert out.returncode == 0, out.stderr  # warnings (no system message) are allowed
    data = json.loads(out.stdout)
    assert data["verdict"] == "warnings" and data["examples"] == 12 and data["tokens"]["usd_per_million"] == 1000

    assert ftbot("validate").returncode == 2
    assert ftbot("validate", str(tmp_path / "nope.jsonl")).returncode == 2
    prices.write_text("{")
    assert ftbot("validate", str(clean), env={"FTBOT_PRICE_TABLE": str(prices)}).returncode == 2


def test_validate_for_a_ray_cluster_shows_no_price_and_no_openai_notice(tmp_path: Path) -> None:
    """Ray trains on the team's own GPUs: the report must not cost it at gpt-4o-mini's price."""
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}) for i in range(12)))
    out = ftbot("validate", str(clean), "--provider", "ray")
    assert out.returncode == 0, out.stderr
    assert "billed: 3 epochs x" in out.stdout and "your own cluster: no price" in out.stdout, out.stdout
    assert "$" not in out.stdout and "OpenAI" not in out.stdout and "gpt-4o-mini" not in out.stdout
    assert "Qwen/Qwen2.5-0.5B-Instruct" in out.stdout and "approximation" in out.stdout and "retir" not in out.stdout
    data = json.loads(ftbot("validate", str(clean), "--provider", "ray", "--json").stdout)
    assert data["tokens"]["epochs"] == 3 and data["tokens"]["estimated_usd"] is None and data["model_notice"] is None
    # An operator's own price for the cluster still applies; OpenAI's published list never does.
    prices = tmp_path / "p.json"
    prices.write_text('{"Qwen/Qwen2.5-0.5B-Instruct": 0.5}')
    priced = json.loads(ftbot("validate", str(clean), "--provider", "ray", "--json", env={"FTBOT_PRICE_TABLE": str(prices)}).stdout)
    assert priced["tokens"]["usd_per_million"] == 0.5
    gpt_on_ray = json.loads(ftbot("validate", str(clean), "--provider", "ray", "--model", "gpt-4o-mini-2024-07-18", "--json").stdout)
    assert gpt_on_ray["tokens"]["estimated_usd"] is None and gpt_on_ray["model_notice"] is None
