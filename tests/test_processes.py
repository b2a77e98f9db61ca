"""The console script's processes, run as a user would: `ftbot demo`, `ftbot serve`, `ftbot db upgrade`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bot.slack_standin.requests import SlackRequester
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, date_env, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_dir(parent, *, besides: Path | None = None) -> Path:  # noqa: ANN001
    [run] = [p for p in parent.iterdir() if p.name.startswith("run-2") and p != besides]
    return run


def test_demo_runs_the_whole_lifecycle(tmp_path, app_clock) -> None:  # noqa: ANN001
    app_clock.set("2026-12-20")  # inside the 30-day window, OpenAI still training (the demo's process reads FTBOT_TEST_NOW)
    earlier = tmp_path / "demo" / "run-20261130-120000"
    earlier.mkdir(parents=True)
    (earlier / "loss-chart.png").write_bytes(b"an earlier run's chart")
    # At the default log level, as a new user runs it: the conversation, not start-up chatter.
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path / "demo"), "--steps", "12"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "alembic" not in out.stderr and "skipped" not in out.stderr and " INFO " not in out.stderr, out.stderr[-2000:]
    text = out.stdout
    for seen in ("acme-draft.jsonl`: 4 errors", "[Upload anyway]", "Uploaded as `file-", "/ft start acme-support validation=file-", "[job card]", "[job card edited]", "[thread reply]", "Created fine-tuning job", "succeeded", "[thread: image]", "[webhook] OpenAI -> ftbot /webhooks/openai: fine_tuning.job.succeeded"):
        assert seen in text, seen
    # Events print in the order they happened: each carries its time since the start.
    stamps = [float(m) for m in re.findall(r"^\[\+\s*([\d.]+)s\]", text, re.M)]
    assert len(stamps) > 15 and stamps == sorted(stamps)
    # Each run has its own folder; the earlier one is untouched.
    assert (earlier / "loss-chart.png").read_bytes() == b"an earlier run's chart"
    run = _run_dir(tmp_path / "demo", besides=earlier)
    assert run.name.startswith("run-20261220-") and run.name > earlier.name and (run / "loss-chart.png").read_bytes().startswith(b"\x89PNG")
    assert "refused" not in text.split("\nSummary\n")[0].split("/ft delete-model")[0] and "Together" not in text
    assert (run / "transcript.txt").read_text() in text
    summary = text.split("\nSummary\n")[1]
    for seen in ("datasets          acme-support.jsonl (10 examples, clean)", ": succeeded", "model deleted     yes, after two approvals", "none refused", str(run)):
        assert seen in summary, seen
    # the job's automatic evaluation: its report and CSV in the thread, its headline on the final alert
    for seen in ("*Evaluation of `ft:", "exact match | ", "10 of 10 examples scored", "held out from training", "[thread: file] Evaluation 1: every example: 10 examples as CSV", "[final alert edited]", "Evaluation vs base: *exact match 0 % → "):
        assert seen in text, seen
    # The sandbox bills what the dataset check estimated: no false "billed tokens differ" alert.
    assert "Billed tokens differ" not in text
    # the model's deletion through a team approval
    for seen in ("/ft delete-model ft:", "[approval request]", "cannot approve it yourself", "2 of 2", "*Deleted*", "was deleted", "vote refused"):
        assert seen in text, seen


# After OpenAI's training end (2027-01-20 is run by .ci/run's date-shifted run, its wall clock moved).
@pytest.mark.parametrize("day", ["2027-01-10", "2028-06-01"])
def test_after_openais_training_end_the_demo_shows_the_refusal_and_trains_at_together(day: str, tmp_path, app_clock) -> None:  # noqa: ANN001
    app_clock.set(day)
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path / "demo"), "--steps", "12"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    text = out.stdout
    for seen in (
        f"Today is {day} (this demo's clock). OpenAI takes no new fine-tuning jobs since 2027-01-06 (ftbot's table)",
        "this demo trains at Together AI's sandbox instead",
        "/ft start acme-support provider=openai model=gpt-4o-mini-2024-07-18",
        "[only @alice sees] :warning: OpenAI takes no new fine-tuning jobs on `gpt-4o-mini-2024-07-18` since 2027-01-06 (ftbot's table), so nothing was started",
        "training=lora lora_r=16 lr=1e-4", "Fine tune request created: ft-", "[thread: image]", "[final alert edited]",
        "Evaluation vs base: *exact match 0 % → ", "*Deleted*",
    ):
        assert seen in text, seen
    # The refusal comes before the start that trains, and no OpenAI job was ever made.
    assert text.index("so nothing was started") < text.index("Fine tune request created")
    assert "ftjob-" not in text and "Created fine-tuning job" not in text
    summary = text.split("\nSummary\n")[1]
    for seen in ("start at OpenAI   refused: no new fine-tuning jobs since 2027-01-06", "provider          Together AI sandbox", ": succeeded", "model deleted     yes"):
        assert seen in summary, seen
    assert (_run_dir(tmp_path / "demo") / "loss-chart.png").read_bytes().startswith(b"\x89PNG")


def test_demo_runs_the_whole_lifecycle_on_together(tmp_path, app_clock) -> None:  # noqa: ANN001
    app_clock.set("2028-06-01")  # a year after OpenAI's dates: Together trains as ever
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--log-level", "WARNING", "demo", "--provider", "together", "--out", str(tmp_path / "demo"), "--steps", "12"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for seen in (
        "Together AI sandbox", "Uploaded as `file-", "training=lora lora_r=16 lr=1e-4", "learning_rate=0.0001", "lora_r=16",
        "[job card]", "[job card edited]", "[thread reply]", "Fine tune request created: ft-", "Training started",
        "Fine-tuning job completed", "succeeded", "[thread: image]",
    ):
        assert seen in text, seen
    assert "OpenAI sandbox" not in text and "ftjob-" not in text
    assert "Billed tokens differ" not in text
    assert (_run_dir(tmp_path / "demo") / "loss-chart.png").read_bytes().startswith(b"\x89PNG")
    for seen in ("/ft delete-model sandbox/Meta-Llama-3.1-8B-Instruct-Reference-acme-support-", "[approval request]", "2 of 2", "*Deleted*", "was deleted"):
        assert seen in text, seen


def test_demo_refuses_an_unknown_provider(tmp_path) -> None:  # noqa: ANN001
    out = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--provider", "azure"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "invalid choice: 'azure'" in out.stderr


def test_db_upgrade_command(tmp_path) -> None:  # noqa: ANN001
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "latest schema" in out.stdout


def test_serve_with_the_builtin_sandbox(tmp_path, slack) -> None:  # noqa: ANN001
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "PORT": str(port),
        "FTBOT_SANDBOX": "1",
        "FTBOT_POLL_INTERVAL": "0.5",
        **date_env(),
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=30, interval=0.2)
        requester = SlackRequester(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, response_base=f"{slack.base}/response")
        assert requester.command("help").status == 200
        assert requester.command("help", team_id="T0001").status == 200
        forged = SlackRequester(requester.events_url, "wrong-secret")
        assert forged.command("help").status == 401
        assert requester.command("models").status == 200
        answers = wait_for(lambda: len(slack.responses()) >= 3 and slack.responses())
        texts = [json.dumps(a) for a in answers]
        assert any("/ft start FILE" in t for t in texts)
        assert any("No fine-tuned models yet" in t for t in texts)  # answered by the built-in sandbox
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert "FTBOT_SANDBOX=1: simulated provider" in output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output


@pytest.mark.postgres
def test_web_and_workers_start_together_on_an_empty_postgres(slack, sandbox) -> None:  # noqa: ANN001
    # No `release` step ran: both processes migrate at start, at the same moment, and both come up.
    from tests.conftest import fresh_postgres_db

    url, drop = fresh_postgres_db()
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": "sk-test-key-123456",
        "OPENAI_BASE_URL": sandbox.url,
        "DATABASE_URL": url,
        "PORT": str(port),
        "FTBOT_POLL_INTERVAL": "0.5",
        **date_env(),
        "FTBOT_NOTIFY_CHANNEL": "C0NOTIFY",  # the worker then asks auth.test: a sign it is polling
    }
    procs = [
        subprocess.Popen([sys.executable, "-m", "bot.cli", cmd, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, extra in (("serve", ["--no-worker"]), ("worker", []), ("worker", []), ("worker", []))
    ]
    try:
        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(lambda: healthy() or any(p.poll() is not None for p in procs), timeout=60, interval=0.2)
        wait_for(lambda: len(slack.calls("auth.test")) >= 3 or any(p.poll() is not None for p in procs), timeout=60, interval=0.2)
        assert [p.poll() for p in procs] == [None] * len(procs)
        assert healthy()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=20)[0] for p in procs]
        drop()
    for out in outputs:
        assert "Traceback" not in out, out[-3000:]


def test_demo_migrate_moves_a_model_from_openai_to_together(tmp_path, app_clock) -> None:  # noqa: ANN001
    app_clock.set("2027-01-10")  # training closed at OpenAI, its models still answering: the week teams move
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--log-level", "ERROR", "demo", "--migrate", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    text = out.stdout
    for seen in (
        "days left, OpenAI API, read",
        "/ft migrate ft:gpt-4o-mini-2024-07-18:sandbox:acme:", "Migration #1: ready to start", "Meta-Llama-3.1-8B-Instruct-Reference",
        "lr 2e-05", "[Confirm] [Cancel]", "Saved 10 new answers", "started `ft-", "this job rebuilds", "is being rebuilt on Together AI",
        "*done*", "Done: the model now lives at Together AI.", "the Together AI model agrees with the old one on",
        "On 2026-10-12, 90 days before today", "Back to today, 2027-01-10.", "2027-01-14 (4 days left, OpenAI API, read 2027-01-10)",
    ):
        assert seen in text, seen


@pytest.mark.parametrize("day", ["2027-01-15", "2028-06-01"])
def test_demo_migrate_after_the_end_of_serving_says_why_there_is_nothing_to_show(day: str, tmp_path, app_clock) -> None:  # noqa: ANN001
    app_clock.set(day)
    out = subprocess.run([sys.executable, "-m", "bot.cli", "demo", "--migrate", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"today is {day} (this demo's clock), and OpenAI's gpt-4o-mini-2024-07-18 fine-tunes stopped serving on 2027-01-14 (ftbot's table)" in out.stdout
    assert "there is no old model left to ask" in out.stdout and "`/ft keep`" in out.stdout
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())  # nothing started, nothing written
