"""`ftbot eval` as a shell or CI runs it: the real openai client against the sandbox, a local file,
text or JSON, exit 0 / 1 (the model scores below the other on the first score) / 2 (bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import date_env
from tests.evals.conftest import BASE, expected, train
from tests.evals.crafted import dataset, jsonl


def _run(sandbox, tmp_path, *args: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": sandbox.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", **date_env()}
    return subprocess.run([sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "eval", *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_eval_from_a_shell(sandbox, tmp_path) -> None:  # noqa: ANN001
    rows = dataset()
    _, model, _ = train(sandbox, rows)
    data = tmp_path / "examples.jsonl"
    data.write_bytes(jsonl(rows))
    out = _run(sandbox, tmp_path, model, "--data", str(data), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    want = expected(rows, model, BASE, sandbox.state.memory.noise)
    assert result["comparisons"]["exact"]["model"] == pytest.approx(want["exact"]["model"])
    assert result["comparisons"]["exact"]["baseline"] == pytest.approx(want["exact"]["baseline"])
    assert result["scored"] == 12 and result["baseline"] == BASE
    asked = sum(sandbox.state.memory.asked.values())
    # the same request again: answered from the store, as text
    again = _run(sandbox, tmp_path, model, "--data", str(data))
    assert again.returncode == 0 and "exact match" in again.stdout and "12 of 12 examples scored" in again.stdout
    assert sum(sandbox.state.memory.asked.values()) == asked
    # the gate: the base model against the fine-tuned one scores lower on the first score
    worse = _run(sandbox, tmp_path, BASE, "--data", str(data), "--vs", model, "--n", "12")
    assert worse.returncode == 1, worse.stderr[-2000:]


def test_bad_input_exits_2(sandbox, tmp_path) -> None:  # noqa: ANN001
    assert _run(sandbox, tmp_path, "gpt-4o-mini-2024-07-18", "--data", str(tmp_path / "missing.jsonl")).returncode == 2
    empty = tmp_path / "no_answers.jsonl"
    empty.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    out = _run(sandbox, tmp_path, "gpt-4o-mini-2024-07-18", "--data", str(empty), "--vs", "gpt-4o-2024-08-06")
    assert out.returncode == 2 and "no example to score" in out.stderr
    out = _run(sandbox, tmp_path, "gpt-4o-mini-2024-07-18", "--data", str(empty))
    assert out.returncode == 2 and "--vs" in out.stderr
    out = _run(sandbox, tmp_path, "ft:gpt-4o-mini-2024-07-18:x::nope", "--data", str(empty))
    assert out.returncode == 2 and "Unknown model" in out.stderr


def test_a_run_that_failed_while_the_provider_was_down_is_run_again(sandbox, tmp_path) -> None:  # noqa: ANN001
    from bot.sandbox.state import Faults

    rows = dataset()
    _, model, _ = train(sandbox, rows)
    data = tmp_path / "examples.jsonl"
    data.write_bytes(jsonl(rows))
    # The provider answering no chat request (its deployment not there yet): the run fails (exit 2).
    sandbox.state.faults = Faults(rate=1.0, kinds=("404",), path_contains="/chat/completions")
    down = _run(sandbox, tmp_path, model, "--data", str(data), "--n", "2")
    assert down.returncode == 2, down.stdout + down.stderr[-2000:]
    assert "(failed)" in down.stdout and "cannot be asked" in down.stdout, down.stdout
    # Back up: the same command runs the request again (and says so), instead of the old failure.
    sandbox.state.faults = Faults()
    again = _run(sandbox, tmp_path, model, "--data", str(data), "--n", "2", "--json")
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    result = json.loads(again.stdout)
    assert result["status"] == "done" and result["scored"] == 2 and result["rerun_of"]["status"] == "failed"
    assert "cannot be asked" in result["rerun_of"]["error"]
    text = _run(sandbox, tmp_path, model, "--data", str(data), "--n", "2")
    assert text.returncode == 0 and f"Ran again: the earlier run #{result['rerun_of']['run']}" not in text.stdout and "2 of 2 examples scored (done)" in text.stdout
