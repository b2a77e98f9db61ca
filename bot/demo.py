"""`ftbot demo`: the whole lifecycle on this machine with no accounts.

Starts a provider's sandbox (OpenAI's, or Together AI's with `--provider together`), the Slack stand-in and the bot (HTTP app + worker) on free local ports,
shares two datasets in a channel (one broken, one clean: checked, costed, uploaded), sends
`/ft start <dataset name> …` as a signed request, and prints what the channel sees as it happens.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.settings import Settings

SECRET = "demo-signing-secret"
TOKEN = "xoxb-demo-token"
CHANNEL = "C0DEMO"


def _plain(blocks: list[dict[str, Any]] | None, fallback: str) -> str:
    """A rough text rendering of Block Kit, good enough for a terminal."""
    if not blocks:
        return fallback
    parts: list[str] = []
    for b in blocks:
        if b.get("type") == "section":
            if b.get("text"):
                parts.append(b["text"]["text"])
            for f in b.get("fields") or []:
                parts.append(f["text"].replace("\n", ": ", 1))
        elif b.get("type") == "context":
            parts += [e.get("text", "") for e in b.get("elements", [])]
        elif b.get("type") == "actions":
            parts.append("[" + "] [".join(e["text"]["text"] for e in b["elements"]) + "]")
        elif b.get("type") == "table":
            parts += [" | ".join(c.get("text", "") for c in row) for row in b.get("rows", [])]
    text = "\n".join(parts)
    text = re.sub(r"(?<![\w:-]):[a-z_]+:(?=\s)\s?", "", text)  # emoji codes, not model names
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _training_file(n: int) -> bytes:
    lines = []
    for i in range(n):
        ex = {"messages": [{"role": "system", "content": "You are Acme's support assistant."}, {"role": "user", "content": f"How do I reset password #{i}?"}, {"role": "assistant", "content": "Open Settings > Security > Reset password."}]}
        lines.append(json.dumps(ex))
    return "\n".join(lines).encode()


DEMO_PROVIDERS = ("openai", "together")


def _sandboxed_provider(name: str, timing: Any) -> tuple[Any, Any, dict[str, Any]]:  # noqa: ANN401
    """(the sandbox server, the provider talking to it through its real SDK, the settings that say so)."""
    if name == "together":
        from bot.provider.together_adapter import TogetherProvider
        from bot.sandbox.together_server import TogetherSandboxServer
        from bot.sandbox.together_state import PROJECT_ID

        server = TogetherSandboxServer(timing=timing).start()
        provider = TogetherProvider(api_key="tgp-demo", base_url=server.url, project_id=PROJECT_ID)
        conf = {"openai_api_key": None, "together_api_key": "tgp-demo", "together_base_url": server.url, "together_project_id": PROJECT_ID, "default_provider": "together"}
        return server, provider, conf
    from bot.provider.openai_adapter import OpenAIProvider
    from bot.sandbox.server import SandboxServer

    server = SandboxServer(timing=timing).start()
    return server, OpenAIProvider(api_key="sk-demo", base_url=server.url), {"openai_api_key": "sk-demo", "openai_base_url": server.url}


def run_demo(out_dir: str = "ftbot-demo", steps: int = 30, out=sys.stdout, provider: str = "openai") -> int:  # noqa: ANN001
    from bot.app import build_app
    from bot.provider.base import provider_label
    from bot.sandbox.state import Timing
    from bot.sandbox.webhooks import new_secret
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.slack_standin.server import SlackStandIn
    from bot.web import HttpServer, WebApp
    from bot.worker.runner import Worker
    from storage.migrate import upgrade

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    out_path = Path(out_dir).resolve()
    out_path.mkdir(parents=True, exist_ok=True)
    db_file = out_path / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    db_url = f"sqlite:///{db_file}"
    upgrade(db_url)

    if provider not in DEMO_PROVIDERS:
        say(f"ftbot demo: --provider must be one of {', '.join(DEMO_PROVIDERS)}, not {provider!r}")
        return 2
    timing = Timing(validating_seconds=1.0, queued_seconds=1.0, step_seconds=0.25, eval_every=5)
    sandbox, adapter, conf = _sandboxed_provider(provider, timing)
    slack = SlackStandIn(bot_token=TOKEN).start()
    settings = replace(
        Settings(),
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        database_url=db_url,
        poll_interval=1.0,
        # OpenAI's webhooks (Together has none): the sandbox signs and sends them when a job ends.
        openai_webhook_secret=new_secret() if provider == "openai" else None,
        **conf,
    )
    services = build_services(settings, provider=adapter)
    app = build_app(services)
    http = HttpServer(WebApp(app, services), host="127.0.0.1", port=0).start()
    worker = Worker(services, send_interval=0.2).start()
    # The sandbox tells ftbot when a job ends, signed, as OpenAI's webhooks do.
    hooks = sandbox.state.webhooks if provider == "openai" else None
    if hooks is not None:
        hooks.configure(f"{http.url}/webhooks/openai", settings.openai_webhook_secret)
    requester = SlackRequester(f"{http.url}/slack/events", SECRET, response_base=f"{slack.base}/response")

    say("ftbot demo: everything runs on this machine, no accounts needed")
    rows = [(f"{provider_label(provider)} sandbox", sandbox.url), ("Slack stand-in", slack.api_url), ("ftbot", f"{http.url}/slack/events   (database {db_file})")]
    width = max(len(name) for name, _ in rows) + 3
    for name, where in rows:
        say(f"  {name:<{width}}{where}")
    say()
    examples = max(10, steps // 3)

    def share(name: str, content: bytes) -> None:
        """@alice drops a file into #ml-runs; the bot checks it and answers there."""
        before = len([c for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL])
        meta = slack.add_user_file(name, content)
        say(f"@alice shares {name} ({len(content):,} bytes) in #ml-runs")
        requester.event({"type": "file_shared", "file_id": meta["id"], "user_id": "U0ALICE", "channel_id": CHANNEL})
        until = time.monotonic() + 30
        while time.monotonic() < until:
            posted = [c.args for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL]
            if len(posted) > before:
                say("[channel]")
                say(_indent(_plain(posted[-1].get("blocks"), posted[-1].get("text", ""))))
                say()
                return
            time.sleep(0.05)
        say("  (no answer from the bot)")

    draft = _training_file(5).replace(b'"role": "assistant"', b'"role": "bot"', 1) + b"\n\n"
    share("acme-draft.jsonl", draft)
    share("acme-support.jsonl", _training_file(examples))
    v = services.provider.upload_file(_training_file(10), "acme-support-valid.jsonl")
    say(f"A validation set is already at the provider as {v.id}.")
    # At Together `lr` is the learning rate itself and LoRA is chosen explicitly (its options).
    extra = " training=lora lora_r=16 lr=1e-4" if provider == "together" else ""
    command = f"start acme-support validation={v.id} epochs=3 batch=1 suffix=acme-support{extra}"
    say(f"@alice types in #ml-runs:  /ft {command}")
    started = time.monotonic()
    reply = requester.command(command, user="U0ALICE", channel=CHANNEL)
    say(f"  Slack got HTTP {reply.status} after {reply.elapsed * 1000:.0f} ms (the ack)")
    say()

    seen_calls = len(slack.calls())
    seen_responses = 0
    seen_hooks = 0
    chart_saved: Path | None = None
    deleted_ok = False
    # The job's automatic evaluation (base vs fine-tuned on the validation file) follows its ending.
    eval_seen = not settings.eval_on_completion
    deadline = started + 120
    try:
        while time.monotonic() < deadline and (chart_saved is None or not eval_seen):
            for r in slack.responses()[seen_responses:]:
                seen_responses += 1
                say(f"[only @alice sees] {_plain(r.get('blocks'), r.get('text', ''))}")
            for d in (hooks.deliveries() if hooks else [])[seen_hooks:]:
                seen_hooks += 1
                say(f"[webhook] OpenAI -> ftbot /webhooks/openai: {d['type']} for {d['job_id']} (HTTP {d['status']} in {(d['answered_at'] - d['sent_at']) * 1000:.0f} ms)")
            calls = slack.calls()
            for c in calls[seen_calls:]:
                seen_calls += 1
                a = c.args
                if c.status != 200:
                    continue
                if c.method == "chat.postMessage":
                    where = "thread reply" if a.get("thread_ts") else ("job card" if "metadata" in a and ":card" in json.dumps(a.get("metadata")) else "channel")
                    say(f"[{where}]")
                    say(_indent(_plain(a.get("blocks"), a.get("text", ""))))
                elif c.method == "chat.update":
                    text = a.get("text", "")
                    say("[final alert edited]" if "Evaluation vs base" in text else "[evaluation progress edited]" if text.startswith("Evaluat") else "[job card edited]")
                    say(_indent(_plain(a.get("blocks"), a.get("text", ""))))
                elif c.method == "files.completeUploadExternal":
                    fid = (a.get("files") or [{}])[0].get("id")
                    data = slack.uploaded_file(fid) or b""
                    name = (a.get("files") or [{}])[0].get("title") or "chart"
                    if name.startswith("Evaluation"):
                        eval_seen = True
                        rows = len(data.decode(errors="replace").splitlines()) - 1
                        say(f"[thread: file] {name}: {rows} examples as CSV ({len(data):,} bytes)")
                        continue
                    chart_saved = out_path / "loss-chart.png"
                    chart_saved.write_bytes(data)
                    deadline = max(deadline, time.monotonic() + 60)  # the evaluation follows the ending
                    say(f"[thread: image] {name} ({len(data):,} bytes) saved to {chart_saved}")
            time.sleep(0.1)
        hooks_until = time.monotonic() + 5
        while hooks is not None and chart_saved is not None and not seen_hooks and time.monotonic() < hooks_until:
            time.sleep(0.05)  # the regular poll can beat the webhook on a loaded machine: show it anyway
            for d in hooks.deliveries()[:1]:
                seen_hooks += 1
                say(f"[webhook] OpenAI -> ftbot /webhooks/openai: {d['type']} for {d['job_id']} (HTTP {d['status']}, after the poll had seen the ending)")
        if chart_saved is not None:
            deleted_ok = demo_model_deletion(services, requester, slack, say)
    finally:
        worker.stop()
        http.stop()
        services.close()
        slack.stop()
        sandbox.stop()
    took = time.monotonic() - started
    say()
    if chart_saved is None:
        say(f"The job did not finish within {deadline - started:.0f} s; something is wrong.")
        return 1
    n_calls = sum(1 for c in slack.calls() if c.method not in {"auth.test", "upload"})
    say(f"Done in {took:.0f} s: {n_calls} Slack API calls for the whole job and the model's deletion. Chart: {chart_saved}")
    return 0 if deleted_ok else 1


