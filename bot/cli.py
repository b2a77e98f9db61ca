"""The `ftbot` console script: one sub-command per process of the product contract."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from bot.logs import parse_level, setup_logging
from bot.settings import Settings, SettingsError, load_settings
from storage.check import DatabaseUnavailable, check_database

log = logging.getLogger("ftbot")


def _settings(process: str) -> Settings:
    settings = load_settings()
    settings.require_for(process)
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    check_database(settings.database_url)  # before Alembic loads: a bad URL gets one line
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    print("database is at the latest schema")
    return 0


def _services(settings: Settings):  # noqa: ANN202
    check_database(settings.database_url)
    from bot.services import build_services
    from storage.migrate import upgrade

    # Running on an empty SQLite file should just work; on PostgreSQL the Procfile's release step
    # has already done this and it is a no-op.
    upgrade(settings.database_url)
    return build_services(settings)


def _start_worker(services):  # noqa: ANN001, ANN202
    from bot.worker.runner import Worker

    worker = Worker(services)
    worker.start()
    return worker


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import build_app
    from bot.web import HttpServer, WebApp

    settings = _settings("serve")
    services = _services(settings)
    app = build_app(services)
    worker = None if args.no_worker else _start_worker(services)
    port = args.port if args.port is not None else settings.port
    server = HttpServer(
        WebApp(app, services),
        host=args.host,
        port=port,
        threads=args.threads,
        max_body_bytes=settings.http_max_body_bytes,
        connection_limit=settings.http_connection_limit,
        channel_timeout=settings.http_channel_timeout,
    )
    log.info("ftbot serving on %s (POST /slack/events, GET /healthz)%s", server.url, "" if worker else ", no worker")

    def _stop(*_: object) -> None:
        if worker:
            worker.stop()
        server.stop()
        services.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except KeyboardInterrupt:
        _stop()
    return 0


def cmd_socket(args: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.app import build_app

    settings = _settings("socket")
    services = _services(settings)
    app = build_app(services, socket_mode=True)
    worker = _start_worker(services)
    try:
        SocketModeHandler(app, settings.slack_app_token).start()
    finally:
        worker.stop()
        services.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings("worker")
    services = _services(settings)
    worker = _start_worker(services)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    worker.stop()
    services.close()
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox.server import SandboxServer
    from bot.sandbox.state import Timing

    timing = Timing(validating_seconds=args.validating_seconds, queued_seconds=args.queued_seconds, step_seconds=args.step_seconds)
    server = SandboxServer(args.host, args.port, timing=timing, api_key=args.api_key)
    server.state.daily_job_limit = args.daily_job_limit
    print(f"OpenAI sandbox on {server.url}  (set OPENAI_BASE_URL={server.url})", flush=True)
    print(f"Azure OpenAI sandbox on {server.base}/openai/v1/  (set AZURE_OPENAI_ENDPOINT={server.base})", flush=True)
    together = None
    if args.together_port >= 0:
        try:
            from bot.sandbox.together_server import TogetherSandboxServer
        except ImportError:
            print("Together AI sandbox: not in this build", flush=True)
        else:
            together = TogetherSandboxServer(args.host, args.together_port, timing=timing, api_key=args.api_key).start()
            print(f"Together AI sandbox on {together.url}  (set TOGETHER_BASE_URL={together.url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if together is not None:
            together.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.migrate:
        from bot.demo_migrate import run_migrate_demo

        return run_migrate_demo(out_dir=args.out)
    from pathlib import Path

    # The demo keeps its own SQLite file in --out (DATABASE_URL is not used): that folder must work.
    out = Path(args.out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"ftbot demo: --out {args.out}: cannot create the folder ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        return 2
    if not os.access(out, os.W_OK):
        print(f"ftbot demo: --out {args.out}: the folder is not writable", file=sys.stderr)
        return 2
    from bot.demo import run_demo

    return run_demo(out_dir=args.out, steps=args.steps, provider=args.provider)


def cmd_validate(args: argparse.Namespace) -> int:
    import json

    from bot.datasets.models import default_model_for
    from bot.datasets.pricing import PriceTableError, load_overrides
    from bot.datasets.report_text import render
    from bot.datasets.validate import validate_file

    overrides = None
    if os.environ.get("FTBOT_PRICE_TABLE"):
        try:
            overrides = load_overrides(os.environ["FTBOT_PRICE_TABLE"])
        except PriceTableError as exc:
            print(f"ftbot: FTBOT_PRICE_TABLE: {exc}", file=sys.stderr)
            return 2
    for path in filter(None, (args.file, args.validation)):
        if not os.path.isfile(path):
            why = "is a directory, not a file" if os.path.isdir(path) else "no such file"
            print(f"ftbot validate: {path}: {why}", file=sys.stderr)
            return 2
    from bot.retirements.table import RetirementTableError, table_for

    try:
        retirements = table_for(os.environ.get("FTBOT_RETIREMENTS") or None)
    except RetirementTableError as exc:
        print(f"ftbot: FTBOT_RETIREMENTS: {exc}", file=sys.stderr)
        return 2
    report = validate_file(args.file, model=args.model or default_model_for(args.provider), validation=args.validation, price_overrides=overrides, retirements=retirements, provider=args.provider)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report))
    return 0 if report.ok else 1


PROVIDER_SETTINGS = (
    "  a provider: OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT (+ AZURE_OPENAI_API_KEY or Entra ID),\n"
    "    or TOGETHER_API_KEY (+ TOGETHER_PROJECT_ID for models); several need FTBOT_DEFAULT_PROVIDER;\n"
    "    FTBOT_SANDBOX=1 instead for the local sandboxes\n"
)
DATABASE = "  DATABASE_URL          optional, default sqlite:///ftbot.db (PostgreSQL in production)\n"
OPTIONAL = "Optional: FTBOT_* settings (channels, approvals, budget, polling, health alerts): see the README.\n"
# What each sub-command needs from the environment (or .env), shown under its --help.
SETTINGS_NEEDED = {
    "serve": "Settings it needs:\n  SLACK_BOT_TOKEN       xoxb-…\n  SLACK_SIGNING_SECRET  from the app's Basic Information\n" + PROVIDER_SETTINGS + DATABASE + "  PORT                  optional, default 3000 (--port wins)\n" + OPTIONAL,
    "socket": "Settings it needs:\n  SLACK_BOT_TOKEN       xoxb-…\n  SLACK_APP_TOKEN       xapp-… with connections:write\n" + PROVIDER_SETTINGS + DATABASE + OPTIONAL,
    "worker": "Settings it needs:\n  SLACK_BOT_TOKEN       xoxb-…\n" + PROVIDER_SETTINGS + DATABASE + "  (the same DATABASE_URL as the web process)\n" + OPTIONAL,
    "sandbox": "Settings it needs: none (point ftbot at it with OPENAI_BASE_URL / TOGETHER_BASE_URL, or FTBOT_SANDBOX=1).",
    "demo": "Settings it needs: none (its own sandboxes, Slack stand-in and SQLite database; the environment is ignored).",
    "validate": "Settings it needs: none.\nOptional: FTBOT_PRICE_TABLE (prices per 1M training tokens), FTBOT_RETIREMENTS (retirement dates).",
    "db": "Settings it needs:\n" + DATABASE,
}
DESCRIPTIONS = {
    "serve": "Serve Slack over HTTP: POST /slack/events (and /webhooks/openai when OPENAI_WEBHOOK_SECRET is set), GET /healthz, plus the worker unless --no-worker.",
    "socket": "Talk to Slack over Socket Mode (no public URL needed), plus the worker.",
    "worker": "Run the poller and the notification sender alone (scale the web process separately).",
    "sandbox": "Run local, stateful stand-ins for OpenAI's (and Azure's v1) and Together AI's fine-tuning APIs.",
    "demo": "Run the whole lifecycle on this machine with no accounts and print the conversation: datasets checked, a job trained, its chart, the model deleted after two approvals. Each run gets its own folder under --out.",
    "validate": "Check a JSONL fine-tuning dataset offline: errors with their lines, warnings, tokens per example, billed tokens and cost. Exit code 0 clean or warnings, 1 errors, 2 unusable input.",
    "db": "Manage the database schema (Alembic migrations).",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ftbot")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _describe(sub: argparse._SubParsersAction) -> None:
    """Each sub-command's --help: a description (its one-line help if none) and the settings it needs."""
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, parser in sub.choices.items():
        parser.description = parser.description or DESCRIPTIONS.get(name) or helps.get(name)
        if name in SETTINGS_NEEDED and not parser.epilog:
            parser.epilog = SETTINGS_NEEDED[name]
            parser.formatter_class = argparse.RawDescriptionHelpFormatter


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bot.errors import UserError
    from bot.evals.local import evaluate_file, first_score_lost, render
    from bot.provider.base import ProviderError

    path = Path(args.data)
    if not path.is_file():
        print(f"ftbot eval: no such file: {args.data}", file=sys.stderr)
        return 2
    if not 1 <= args.n <= 1000:
        print("ftbot eval: --n must be from 1 to 1000", file=sys.stderr)
        return 2
    settings = load_settings()
    services = _services(settings)
    try:
        result = evaluate_file(services, args.model, path, vs=args.vs, n=args.n, concurrency=settings.eval_concurrency)
    except UserError as exc:
        print(f"ftbot eval: {exc.message}", file=sys.stderr)
        return 2
    except ProviderError as exc:
        print(f"ftbot eval: {exc.reason}", file=sys.stderr)
        return 2
    finally:
        services.close()
    print(json.dumps(result, indent=2) if args.json else render(result))
    if result["status"] != "done":
        return 2
    return 1 if first_score_lost(result) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ftbot", description="Run a team's model fine-tuning from Slack. `ftbot COMMAND --help` says what each command needs.")
    p.add_argument("--version", action="version", version=f"ftbot {_version()}")
    p.add_argument("--log-level", default=os.environ.get("FTBOT_LOG_LEVEL", "INFO"), help="DEBUG, INFO (default, or FTBOT_LOG_LEVEL), WARNING, ERROR")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="HTTP mode: POST /slack/events and GET /healthz on $PORT, plus the worker")
    s.add_argument("--no-worker", action="store_true", help="do not run the poller and sender in this process")
    s.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all interfaces)")
    s.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    s.add_argument("--threads", type=int, default=8, help="HTTP worker threads")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("socket", help="Socket Mode (SLACK_APP_TOKEN) plus the worker, for teams without a public URL")
    s.set_defaults(func=cmd_socket)

    s = sub.add_parser("worker", help="the poller and the notification sender, nothing else")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("sandbox", help="local, stateful stand-ins for OpenAI's (and Azure's v1) and Together AI's fine-tuning APIs")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--step-seconds", type=float, default=0.5, help="simulated seconds per training step")
    s.add_argument("--validating-seconds", type=float, default=2.0)
    s.add_argument("--queued-seconds", type=float, default=2.0)
    s.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    s.add_argument("--daily-job-limit", type=int, default=0, help="jobs per model per day before 429 (0: none)")
    s.add_argument("--together-port", type=int, default=8766, help="port of the Together AI sandbox (-1: none)")
    s.set_defaults(func=cmd_sandbox)

    s = sub.add_parser("demo", help="the whole lifecycle on this machine with no accounts, printing the conversation")
    s.add_argument("--out", default="ftbot-demo", help="parent folder: each run writes its database, chart and transcript to a new run-YYYYmmdd-HHMMSS folder in it (default: ftbot-demo)")
    s.add_argument("--steps", type=int, default=30, help="training steps of the demo job")
    s.add_argument("--provider", choices=("openai", "together", "ray", "vertex"), default="openai", help="whose sandbox trains the demo job (default: openai; vertex: Gemini tuning on the Vertex AI sandbox, needs ftbot[vertex]; ray: a local Ray head and a tiny CPU trainer, needs ftbot[ray])")
    s.add_argument("--migrate", action="store_true", help="leaving OpenAI: a model trained there, moved to Together AI with /ft migrate")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("validate", help="check a JSONL fine-tuning dataset: errors, warnings, tokens and cost")
    s.add_argument("file", help="the training file (.jsonl)")
    s.add_argument("--model", default=None, help="the base model to check against (default: the provider's default, gpt-4o-mini-2024-07-18 for openai)")
    s.add_argument("--provider", choices=("openai", "azure", "together", "ray"), default=None, help="where the job will run: its limits, epochs, price and retirement dates (default: by the model's name)")
    s.add_argument("--validation", default=None, metavar="FILE", help="a validation file, checked too and against the training file")
    s.add_argument("--json", action="store_true", help="print the report as JSON for scripts")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("eval", help="evaluate a model against another (default: its base) on a local JSONL file; exit 1 when it scores lower")
    s.add_argument("model", help="the model to evaluate (a fine-tuned model, an Azure deployment, …)")
    s.add_argument("--data", required=True, metavar="FILE", help="a local .jsonl file of examples (the last assistant turn is the reference)")
    s.add_argument("--vs", default=None, metavar="MODEL", help="the model to compare with (default: MODEL's base model)")
    s.add_argument("--n", type=int, default=50, help="examples to sample (1 to 1000, default 50)")
    s.add_argument("--json", action="store_true", help="print the result as JSON for scripts")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("db", help="database schema")
    dbsub = s.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    u = dbsub.add_parser("upgrade", help="apply schema migrations (Alembic)", description="Apply the schema migrations up to the latest (safe to run twice, and from several processes at once).")
    u.epilog = SETTINGS_NEEDED["db"]
    u.formatter_class = argparse.RawDescriptionHelpFormatter
    u.set_defaults(func=cmd_db_upgrade)
    _describe(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = parse_level(args.log_level)
    except ValueError as exc:
        print(f"ftbot: --log-level / FTBOT_LOG_LEVEL: {exc}", file=sys.stderr)
        return 2
    setup_logging(level)
    try:
        return args.func(args)
    except (SettingsError, DatabaseUnavailable) as exc:
        print(f"ftbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
