"""The sandbox sends OpenAI's fine-tuning webhooks: when a job succeeds, fails or is cancelled, a
Standard Webhooks signed POST goes to the configured URL, retried on anything but a 2xx.

Jobs normally advance only when looked at; while webhooks are configured a ticker looks at the
unfinished ones every `tick` seconds, so a job ends (and its webhook leaves) on time even when
nobody polls it. Every attempt is logged for tests and benchmarks, and a delivery can be replayed
(same webhook-id and body, fresh timestamp and signature: what a provider retry looks like).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import clock


class SandboxState(Protocol):
    """What the sender needs of the simulation (bot/sandbox/state.py's SandboxState, which owns the
    sender: typed here by shape, so the two modules do not import each other)."""

    lock: Any
    jobs: dict[str, Any]

    def _advance(self, job: Any, now: float) -> None: ...

ENDED_TYPES = {"succeeded": "fine_tuning.job.succeeded", "failed": "fine_tuning.job.failed", "cancelled": "fine_tuning.job.cancelled"}


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, webhook_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, webhook_id, ts, body),
    }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def job_event_body(event_type: str, job_id: str, *, at: int | None = None) -> bytes:
    return json.dumps(
        {"object": "event", "id": f"evt_{secrets.token_hex(12)}", "type": event_type, "created_at": int(clock.timestamp()) if at is None else at, "data": {"id": job_id}}
    ).encode()


@dataclass
class Delivery:
    webhook_id: str
    event_type: str
    job_id: str
    body: bytes
    generation: int
    attempt: int = 0


@dataclass
class WebhookSender:
    state: SandboxState
    url: str | None = None
    secret: str | None = None
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
    tick: float = 0.05
    timeout: float = 5.0
    log: list[dict[str, Any]] = field(default_factory=list)
    _deliveries: dict[str, Delivery] = field(default_factory=dict)
    _queue: queue.Queue = field(default_factory=queue.Queue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _generation: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)

    def configure(self, url: str | None, secret: str | None, *, retry_delays: tuple[float, ...] | None = None, tick: float | None = None) -> None:
        with self._lock:
            self.url, self.secret = url, secret
            if retry_delays is not None:
                self.retry_delays = tuple(retry_delays)
            if tick is not None:
                self.tick = tick
            if not self._threads:
                self._threads = [threading.Thread(target=self._ticker, name="sandbox-webhook-tick", daemon=True)]
                self._threads += [threading.Thread(target=self._deliver_loop, name=f"sandbox-webhook-{i}", daemon=True) for i in range(4)]
                for t in self._threads:
                    t.start()

    def reset(self) -> None:
        with self._lock:
            self.url = self.secret = None
            self.retry_delays = (0.2, 0.5, 1.0, 2.0, 5.0)
            self.tick = 0.05
            self._generation += 1  # queued and retrying deliveries of the old world are dropped
            self.log.clear()
            self._deliveries.clear()

    # ---- what the state calls ---------------------------------------------------------------

    def job_ended(self, obj: dict[str, Any]) -> None:
        """Called under the state's lock when a job reaches a final status: only queues."""
        etype = ENDED_TYPES.get(obj.get("status", ""))
        if etype is None or not self.enabled:
            return
        with self._lock:
            d = Delivery(f"wh_{secrets.token_hex(12)}", etype, obj["id"], job_event_body(etype, obj["id"], at=obj.get("finished_at")), self._generation)
            self._deliveries[d.webhook_id] = d
        self._queue.put(d)

    def replay(self, webhook_id: str) -> bool:
        with self._lock:
            d = self._deliveries.get(webhook_id)
        if d is None:
            return False
        self._queue.put(Delivery(d.webhook_id, d.event_type, d.job_id, d.body, d.generation))
        return True

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.log]

    # ---- threads ----------------------------------------------------------------------------

    def _ticker(self) -> None:
        while True:
            time.sleep(self.tick)
            if not self.enabled:
                continue
            with self.state.lock:
                now = clock.timestamp()
                for job in list(self.state.jobs.values()):
                    if job.phase != "done":
                        self.state._advance(job, now)

    def _deliver_loop(self) -> None:
        while True:
            d = self._queue.get()
            with self._lock:
                url, secret, current = self.url, self.secret, self._generation
            if d.generation != current or not url or not secret:
                continue
            d.attempt += 1
            sent = time.time()
            headers = signed_headers(secret, d.webhook_id, d.body)
            status: int | None
            try:
                req = urllib.request.Request(url, data=d.body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - a URL the test configured
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            with self._lock:
                if d.generation == self._generation:
                    self.log.append({"webhook_id": d.webhook_id, "type": d.event_type, "job_id": d.job_id, "attempt": d.attempt, "status": status, "sent_at": sent, "answered_at": time.time()})
            if status is not None and 200 <= status < 300:
                continue
            if d.attempt <= len(self.retry_delays):
                timer = threading.Timer(self.retry_delays[d.attempt - 1], self._queue.put, (d,))
                timer.daemon = True
                timer.start()
