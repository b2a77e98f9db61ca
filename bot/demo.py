"""`ftbot demo`: the whole lifecycle on this machine with no accounts.

Starts a provider's sandbox (OpenAI's, or Together AI's with `--provider together`, Vertex AI's and its
Cloud Storage emulator with `--provider vertex`, or a local Ray head and a tiny CPU trainer with `--provider ray`), the Slack stand-in and the bot (HTTP app + worker) on free local ports,
shares two datasets in a channel (one broken, one clean: checked, costed, uploaded), sends
`/ft start <dataset name> …` as a signed request, and prints what the channel sees as it happens.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot import clock
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
        elif b.get("type") == "alert":
            parts.append(f"({b.get('level', 'default')}) {b['text']['text']}")
        elif b.get("type") == "table":
            from bot.messages.table import table_texts

            rows = table_texts(b)
            widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
            parts += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
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


DEMO_PROVIDERS = ("openai", "together", "ray", "vertex")
RAY_MISSING = "ftbot demo --provider ray needs the ray package, which is not installed: pip install 'ftbot[ray]' (from a checkout: pip install -e '.[ray]')"


def _ray_provider(out_path: Path, ray_address: str | None) -> tuple[Any, Any, dict[str, Any]]:  # noqa: ANN401
    """A local Ray head (or the one at `ray_address`), the Ray provider on it, the tiny CPU trainer as
    the team's entrypoint and a storage folder in the demo's output folder."""
    from bot.provider.ray_adapter import RayProvider
    from bot.sandbox.ray_head import LocalRayHead

    trainer = Path(__file__).resolve().parent / "sandbox" / "tiny_trainer.py"
    entrypoint = (
        f"{sys.executable} {trainer} --train {{train}} --validation {{validation}} --model {{model}} --epochs {{epochs}} "
        "--batch {batch} --lr {lr} --output {output} --seed {seed} --suffix {suffix} --step-seconds 0.1 --save-steps 20"
    )
    storage = out_path / "ray-storage"
    head = None
    if ray_address is None:
        head = LocalRayHead(num_cpus=1).start()
        ray_address = head.address

    class _Head:
        url = ray_address

        def stop(self) -> None:
            if head is not None:
                head.stop()

    provider = RayProvider(ray_address, entrypoint=entrypoint, storage=str(storage))
    conf = {"openai_api_key": None, "ray_address": ray_address, "ray_entrypoint": entrypoint, "ray_storage": str(storage), "default_provider": "ray"}
    return _Head(), provider, conf


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
    if name == "vertex":
        from bot.provider.vertex_adapter import VertexProvider
        from bot.sandbox.vertex_server import VertexSandboxServer
        from bot.sandbox.vertex_state import PROJECT

        server = VertexSandboxServer(timing=timing).start()
        bucket = f"gs://{server.bucket}/demo"
        provider = VertexProvider(project=PROJECT, location="us-central1", bucket=bucket, sandbox_token="sandbox", base_url=server.url, storage_endpoint=server.storage_url)
        conf = {"openai_api_key": None, "vertex_project": PROJECT, "vertex_location": "us-central1", "vertex_bucket": bucket, "default_provider": "vertex"}
        return server, provider, conf
    from bot.provider.openai_adapter import OpenAIProvider
    from bot.sandbox.server import SandboxServer

    server = SandboxServer(timing=timing).start()
    return server, OpenAIProvider(api_key="sk-demo", base_url=server.url), {"openai_api_key": "sk-demo", "openai_base_url": server.url}


def _quiet_logs() -> None:
    """The demo prints the conversation; start-up chatter (Alembic's INFO lines) and APScheduler's
    "skipped: maximum number of running instances" (a send that overlaps the previous one, harmless)
    would drown it. Warnings from ftbot itself still show."""
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    root = logging.getLogger()
    if root.level == logging.INFO:
        root.setLevel(logging.WARNING)


def run_folder(parent: str | Path, now: datetime | None = None) -> Path:
    """A new folder per run under `parent` (run-YYYYmmdd-HHMMSS, then -2, -3 … if taken): earlier runs are kept."""
    stamp = f"run-{(now or clock.now()):%Y%m%d-%H%M%S}"
    base = Path(parent).resolve()
    path, n = base / stamp, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base / f"{stamp}-{n}"


def run_demo(out_dir: str = "ftbot-demo", steps: int = 30, out=sys.stdout, provider: str = "openai", ray_address: str | None = None) -> int:  # noqa: ANN001
    """`ray_address`: with `provider="ray"`, a running head to use instead of starting one."""
    _quiet_logs()  # before Alembic is imported: it logs its plugins then
    if provider not in DEMO_PROVIDERS:
        print(f"ftbot demo: --provider must be one of {', '.join(DEMO_PROVIDERS)}, not {provider!r}", file=out)
        return 2
    out_path = run_folder(out_dir)
    # Closed on every way out, the early ones (no ray, no head) included.
    with (out_path / "transcript.txt").open("w", encoding="utf-8") as transcript:
        return _demo(out_path, transcript, steps=steps, out=out, provider=provider, ray_address=ray_address)


def where_it_runs(provider: str) -> str:
    """Where the demo's provider runs: the row at the start and the summary say the same."""
    from bot.provider.base import provider_label

    return "Ray head (its job server)" if provider == "ray" else f"{provider_label(provider)} sandbox"


def _demo(out_path: Path, transcript: Any, *, steps: int, out: Any, provider: str, ray_address: str | None) -> int:  # noqa: ANN401
    from bot.app import build_app
    from bot.sandbox.state import Timing
    from bot.sandbox.webhooks import new_secret
    from bot.services import build_services
    from bot.slack_standin.requests import SlackRequester
    from bot.slack_standin.server import SlackStandIn
    from bot.web import HttpServer, WebApp
    from bot.worker.runner import Worker
    from storage.migrate import upgrade

    t0 = time.monotonic()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)
        transcript.write(text + "\n")

    if provider == "ray":
        from bot.sandbox.ray_head import ray_installed

        if not ray_installed():
            say(RAY_MISSING)
            return 2

    def at(t: float) -> str:
        """When something happened, in seconds since the demo started: events print in that order."""
        return f"[+{max(0.0, t - t0):5.1f}s]"

    # The Slack stand-in records its calls and the sandbox its webhooks by the wall clock.
    wall_to_mono = time.monotonic() - time.time()
    # From OpenAI's training end on, the team trains where training is still open: the demo shows
    # the start at OpenAI refused, then trains at Together AI's sandbox (both enabled).
    closed = openai_training_closed() if provider == "openai" else None
    trains_at = "together" if closed else provider
    db_file = out_path / "demo.db"
    db_url = f"sqlite:///{db_file}"
    upgrade(db_url)
    timing = Timing(validating_seconds=1.0, queued_seconds=1.0, step_seconds=0.25, eval_every=5)
    if provider == "ray":
        say("Starting a local Ray head (one CPU, free ports, 127.0.0.1) …" if ray_address is None else f"Using the Ray head at {ray_address}")
        from bot.sandbox.ray_head import RayHeadError

        try:
            sandbox, adapter, conf = _ray_provider(out_path, ray_address)
        except RayHeadError as exc:
            say(f"Could not start a local Ray head: {exc}")
            return 1
    else:
        sandbox, adapter, conf = _sandboxed_provider(trains_at, timing)
    providers = {trains_at: adapter}
    refusing = None
    if closed:
        refusing, openai_adapter, openai_conf = _sandboxed_provider("openai", timing)
        providers = {"openai": openai_adapter, "together": adapter}
        conf = {**conf, **openai_conf, "default_provider": "together"}
    slack = SlackStandIn(bot_token=TOKEN).start()
    settings = replace(
        Settings(),
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        database_url=db_url,
        poll_interval=1.0,
        # OpenAI's webhooks (Together has none): the sandbox signs and sends them when a job ends.
        openai_webhook_secret=new_secret() if trains_at == "openai" else None,
        # The job's automatic evaluation asks the trained model: the local Ray head serves none.
        eval_on_completion=provider != "ray" or bool(conf.get("ray_inference_url")),
        **conf,
    )
    services = build_services(settings, providers=providers)
    app = build_app(services)
    http = HttpServer(WebApp(app, services), host="127.0.0.1", port=0).start()
    worker = Worker(services, send_interval=0.2).start()
    # The sandbox tells ftbot when a job ends, signed, as OpenAI's webhooks do.
    hooks = sandbox.state.webhooks if trains_at == "openai" else None
    if hooks is not None:
        hooks.configure(f"{http.url}/webhooks/openai", settings.openai_webhook_secret)
    requester = SlackRequester(f"{http.url}/slack/events", SECRET, response_base=f"{slack.base}/response")

    say("ftbot demo: everything runs on this machine, no accounts needed")
    rows = [(where_it_runs(trains_at), sandbox.url), *([(where_it_runs("openai"), refusing.url)] if refusing else []), ("Slack stand-in", slack.api_url), ("ftbot", f"{http.url}/slack/events   (database {db_file})")]
    width = max(len(name) for name, _ in rows) + 3
    for name, where in rows:
        say(f"  {name:<{width}}{where}")
    say()
    if closed:
        say(
            f"Today is {clock.today():%Y-%m-%d} (this demo's clock). OpenAI takes no new fine-tuning jobs since {closed[0]:%Y-%m-%d} ({closed[1]}): "
            "the team's start there is refused, so this demo trains at Together AI's sandbox instead, where training is open "
            "(Together AI is the default provider here, OpenAI stays enabled)."
        )
        say()
    examples = max(10, steps // 3)

    def share(name: str, content: bytes) -> None:
        """@alice drops a file into #ml-runs; the bot checks it and answers there."""
        before = len([c for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL])
        meta = slack.add_user_file(name, content)
        say(f"{at(time.monotonic())} @alice shares {name} ({len(content):,} bytes) in #ml-runs")
        requester.event({"type": "file_shared", "file_id": meta["id"], "user_id": "U0ALICE", "channel_id": CHANNEL})
        until = time.monotonic() + 30
        while time.monotonic() < until:
            posted = [c for c in slack.calls("chat.postMessage") if c.args.get("channel") == CHANNEL]
            if len(posted) > before:
                last = posted[-1]
                say(f"{at(last.at + wall_to_mono)} [channel]")
                say(_indent(_plain(last.args.get("blocks"), last.args.get("text", ""))))
                say()
                return
            time.sleep(0.05)
        say("  (no answer from the bot)")

    draft = _training_file(5).replace(b'"role": "assistant"', b'"role": "bot"', 1) + b"\n\n"
    share("acme-draft.jsonl", draft)
    share("acme-support.jsonl", _training_file(examples))
    v = services.provider.upload_file(_training_file(10), "acme-support-valid.jsonl")
    say(f"A validation set is already at the provider as {v.id}.")
    if closed:
        refused = f"start acme-support provider=openai model={OPENAI_BASE} epochs=3 batch=1 suffix=acme-support"
        say(f"{at(time.monotonic())} @alice types in #ml-runs:  /ft {refused}")
        answer = _answer(requester, slack, refused)
        say(f"{at(time.monotonic())} [only @alice sees] {answer or '(no answer within 30 s)'}")
        say()
        if _any_job(services):
            say("OpenAI took a job after its training end; something is wrong.")
            return 1
    # At Together `lr` is the learning rate itself and LoRA is chosen explicitly (its options).
    extra = " training=lora lora_r=16 lr=1e-4" if trains_at == "together" else ""
    command = f"start acme-support validation={v.id} epochs=3 batch=1 suffix=acme-support{extra}"
    if trains_at == "vertex":
        # Gemini's options: epochs, the adapter size and a learning-rate multiplier (Vertex picks the batch).
        command = f"start acme-support validation={v.id} epochs=3 adapter=4 lr=1.0 suffix=acme-support"
    if provider == "ray":
        # The tiny trainer's steps are mini-batches of characters: bigger batches, a short job.
        command = f"start acme-support validation={v.id} epochs=2 batch=16 lr=0.0002 suffix=acme-support"
    say(f"{at(time.monotonic())} @alice types in #ml-runs:  /ft {command}")
    started = time.monotonic()
    answers_before = len(slack.responses())
    # Everything Slack sees from here on is printed, the answer to this command included.
    seen_calls = len(slack.calls())
    reply = requester.command(command, user="U0ALICE", channel=CHANNEL)
    say(f"  Slack got HTTP {reply.status} after {reply.elapsed * 1000:.0f} ms (the ack)")
    say()
    # A start that is refused (or fails) makes no job: print its answer and stop, never a silent wait.
    if not _wait_for(lambda: _any_job(services) or len(slack.responses()) > answers_before, 30) or not _wait_for(lambda: _any_job(services), 2):
        got = slack.responses()[answers_before:]
        said = _plain(got[0].get("blocks"), got[0].get("text", "")) if got else "(no answer within 30 s)"
        say(f"{at(time.monotonic())} [only @alice sees] {said}")
        say("The start made no job (the answer above says why); nothing to train.")
        return 1

    seen_hooks = 0
    chart_saved: Path | None = None
    # A provider whose loss ftbot cannot read (Vertex AI) gets no chart: its final alert says so.
    from bot.provider.base import metrics_note

    no_chart = metrics_note(trains_at) is not None
    alerted = False
    deleted_ok = False
    # The job's automatic evaluation (base vs fine-tuned on the validation file) follows its ending.
    # Its CSV and the headline added to the final alert may come in either order: wait for both.
    eval_csv_seen = headline_seen = not settings.eval_on_completion
    deadline = started + 120
    # Slack calls, answers to @alice (response_url, recorded as calls too) and webhooks, merged by when
    # they happened. A webhook is recorded once answered but stamped when sent, so what happened in
    # the last second is held back: something stamped earlier may still come in.
    waiting: list[tuple[float, int, Any]] = []
    SETTLE = 1.0

    def emit(when: float, kind: int, item: Any) -> None:  # noqa: ANN401
        nonlocal chart_saved, eval_csv_seen, headline_seen, deadline, alerted
        if kind == 0:
            d = item
            say(f"{at(when)} [webhook] OpenAI -> ftbot /webhooks/openai: {d['type']} for {d['job_id']} (HTTP {d['status']} in {(d['answered_at'] - d['sent_at']) * 1000:.0f} ms)")
            return
        c, a = item, item.args
        if c.method == "response_url":
            say(f"{at(when)} [only @alice sees] {_plain(a.get('blocks'), a.get('text', ''))}")
        elif c.method == "chat.postMessage":
            if ":final" in json.dumps(a.get("metadata") or {}):
                alerted = True
                deadline = max(deadline, time.monotonic() + 60)  # the evaluation follows the ending
            where = "thread reply" if a.get("thread_ts") else ("job card" if "metadata" in a and ":card" in json.dumps(a.get("metadata")) else "channel")
            say(f"{at(when)} [{where}]")
            say(_indent(_plain(a.get("blocks"), a.get("text", ""))))
        elif c.method == "chat.update":
            text = a.get("text", "")
            what = "final alert edited" if "Evaluation vs base" in text else "evaluation progress edited" if text.startswith("Evaluat") else "job card edited"
            headline_seen = headline_seen or what == "final alert edited"
            say(f"{at(when)} [{what}]")
            say(_indent(_plain(a.get("blocks"), a.get("text", ""))))
        elif c.method == "files.completeUploadExternal":
            fid = (a.get("files") or [{}])[0].get("id")
            data = slack.uploaded_file(fid) or b""
            name = (a.get("files") or [{}])[0].get("title") or "chart"
            if name.startswith("Evaluation"):
                eval_csv_seen = True
                rows = len(data.decode(errors="replace").splitlines()) - 1
                say(f"{at(when)} [thread: file] {name}: {rows} examples as CSV ({len(data):,} bytes)")
                return
            chart_saved = out_path / "loss-chart.png"
            chart_saved.write_bytes(data)
            deadline = max(deadline, time.monotonic() + 60)  # the evaluation follows the ending
            say(f"{at(when)} [thread: image] {name} ({len(data):,} bytes) saved to {chart_saved}")

    def ended() -> bool:
        return alerted if no_chart else chart_saved is not None

    def flush(before: float) -> None:
        waiting.sort(key=lambda h: (h[0], h[1]))
        while waiting and waiting[0][0] <= before:
            emit(*waiting.pop(0))

    try:
        while time.monotonic() < deadline and not (ended() and eval_csv_seen and headline_seen):
            for d in (hooks.deliveries() if hooks else [])[seen_hooks:]:
                seen_hooks += 1
                waiting.append((d["sent_at"] + wall_to_mono, 0, d))
            calls = slack.calls()
            for c in calls[seen_calls:]:
                seen_calls += 1
                if c.status == 200:
                    waiting.append((c.at + wall_to_mono, 1, c))
            flush(time.monotonic() - SETTLE)
            time.sleep(0.1)
        flush(float("inf"))
        hooks_until = time.monotonic() + 5
        while hooks is not None and chart_saved is not None and not seen_hooks and time.monotonic() < hooks_until:
            time.sleep(0.05)  # the regular poll can beat the webhook on a loaded machine: show it anyway
            for d in hooks.deliveries()[:1]:
                seen_hooks += 1
                sent = d["sent_at"] + wall_to_mono - t0
                say(f"{at(time.monotonic())} [webhook] OpenAI -> ftbot /webhooks/openai: {d['type']} for {d['job_id']} (HTTP {d['status']}, sent at +{sent:.1f}s, after the poll had seen the ending)")
        if ended():
            deleted_ok = demo_model_deletion(services, requester, slack, say, stamp=lambda wall: at(wall + wall_to_mono))
        facts = _summary_facts(services)
    finally:
        worker.stop()
        http.stop()
        services.close()
        slack.stop()
        sandbox.stop()
        if refusing is not None:
            refusing.stop()
    took = time.monotonic() - started
    say()
    n_calls = sum(1 for c in slack.calls() if c.method not in {"auth.test", "upload", "response_url"})
    refused = sum(1 for c in slack.calls() if c.status != 200)
    say("Summary")
    if closed:
        say(f"  start at OpenAI   refused: no new fine-tuning jobs since {closed[0]:%Y-%m-%d} ({closed[1]})")
    say(f"  provider          {where_it_runs(trains_at)}")
    say(f"  datasets          {facts['datasets']}")
    say(f"  job               {facts['job']}")
    say(f"  model             {facts['model']}")
    say(f"  model deleted     {'yes, after two approvals' if deleted_ok else 'no'}")
    say(f"  Slack             {n_calls} API calls" + (f", {refused} refused or failed" if refused else ", none refused"))
    say(f"  loss chart        {chart_saved or ('none: ' + metrics_note(trains_at) if no_chart else 'not made')}")
    say(f"  this run          {out_path} (transcript.txt, demo.db; earlier runs are kept beside it)")
    say(f"  took              {took:.0f} s")
    if not ended():
        print(f"The job did not finish within {deadline - started:.0f} s; something is wrong.", file=out)
        return 1
    return 0 if deleted_ok else 1


OPENAI_BASE = "gpt-4o-mini-2024-07-18"


def openai_training_closed(today: date | None = None) -> tuple[date, str] | None:
    """(the day, where it comes from) when OpenAI's training on the demo's base has ended, else None.
    The demo's sandbox lists no training end, so ftbot's table (the date the bot refuses by) decides."""
    from bot.retirements.table import table_for

    r = table_for(None).lookup("openai", OPENAI_BASE)
    day = today or clock.today()
    if r is None or r.training_ends is None or r.training_ends > day:
        return None
    return r.training_ends, "ftbot's table"


def _wait_for(what: Any, timeout: float) -> bool:  # noqa: ANN401
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if what():
            return True
        time.sleep(0.05)
    return bool(what())


def _answer(requester: Any, slack: Any, command: str) -> str | None:  # noqa: ANN401
    """Send `/ft command` as @alice and return the answer only she sees (waits up to 30 s)."""
    before = len(slack.responses())
    requester.command(command, user="U0ALICE", channel=CHANNEL)
    if not _wait_for(lambda: len(slack.responses()) > before, 30):
        return None
    got = slack.responses()[before]
    return _plain(got.get("blocks"), got.get("text", ""))


def _any_job(services: Any) -> bool:  # noqa: ANN401
    from sqlalchemy import select

    from storage.models import Job

    with services.db.session() as s:
        return s.scalar(select(Job.id).limit(1)) is not None


def _summary_facts(services: Any) -> dict[str, str]:  # noqa: ANN401
    from sqlalchemy import select

    from storage.models import Dataset, Job

    with services.db.session() as s:
        names = [f"{d.name} ({d.example_count} examples, {d.verdict or 'not checked'})" for d in s.scalars(select(Dataset).order_by(Dataset.id))]
        job = s.scalars(select(Job).order_by(Job.id.desc())).first()
        return {
            "datasets": "; ".join(names) or "none registered",
            "job": f"{job.provider_job_id}: {job.status}" + (f", {job.trained_tokens:,} trained tokens" if job.trained_tokens else "") if job else "none",
            "model": (job.fine_tuned_model or "none") if job else "none",
        }


def demo_model_deletion(services: Any, requester: Any, slack: Any, say: Any, timeout: float = 30.0, stamp: Any = None) -> bool:  # noqa: ANN401
    """The fine-tuned model is deleted through a team approval: asked, refused to its asker, approved twice."""
    from sqlalchemy import select

    from storage.models import ApprovalRequest, Job

    with services.db.session() as s:
        model = s.scalar(select(Job.fine_tuned_model).where(Job.fine_tuned_model.is_not(None)))
    if not model:
        say("No fine-tuned model to delete; skipping the approval step.")
        return False
    calls = len(slack.calls())
    stamp = stamp or (lambda _at: "")

    def show(until: Any) -> bool:  # noqa: ANN401
        nonlocal calls
        deadline = time.monotonic() + timeout
        while True:
            # Answers to the clicker come through response_url, recorded among the calls: one order.
            for c in slack.calls()[calls:]:
                calls += 1
                a = c.args
                if c.status == 200 and c.method == "response_url":
                    say(f"{stamp(c.at)} [only the clicker sees] {_plain(a.get('blocks'), a.get('text', ''))}")
                if c.status != 200 or c.method not in {"chat.postMessage", "chat.update"}:
                    continue
                key = json.dumps(a.get("metadata") or {})
                label = "thread reply" if a.get("thread_ts") else ("approval request" if "approval:" in key else "approval request edited" if c.method == "chat.update" else "channel")
                say(f"{stamp(c.at)} [{label}]")
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
    say(f"{stamp(time.time())} @alice wants the model gone:  /ft delete-model {model} superseded by v2")
    asked = len(slack.responses())  # `show` moves `answers` on as it prints: compare with this
    requester.command(f"delete-model {model} superseded by v2", user="U0ALICE", channel=CHANNEL)
    show(lambda: status() == "pending" and len(slack.responses()) > asked)
    with services.db.session() as s:
        rid = s.scalar(select(ApprovalRequest.id).order_by(ApprovalRequest.id.desc()))
    for user, name in (("U0ALICE", "@alice"), ("U0BOB", "@bob"), ("U0CAROL", "@carol")):
        say(f"{stamp(time.time())} {name} clicks Approve")
        before = len(slack.responses())
        requester.block_action("approval_approve", str(rid), user=user, channel=CHANNEL)
        show(lambda before=before: len(slack.responses()) > before)
    ok = show(lambda: status() in {"done", "failed"} and model not in {m.id for m in services.provider.list_models()})
    # The note in the job card's thread goes out through the outbox after the deletion: wait for it
    # (a busy sender, say still posting an evaluation, can take a few seconds).
    show(lambda: status() != "done" or any("was deleted" in (c.args.get("text") or "") for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")))
    say(f"{stamp(time.time())} @alice types:  /ft audit 8")
    before = len(slack.responses())
    requester.command("audit 8", user="U0ALICE", channel=CHANNEL)
    show(lambda: len(slack.responses()) > before)
    return ok and status() == "done"
