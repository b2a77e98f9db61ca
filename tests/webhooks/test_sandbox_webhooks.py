"""The sandbox's webhook sender: signed as the openai client verifies, retried until a 2xx."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from bot.provider import JobSpec
from bot.provider.openai_adapter import OpenAIProvider
from bot.sandbox.webhooks import new_secret
from tests.conftest import wait_for
from tests.helpers import chat_jsonl


def test_sandbox_signs_retries_and_replays(sandbox) -> None:  # noqa: ANN001
    secret = new_secret()
    provider = OpenAIProvider(api_key="sk-test", base_url=sandbox.url, max_retries=0, timeout=5)
    received: list[tuple[int, object]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event = provider.parse_webhook(body, dict(self.headers.items()), secret)  # raises if the signature is wrong
            received.append((len(received), event))
            self.send_response(500 if len(received) == 1 else 204)  # the first attempt fails
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        sandbox.state.webhooks.configure(f"http://127.0.0.1:{server.server_port}/hook", secret, retry_delays=(0.05,))
        f = provider.upload_file(chat_jsonl(), "train.jsonl")
        job = provider.create_job(JobSpec(model="gpt-4o-mini-2024-07-18", training_file=f.id, hyperparameters={"n_epochs": 1}))
        # Nobody polls the job: the sandbox's ticker ends it and the webhook goes out by itself.
        log = wait_for(lambda: [d for d in sandbox.state.webhooks.deliveries() if d["status"] == 204], timeout=10)
        attempts = sandbox.state.webhooks.deliveries()
        assert [(d["attempt"], d["status"]) for d in attempts] == [(1, 500), (2, 204)]
        first, second = received[0][1], received[1][1]
        assert first == second and first.type == "fine_tuning.job.succeeded" and first.job_id == job.id
        assert first.id == log[0]["webhook_id"]  # a retry keeps its webhook-id
        sandbox.state.webhooks.replay(first.id)
        wait_for(lambda: len(received) == 3)
        assert received[2][1] == first
        assert json.loads(json.dumps(sandbox.state.webhooks.deliveries()))[-1]["status"] == 204
    finally:
        server.shutdown()
