"""`ftbot demo --migrate`: leaving OpenAI, on this machine with no accounts.

Starts the OpenAI and Together AI sandboxes, the Slack stand-in and the bot (both providers enabled),
trains a model at OpenAI, then shows what a team sees: `/ft models` with the model's end of serving
read from OpenAI's models list, `/ft migrate` (the job found, its data copied and checked, the recipe
translated, the old model's answers kept), Confirm, the Together job training to the end, and
`/ft migrations`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot import clock
from bot.demo import OPENAI_BASE, SECRET, TOKEN, _indent, _plain, _training_file
from bot.settings import Settings

CHANNEL = "C0DEMO"


# The old model was trained this long before today: before OpenAI's training end whatever today is.
TRAINED_DAYS_AGO = 90


def serving_ended() -> tuple[Any, str] | None:
    """(the day, where it comes from) when the old model's base stopped serving, else None."""
    from bot.retirements.table import table_for

    r = table_for(None).lookup("openai", OPENAI_BASE)
    if r is None or r.serving_ends is None or r.serving_ends >= clock.today():  # its last day still answers
        return None
    return r.serving_ends, "ftbot's table"


def run_migrate_demo(out_dir: str = "ftbot-demo", out: Any = sys.stdout) -> int:  # noqa: ANN401
    from bot.demo import _quiet_logs

    _quiet_logs()
    ended = serving_ended()
    if ended is not None:
        print(
            f"ftbot demo --migrate: today is {clock.today():%Y-%m-%d} (this demo's clock), and OpenAI's {OPENAI_BASE} fine-tunes stopped serving on "
            f"{ended[0]:%Y-%m-%d} ({ended[1]}). A migration keeps the old model's answers to compare its replacement with, and there is no "
            "old model left to ask, so there is nothing to show. A team that kept answers with `/ft keep` before that day still migrates: "
            "`/ft migrate` copies the data and recipe, and the parity report uses the saved answers. `ftbot demo` trains a new model at "
            "Together AI's sandbox.",
            file=out,
        )
        return 0
    from sqlalchemy import select

    from bot.app import build_app
    from bot.provider.openai_adapter import OpenAIProvider
    from bot.provider.together_adapter import TogetherProvider
    from bot.sandbox.server import SandboxServer
    from bot.sandbox.state import Timing
    from bot.sandbox.together_server import TogetherSandboxServer
    from bot.sandbox.together_state import PROJECT_ID
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.slack_standin.server import SlackStandIn
    from bot.web import HttpServer, WebApp
    from bot.worker.runner import Worker
    from storage.migrate import upgrade
    from storage.models import Job, Migration, OutboxMessage

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    out_path = Path(out_dir).resolve()
    out_path.mkdir(parents=True, exist_ok=True)
    db_file = out_path / "demo-migrate.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    db_url = f"sqlite:///{db_file}"
    upgrade(db_url)
    timing = Timing(validating_seconds=0.5, queued_seconds=0.5, step_seconds=0.1, eval_every=5)
    openai_sb = SandboxServer(timing=timing).start()
    together_sb = TogetherSandboxServer(timing=timing).start()
    slack = SlackStandIn(bot_token=TOKEN).start()
    settings = replace(
        Settings(), slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack.api_url, database_url=db_url, poll_interval=0.5,
        openai_api_key="sk-demo", openai_base_url=openai_sb.url, together_api_key="tgp-demo", together_base_url=together_sb.url, together_project_id=PROJECT_ID,
    )
    providers = {
        "openai": OpenAIProvider(api_key="sk-demo", base_url=openai_sb.url),
        "together": TogetherProvider(api_key="tgp-demo", base_url=together_sb.url, project_id=PROJECT_ID),
    }
    services = build_services(settings, providers=providers)
    http = HttpServer(WebApp(build_app(services), services), host="127.0.0.1", port=0).start()
    worker = Worker(services, send_interval=0.2).start()
    requester = SlackRequester(f"{http.url}/slack/events", SECRET, response_base=f"{slack.base}/response")
    seen = {"responses": 0}

    def answers(n: int, timeout: float = 60) -> list[dict[str, Any]]:
        until = time.monotonic() + timeout
        while time.monotonic() < until and len(slack.responses()) < seen["responses"] + n:
            time.sleep(0.05)
        got = slack.responses()[seen["responses"] : seen["responses"] + n]
        seen["responses"] += len(got)
        for r in got:
            say(f"[only @alice sees] {_indent(_plain(r.get('blocks'), r.get('text', '')), '  ').strip()}")
        return got

    def ask(text: str, n: int = 1) -> list[dict[str, Any]]:
        say(f"@alice types:  /ft {text}")
        requester.command(text, user="U0ALICE", channel=CHANNEL)
        return answers(n)

    def wait(what: Any, timeout: float = 90) -> Any:  # noqa: ANN401
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            value = what()
            if value:
                return value
            time.sleep(0.1)
        return None

    ok = False
    try:
        say("ftbot demo --migrate: leaving OpenAI before its models stop, on this machine with no accounts")
        say(f"  OpenAI sandbox       {openai_sb.url}\n  Together AI sandbox  {together_sb.url}\n  ftbot                {http.url}/slack/events")
        say()
        # The old model was trained months ago, when OpenAI still took jobs: the demo's clock is set
        # back while it trains (everything here reads that clock), then returns to today.
        today = clock.current()
        back = clock.SetClock(today.now() - timedelta(days=TRAINED_DAYS_AGO))
        clock.use(back)
        try:
            train = providers["openai"].upload_file(_training_file(24), "acme-support.jsonl")
            valid = providers["openai"].upload_file(_training_file(10), "acme-support-valid.jsonl")
            say(f"On {back.today():%Y-%m-%d}, {TRAINED_DAYS_AGO} days before today (the demo's clock set back while it trains), a model is trained at OpenAI (data {train.id}, validation {valid.id}):")
            ask(f"start {train.id} validation={valid.id} epochs=2 batch=2 lr=2 suffix=acme")

            def made() -> str | None:
                with services.db.session() as s:
                    return s.scalar(select(Job.fine_tuned_model).where(Job.provider == "openai", Job.fine_tuned_model.is_not(None)))

            model = wait(made)

            def sent() -> bool:
                with services.db.session() as s:
                    return s.scalar(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None)).limit(1)) is None

            # Its card, alert and chart go out before the clock moves on (a claim taken 90 days ago
            # would look expired).
            wait(sent, 30)
        finally:
            clock.use(today)
        if not model:
            say("The OpenAI job did not finish; something is wrong.")
            return 1
        say(f"It made {model}. Back to today, {clock.today():%Y-%m-%d}.")
        say()
        say("Where it stands (the date comes from OpenAI's models list, `shutdown_date`):")
        ask("models")
        say()
        say("Moving it to Together AI: the job that made it is found, its files copied and checked, its recipe translated, its answers kept:")
        preview = ask(f"migrate {model} to=together keep=10", 3)[1]
        mid = next((e["value"] for b in preview.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]), None)
        if mid is None:
            say("No preview came; something is wrong.")
            return 1
        # This sandbox serves a Together fine-tune only from a dedicated endpoint: the demo starts one
        # the moment the new model exists, so the parity report can ask it.
        register = together_sb.world._register_model

        def and_deploy(job: Any, at: float) -> None:  # noqa: ANN401
            register(job, at)
            together_sb.world.deployed.add(job.output_name)

        together_sb.world._register_model = and_deploy
        say("(An endpoint is started at Together for the new model as soon as it exists.)")
        say("@alice clicks [Confirm]")
        requester.block_action("migration_confirm", mid, user="U0ALICE", channel=CHANNEL)
        answers(1)

        def finished() -> str | None:
            with services.db.session() as s:
                state = s.scalar(select(Migration.state).where(Migration.id == int(mid)))
                return state if state in ("done", "failed") else None

        state = wait(finished, 120)
        say()
        wait(lambda: any("Migration #" in (c.args.get("text") or "") and not c.args.get("thread_ts") for c in slack.calls("chat.postMessage")), 30)
        say("Thread notes linking the two cards, and the parity report (new model vs the old one's saved answers):")
        for c in slack.calls("chat.postMessage"):
            text = c.args.get("text") or ""
            if "Migration #" in text or text.startswith("Parity report of "):
                say(_indent(_plain(None, text)))
        say()
        ask("migrations")
        ok = state == "done"
        say()
        say("Done: the model now lives at Together AI." if ok else f"The migration ended as {state}.")
    finally:
        worker.stop()
        http.stop()
        services.close()
        slack.stop()
        together_sb.stop()
        openai_sb.stop()
    return 0 if ok else 1