def demo_model_deletion(services: Any, requester: Any, slack: Any, say: Any, timeout: float = 30.0) -> bool:  # noqa: ANN401
    """The fine-tuned model is deleted through a team approval: asked, refused to its asker, approved twice."""
    from sqlalchemy import select

    from storage.models import ApprovalRequest, Job

    with services.db.session() as s:
        model = s.scalar(select(Job.fine_tuned_model).where(Job.fine_tuned_model.is_not(None)))
    if not model:
        say("No fine-tuned model to delete; skipping the approval step.")
        return False
    calls, answers = len(slack.calls()), len(slack.responses())

    def show(until: Any) -> bool:  # noqa: ANN401
        nonlocal calls, answers
        deadline = time.monotonic() + timeout
        while True:
            for r in slack.responses()[answers:]:
                answers += 1
                say(f"[only the clicker sees] {_plain(r.get('blocks'), r.get('text', ''))}")
            for c in slack.calls()[calls:]:
                calls += 1
                if c.status != 200 or c.method not in {"chat.postMessage", "chat.update"}:
                    continue
                a = c.args
                key = json.dumps(a.get("metadata") or {})
                label = "thread reply" if a.get("thread_ts") else ("approval request" if "approval:" in key else "approval request edited" if c.method == "chat.update" else "channel")
                say(f"[{label}]")
                say(_indent(_plain(a.get("blocks"), a.get("text", ""))))
            if until():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def status() -> str | None:
        with services.db.session() as s:
            return s.scalar(select(ApprovalRequest.status).order_by(ApprovalRequest.id.desc()))

    say()
    say(f"@alice wants the model gone:  /ft delete-model {model} superseded by v2")
    asked = len(slack.responses())  # `show` moves `answers` on as it prints: compare with this
    requester.command(f"delete-model {model} superseded by v2", user="U0ALICE", channel=CHANNEL)
    show(lambda: status() == "pending" and len(slack.responses()) > asked)
    with services.db.session() as s:
        rid = s.scalar(select(ApprovalRequest.id).order_by(ApprovalRequest.id.desc()))
    for user, name in (("U0ALICE", "@alice"), ("U0BOB", "@bob"), ("U0CAROL", "@carol")):
        say(f"{name} clicks Approve")
        before = len(slack.responses())
        requester.block_action("approval_approve", str(rid), user=user, channel=CHANNEL)
        show(lambda before=before: len(slack.responses()) > before)
    ok = show(lambda: status() in {"done", "failed"} and model not in {m.id for m in services.provider.list_models()})
    time.sleep(0.5)
    show(lambda: True)
    say("@alice types:  /ft audit 8")
    before = len(slack.responses())
    requester.command("audit 8", user="U0ALICE", channel=CHANNEL)
    show(lambda: len(slack.responses()) > before)
    return ok and status() == "done"
